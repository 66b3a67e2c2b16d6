"""Pre-signed KMS requests for the load generator: one key per target, N distinct SigV4-signed requests per operation.

Signing happens here, in Python, before a cell runs, so the load generator (wrk) only replays bytes and costs the
machine almost nothing. Every request is distinct: Encrypt carries its own random 4 KiB plaintext and every request
carries its own ``amz-sdk-invocation-id`` (signed, as boto3 sends it), so no two requests share a signature.

A signature is accepted for 15 minutes around its ``X-Amz-Date`` (AWS and openkms alike); :attr:`Batch.expires_at`
says when a batch must be signed again (``run.py`` re-signs before a cell that would outlive it).

    from presign import Target, prepare_key, presign  # run from benchmarks/ (run.py puts it on sys.path)
    target = Target("openkms-sqlite", "http://127.0.0.1:8080", "AKIA...", "secret")
    fixture = prepare_key(target)
    batch = presign(target, fixture, "Encrypt", 2000)
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-east-1"
PLAINTEXT_BYTES = 4096
SIGNATURE_LIFETIME_SECONDS = 15 * 60
KMS_OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")
HEALTHZ = "healthz"
USER_AGENT = "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6 md/arch#x86_64 lang/python#3.11 cfg/bench"


@dataclass(frozen=True, slots=True)
class Target:
    """A KMS endpoint under test and the credentials that sign for it."""

    name: str
    endpoint: str  # http://host:port
    access_key_id: str
    secret_access_key: str
    region: str = REGION

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc

    def client(self) -> Any:
        return boto3.client(
            "kms",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )


@dataclass(frozen=True, slots=True)
class KeyFixture:
    """The key a target's requests use, and ciphertexts made under it beforehand for Decrypt."""

    key_id: str
    ciphertexts: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PresignedRequest:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]  # Host first; Content-Length is added by :meth:`raw`
    body: bytes

    def raw(self) -> bytes:
        """The request exactly as it goes on the wire (HTTP/1.1, keep-alive)."""
        lines = [f"{self.method} {self.path} HTTP/1.1", *(f"{name}: {value}" for name, value in self.headers)]
        if self.body or self.method == "POST":
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True, slots=True)
class Batch:
    """The requests of one (target, operation) cell, replayed in a cycle by the load generator."""

    target: str
    operation: str
    requests: tuple[PresignedRequest, ...]
    signed_at: float  # time.time() of the earliest signature in the batch
    expires_at: float  # the earliest time a server could refuse one of them as expired


def prepare_key(target: Target, ciphertexts: int = 16) -> KeyFixture:
    """Create a fresh symmetric key on ``target`` and encrypt ``ciphertexts`` 4 KiB plaintexts under it."""
    kms = target.client()
    key_id: str = kms.create_key(Description="openkms benchmark")["KeyMetadata"]["KeyId"]
    blobs = tuple(
        bytes(kms.encrypt(KeyId=key_id, Plaintext=os.urandom(PLAINTEXT_BYTES))["CiphertextBlob"])
        for _ in range(ciphertexts)
    )
    return KeyFixture(key_id, blobs)


def _body(operation: str, fixture: KeyFixture, index: int) -> dict[str, str]:
    if operation == "Encrypt":
        return {"KeyId": fixture.key_id, "Plaintext": base64.b64encode(os.urandom(PLAINTEXT_BYTES)).decode()}
    if operation == "Decrypt":
        blob = fixture.ciphertexts[index % len(fixture.ciphertexts)]
        return {"CiphertextBlob": base64.b64encode(blob).decode()}
    if operation == "GenerateDataKey":
        return {"KeyId": fixture.key_id, "KeySpec": "AES_256"}
    raise ValueError(f"no request body defined for {operation!r}")


def sign(target: Target, operation: str, body: bytes, signer: SigV4Auth) -> PresignedRequest:
    """One boto3-shaped KMS request signed with SigV4 (Authorization header) at the current time."""
    headers = {
        "X-Amz-Target": f"TrentService.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": USER_AGENT,
        "amz-sdk-invocation-id": str(uuid.uuid4()),
        "amz-sdk-request": "attempt=1; max=1",
    }
    aws = AWSRequest(method="POST", url=f"{target.endpoint}/", data=body, headers=headers)
    signer.add_auth(aws)  # adds X-Amz-Date and Authorization; the host signed is the URL's netloc
    wire = (("Host", target.host), *((str(k), str(v)) for k, v in aws.headers.items()))
    return PresignedRequest("POST", "/", wire, body)


def presign(target: Target, fixture: KeyFixture | None, operation: str, count: int) -> Batch:
    """``count`` distinct requests for ``operation`` (``healthz``: one unsigned GET, replayed)."""
    if operation == HEALTHZ:
        get = PresignedRequest("GET", "/healthz", (("Host", target.host),), b"")
        return Batch(target.name, operation, (get,), time.time(), float("inf"))
    if fixture is None:
        raise ValueError(f"{operation} needs a key fixture")
    return sign_batch(target, operation, (_body(operation, fixture, i) for i in range(count)))


def sign_batch(target: Target, operation: str, bodies: Iterable[dict[str, str]], label: str | None = None) -> Batch:
    """One signed ``operation`` request per JSON body; the batch is named ``label`` (default: the operation).

    Other benchmarks (keytypes.py) build their own bodies and sign them here; ``label`` tells apart batches of
    the same operation (Encrypt of 32 B and of 4 KiB, Sign with two keys).
    """
    signer = SigV4Auth(Credentials(target.access_key_id, target.secret_access_key), "kms", target.region)
    signed_at = time.time()
    requests = tuple(
        sign(target, operation, json.dumps(body, separators=(",", ":")).encode(), signer) for body in bodies
    )
    # X-Amz-Date has one-second resolution and truncates: allow one second of slack.
    return Batch(target.name, label or operation, requests, signed_at, signed_at - 1 + SIGNATURE_LIFETIME_SECONDS)


def send_once(target: Target, request: PresignedRequest, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send one pre-signed request exactly as wrk will, and return (status, body): a check before a cell."""
    parts = urlsplit(target.endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers:
            conn.putheader(name, value)
        if request.body or request.method == "POST":
            conn.putheader("Content-Length", str(len(request.body)))
        conn.endheaders(request.body or None)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
