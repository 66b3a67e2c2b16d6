"""docs/tests.md C-5 (b) for VerifyMac, in-process: a MAC wrong in its first byte and one wrong in its last byte are
refused alike and in the same time.

An early-exit comparison (``==`` on bytes) returns sooner the earlier the first difference, which lets a caller
find a valid MAC byte by byte. VerifyMac is called through its operation handler (about 70 us a call, so 200k
calls per class fit in a minute); the comparison itself is pyca's ``HMAC.verify``
(``openkms.crypto.hmac.hmac_verify``). Samples: 200k per class (``OPENKMS_TIMING_SAMPLES``/``OPENKMS_TIMING_SCALE``).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openkms.errors import KMSError
from openkms.operations import registry
from tests import timing
from tests.inprocess import InProcessKMS

SAMPLES_PER_CLASS = 200_000  # docs/tests.md C-5 (b)
THRESHOLD = 0.001
MESSAGE = b"C-5 (b): the message whose MAC is checked"
ALGORITHM = "HMAC_SHA_256"


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessKMS]:
    instance = InProcessKMS(Path(tmp_path_factory.mktemp("c5-mac")))
    yield instance
    instance.close()


def _flip(mac: bytes, index: int) -> bytes:
    copy = bytearray(mac)
    copy[index] ^= 0x01
    return bytes(copy)


@pytest.fixture(scope="module")
def mac_params(kms: InProcessKMS) -> dict[str, dict[str, Any]]:
    """VerifyMac parameters for an HMAC_256 key: the right MAC, then first byte wrong and last byte wrong."""
    status, body = kms.call("CreateKey", {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})
    assert status == 200, body
    key_id = body["KeyMetadata"]["KeyId"]
    message = base64.b64encode(MESSAGE).decode()
    status, body = kms.call("GenerateMac", {"KeyId": key_id, "Message": message, "MacAlgorithm": ALGORITHM})
    assert status == 200, body
    mac = base64.b64decode(body["Mac"])
    assert len(mac) == 32
    macs = {"right": mac, "first-byte-wrong": _flip(mac, 0), "last-byte-wrong": _flip(mac, -1)}
    return {
        name: {"KeyId": key_id, "Message": MESSAGE, "MacAlgorithm": ALGORITHM, "Mac": m} for name, m in macs.items()
    }


def _outcome(kms: InProcessKMS, params: dict[str, Any]) -> tuple[str, str, int, str] | bool:
    handler = registry.handler_for("VerifyMac")
    assert handler is not None
    try:
        valid: bool = handler(kms.services, kms.context("VerifyMac", params), params)["MacValid"]
    except KMSError as error:
        return (type(error).__name__, error.code, error.status, error.message)
    return valid


def test_wrong_macs_get_one_identical_error(kms: InProcessKMS, mac_params: dict[str, dict[str, Any]]) -> None:
    assert _outcome(kms, mac_params["right"]) is True
    errors = {_outcome(kms, mac_params[name]) for name in ("first-byte-wrong", "last-byte-wrong")}
    assert errors == {("KMSInvalidMacException", "KMSInvalidMacException", 400, "")}, errors
    responses = set()
    for name in ("first-byte-wrong", "last-byte-wrong"):
        params = dict(mac_params[name])
        params["Message"] = base64.b64encode(params["Message"]).decode()
        params["Mac"] = base64.b64encode(params["Mac"]).decode()
        status, body = kms.call("VerifyMac", params)
        responses.add((status, tuple(sorted(body.items()))))
    assert responses == {(400, (("__type", "KMSInvalidMacException"),))}, responses


def _fresh_call(kms: InProcessKMS, template: dict[str, Any]) -> Callable[[], None]:
    """VerifyMac on fresh copies of ``template``'s values (see :func:`timing.interleaved_timings` on why fresh)."""
    params = {name: bytes(bytearray(value)) if isinstance(value, bytes) else value for name, value in template.items()}
    return kms.handler_call("VerifyMac", params)


@pytest.mark.slow
@pytest.mark.timing
def test_first_and_last_byte_wrong_are_not_separable(kms: InProcessKMS, mac_params: dict[str, dict[str, Any]]) -> None:
    names = ("first-byte-wrong", "last-byte-wrong")
    distinct = {_outcome(kms, mac_params[name]) for name in names}
    assert len(distinct) == 1, distinct
    factories = {name: functools.partial(_fresh_call, kms, mac_params[name]) for name in names}
    samples = timing.interleaved_timings(factories, timing.sample_count(SAMPLES_PER_CLASS), warmup=2_000)
    result = timing.compare(samples, *names)
    print("\n" + timing.report("C-5 (b) VerifyMac through the handler", samples, [result], len(distinct)))
    assert not result.separable(THRESHOLD), result
