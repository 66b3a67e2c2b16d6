"""docs/tests.md C-4 in-process: every malformed RSAES_OAEP_SHA_256 ciphertext gets one answer, in one time.

A Bleichenbacher/Manger/Marvin oracle needs the service to tell malformed ciphertexts apart, by the error or by
the time it takes. The key is an RSA_2048 ENCRYPT_DECRYPT key made through the request path; Decrypt is then
called through its operation handler (no SigV4 or JSON around it, which would only add noise), and the same
classes go through the whole in-process request path once to compare status and body.

The timing half takes 20k calls per class (``OPENKMS_TIMING_SAMPLES``/``OPENKMS_TIMING_SCALE``, see
tests/timing.py), interleaved in a random order per round, and runs Mann-Whitney between every pair of
malformed classes: none may be separable at p < 0.001. The valid class succeeds, so it is timed only for
information. Its first run found too-short and too-long ciphertexts rejected about 3 us faster than the others
(p < 1e-40): the wrapper skipped a costly range check for a wrong length. crypto/rsa_oaep.py now runs the same
code for every rejection, and tests/crypto/test_rsa_oaep.py checks that instruction by instruction.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from openkms.errors import KMSError
from openkms.operations import registry
from tests import timing
from tests.inprocess import InProcessKMS
from tests.oaep_classes import MALFORMED, PLAINTEXT, VALID, ciphertext_classes

ALGORITHM = "RSAES_OAEP_SHA_256"
SAMPLES_PER_CLASS = 20_000  # docs/tests.md C-4, in-process
THRESHOLD = 0.001


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessKMS]:
    instance = InProcessKMS(Path(tmp_path_factory.mktemp("c4")))
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def rsa_key(kms: InProcessKMS) -> tuple[str, dict[str, bytes]]:
    """An RSA_2048 decryption key and C-4's ciphertext classes under its public key."""
    status, body = kms.call("CreateKey", {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"})
    assert status == 200, body
    key_id: str = body["KeyMetadata"]["KeyId"]
    status, body = kms.call("GetPublicKey", {"KeyId": key_id})
    assert status == 200, body
    public = serialization.load_der_public_key(base64.b64decode(body["PublicKey"]))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    return key_id, ciphertext_classes(public)


def _decrypt_params(key_id: str, ciphertext: bytes) -> dict[str, Any]:
    return {"KeyId": key_id, "CiphertextBlob": ciphertext, "EncryptionAlgorithm": ALGORITHM}


def _handler_outcome(kms: InProcessKMS, params: dict[str, Any]) -> tuple[str, str, int, str] | bytes:
    """The plaintext, or the error as (type, code, status, message)."""
    handler = registry.handler_for("Decrypt")
    assert handler is not None
    try:
        result = handler(kms.services, kms.context("Decrypt", params), params)
    except KMSError as error:
        return (type(error).__name__, error.code, error.status, error.message)
    plaintext: bytes = result["Plaintext"]
    return plaintext


def test_every_malformed_class_gets_one_identical_error(
    kms: InProcessKMS, rsa_key: tuple[str, dict[str, bytes]]
) -> None:
    key_id, classes = rsa_key
    outcomes = {
        name: _handler_outcome(kms, _decrypt_params(key_id, ciphertext)) for name, ciphertext in classes.items()
    }
    assert outcomes[VALID] == PLAINTEXT
    errors = {outcomes[name] for name in MALFORMED}
    assert errors == {("InvalidCiphertextException", "InvalidCiphertextException", 400, "")}, outcomes
    # The whole request path (SigV4, JSON, error map) answers with one status and one body too.
    responses = set()
    for name in MALFORMED:
        params = {
            "KeyId": key_id,
            "CiphertextBlob": base64.b64encode(classes[name]).decode(),
            "EncryptionAlgorithm": ALGORITHM,
        }
        status, body = kms.call("Decrypt", params)
        responses.add((status, tuple(sorted(body.items()))))
    assert responses == {(400, (("__type", "InvalidCiphertextException"),))}, responses
    print(f"\nC-4 in-process: {len(errors)} distinct handler error(s), {len(responses)} distinct response(s)")


def _fresh_call(kms: InProcessKMS, key_id: str, ciphertext: bytes) -> Callable[[], None]:
    """Decrypt a fresh copy of ``ciphertext`` (see :func:`timing.interleaved_timings` on why fresh)."""
    return kms.handler_call("Decrypt", _decrypt_params(key_id, bytes(bytearray(ciphertext))))


@pytest.mark.slow
@pytest.mark.timing
def test_malformed_classes_are_not_separable_by_timing(
    kms: InProcessKMS, rsa_key: tuple[str, dict[str, bytes]]
) -> None:
    key_id, classes = rsa_key
    params = {name: _decrypt_params(key_id, ciphertext) for name, ciphertext in classes.items()}
    distinct = {_handler_outcome(kms, params[name]) for name in MALFORMED}
    assert len(distinct) == 1, distinct
    factories = {name: functools.partial(_fresh_call, kms, key_id, classes[name]) for name in classes}
    samples = timing.interleaved_timings(factories, timing.sample_count(SAMPLES_PER_CLASS), warmup=200)
    pairs = timing.pairwise(samples, MALFORMED)
    print("\n" + timing.report("C-4 in-process Decrypt, malformed classes", samples, pairs, len(distinct)))
    informational = [timing.compare(samples, VALID, name) for name in MALFORMED]
    print(timing.report("C-4 in-process Decrypt, valid (succeeds) vs malformed, information only", {}, informational))
    separable = [pair for pair in pairs if pair.separable(THRESHOLD)]
    assert separable == [], ", ".join(
        f"{pair.first} and {pair.second} are separable: p={pair.p_value:.3g}, "
        f"median difference {pair.median_difference_ns:+.0f} ns"
        for pair in separable
    )
