"""docs/tests.md C-4 over HTTP: a real server answers every malformed RSAES_OAEP_SHA_256 ciphertext with one response
(status, body, error code) and in a time that does not tell the classes apart.

boto3 drives a dedicated one-worker server (so every request meets the same process and the same cached key),
2k Decrypt calls per class (``OPENKMS_TIMING_SAMPLES``/``OPENKMS_TIMING_SCALE``, see tests/timing.py), timed at
the client and interleaved in a random order per round. Every response of every call is recorded, so "one
distinct response" covers all of them, not a sample. The classes are those of tests/oaep_classes.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import timing
from tests.e2e.server import ServerProcess, free_port
from tests.oaep_classes import MALFORMED, PLAINTEXT, VALID, ciphertext_classes

pytestmark = pytest.mark.e2e

ALGORITHM = "RSAES_OAEP_SHA_256"
SAMPLES_PER_CLASS = 2_000  # docs/tests.md C-4, over HTTP
THRESHOLD = 0.001
Response = tuple[int, bytes, str]  # status, body, x-amzn-errortype


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = Path(tmp_path_factory.mktemp("c4-http"))
    process = ServerProcess(base, f"sqlite:///{base / 'openkms.db'}", free_port(), workers=1).start()
    yield process
    process.stop()


class RecordingClient:
    """A boto3 KMS client that keeps the raw HTTP status, body and error type of its last response."""

    def __init__(self, server: ServerProcess) -> None:
        self.kms = cast(Any, server.client())
        self.last: Response | None = None
        self.kms.meta.events.register("after-call.kms.Decrypt", self._record)

    def _record(self, http_response: Any, **_: Any) -> None:
        self.last = (
            http_response.status_code,
            http_response.content,
            http_response.headers.get("x-amzn-errortype", ""),
        )

    def decrypt(self, key_id: str, ciphertext: bytes) -> Response:
        """The raw response to Decrypt; an error is what is expected, a success is returned just the same."""
        self.last = None
        try:
            self.kms.decrypt(KeyId=key_id, CiphertextBlob=ciphertext, EncryptionAlgorithm=ALGORITHM)
        except ClientError:
            pass
        assert self.last is not None
        return self.last


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> RecordingClient:
    return RecordingClient(server)


@pytest.fixture(scope="module")
def rsa_key(client: RecordingClient) -> tuple[str, dict[str, bytes]]:
    key_id: str = client.kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    public = serialization.load_der_public_key(client.kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    return key_id, ciphertext_classes(public)


def test_every_malformed_class_gets_one_identical_response(
    client: RecordingClient, rsa_key: tuple[str, dict[str, bytes]]
) -> None:
    key_id, classes = rsa_key
    plaintext = client.kms.decrypt(KeyId=key_id, CiphertextBlob=classes[VALID], EncryptionAlgorithm=ALGORITHM)
    assert plaintext["Plaintext"] == PLAINTEXT
    responses = {client.decrypt(key_id, classes[name]) for name in MALFORMED}
    assert responses == {(400, b'{"__type":"InvalidCiphertextException"}', "InvalidCiphertextException")}, responses


def _fresh_call(client: RecordingClient, key_id: str, ciphertext: bytes, seen: set[Response]) -> Callable[[], None]:
    """Decrypt a fresh copy of ``ciphertext``, recording the response (see :func:`timing.interleaved_timings`)."""
    fresh = bytes(bytearray(ciphertext))

    def call() -> None:
        seen.add(client.decrypt(key_id, fresh))

    return call


@pytest.mark.slow
@pytest.mark.timing
def test_malformed_classes_are_not_separable_by_timing_over_http(
    client: RecordingClient, rsa_key: tuple[str, dict[str, bytes]]
) -> None:
    key_id, classes = rsa_key
    seen: dict[str, set[Response]] = {name: set() for name in classes}
    factories = {name: functools.partial(_fresh_call, client, key_id, classes[name], seen[name]) for name in classes}
    samples = timing.interleaved_timings(factories, timing.sample_count(SAMPLES_PER_CLASS), warmup=50)
    distinct = set().union(*(seen[name] for name in MALFORMED))
    pairs = timing.pairwise(samples, MALFORMED)
    print("\n" + timing.report("C-4 HTTP Decrypt, malformed classes", samples, pairs, len(distinct)))
    informational = [timing.compare(samples, VALID, name) for name in MALFORMED]
    print(timing.report("C-4 HTTP Decrypt, valid (succeeds) vs malformed, information only", {}, informational))
    assert len(distinct) == 1, distinct
    assert {status for status, _, _ in seen[VALID]} == {200}
    separable = [pair for pair in pairs if pair.separable(THRESHOLD)]
    assert separable == [], ", ".join(
        f"{pair.first} and {pair.second} are separable: p={pair.p_value:.3g}, "
        f"median difference {pair.median_difference_ns:+.0f} ns"
        for pair in separable
    )
