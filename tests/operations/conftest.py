"""An in-process openkms with a frozen clock, on each storage engine, and helpers for the import operations."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openkms.audit import scope as audit_scope
from openkms.clock import FrozenClock
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from tests.byok import wrap
from tests.inprocess import InProcessKMS
from tests.pg_helpers import create_temp_database, drop_database

T0 = 1_800_000_000.0  # 2027-01-15, whatever the wall clock says
DAY = 86400.0


@dataclass
class KMS:
    """An InProcessKMS and its clock, with calls that either succeed or name their error."""

    inner: InProcessKMS
    clock: FrozenClock

    @property
    def storage(self) -> Storage:
        return self.inner.storage

    def ok(self, operation: str, **params: Any) -> dict[str, Any]:
        status, body = self.inner.call(operation, _encode(params))
        assert status == 200, (operation, status, body)
        return body

    def fails(self, operation: str, code: str, **params: Any) -> str:
        status, body = self.inner.call(operation, _encode(params))
        assert status == 400, (operation, status, body)
        assert body["__type"] == code, (operation, body)
        return str(body.get("message", ""))

    # -- the import steps

    def external_key(self, **params: Any) -> str:
        meta = self.ok("CreateKey", Origin="EXTERNAL", **params)["KeyMetadata"]
        assert meta["KeyState"] == "PendingImport"
        return str(meta["KeyId"])

    def parameters(self, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048") -> dict[str, Any]:
        return self.ok("GetParametersForImport", KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)

    def import_params(
        self, key_id: str, material: bytes, algorithm: str = "RSAES_OAEP_SHA_256", **params: Any
    ) -> dict[str, Any]:
        """ImportKeyMaterial's parameters for ``material``, with fresh wrapping parameters."""
        got = self.parameters(key_id, algorithm)
        encrypted = wrap(base64.b64decode(got["PublicKey"]), algorithm, material)
        if "ExpirationModel" not in params and "ValidTo" not in params:
            params["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        return {
            "KeyId": key_id,
            "ImportToken": base64.b64decode(got["ImportToken"]),
            "EncryptedKeyMaterial": encrypted,
            **params,
        }

    def import_material(self, key_id: str, material: bytes, **params: Any) -> dict[str, Any]:
        return self.ok("ImportKeyMaterial", **self.import_params(key_id, material, **params))

    def imported_key(self, material: bytes | None = None, **params: Any) -> tuple[str, bytes]:
        material = material if material is not None else os.urandom(32)
        key_id = self.external_key()
        self.import_material(key_id, material, **params)
        return key_id, material

    def encrypt(self, key_id: str, plaintext: bytes = b"secret") -> bytes:
        return base64.b64decode(self.ok("Encrypt", KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"])

    def decrypt(self, blob: bytes) -> bytes:
        return base64.b64decode(self.ok("Decrypt", CiphertextBlob=blob)["Plaintext"])

    def describe(self, key_id: str) -> dict[str, Any]:
        meta: dict[str, Any] = self.ok("DescribeKey", KeyId=key_id)["KeyMetadata"]
        return meta

    def versions(self, key_id: str) -> list[str]:
        with self.storage.read() as tx:
            return [v.version_id for v in tx.list_versions(key_id)]


def _encode(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON protocol's base64 for blobs (bytes here)."""
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in params.items()}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KMS]:
    clock = FrozenClock(T0)
    url: str | None = None
    storage: Storage | None = None
    if request.param == "postgresql":
        url = create_temp_database()
        storage = PostgresStorage(url, before_commit=audit_scope.before_commit)
    inner = InProcessKMS(tmp_path, clock, storage)
    try:
        yield KMS(inner, clock)
    finally:
        inner.close()
        if url is not None:
            drop_database(url)


@contextmanager
def counting_write_transactions(storage: Storage, *, requests_only: bool = True) -> Iterator[list[str]]:
    """Record every ``storage.transaction()`` an operation opens meanwhile (the audit layer attaches the request's
    record to exactly that one); the transaction that writes a read's record afterwards is not the operation's.
    ``requests_only=False`` counts every one (a background job's)."""
    opened: list[str] = []
    original = storage.transaction

    def counted() -> Any:
        if not requests_only or audit_scope.current() is not None:  # inside a request's execution
            opened.append("transaction")
        return original()

    setattr(storage, "transaction", counted)  # noqa: B010 - shadows the method on this instance only
    try:
        yield opened
    finally:
        delattr(storage, "transaction")
