"""A populated source database for the backup tests, on either engine, and its rows as plain values."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openkms import identity
from openkms.audit import scope as audit_scope
from openkms.audit.digests import write_digest
from openkms.backup.tables import TABLES
from openkms.clock import SystemClock
from openkms.seal import keyfile
from openkms.seal.root_key import unseal_root_key
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.inprocess import ACCOUNT_ID, InProcessKMS
from tests.pg_helpers import create_temp_database, drop_database

PLAINTEXT = b"made before the backup"
GROUP_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}'


@dataclass
class Source:
    kms: InProcessKMS
    root_key: bytes
    key_id: str
    ciphertext: str


@contextmanager
def database(engine: str, directory: Path) -> Iterator[str]:
    """A fresh database URL on ``engine`` (a PostgreSQL one is dropped afterwards)."""
    if engine == "sqlite":
        yield f"sqlite://{directory / 'openkms.db'}"
        return
    url = create_temp_database()
    try:
        yield url
    finally:
        drop_database(url)


def open_plain(url: str) -> Storage:
    """A storage without the audit hook (what the CLI's restore opens)."""
    if url.startswith("postgresql"):
        return PostgresStorage(url)
    return SQLiteStorage(url.removeprefix("sqlite://"))


def populate(url: str, data_dir: Path) -> Source:
    """Keys (one with rotation on, so a BOOLEAN column holds true), an alias, a tag, a grant, a ciphertext, an IAM
    group with a policy and a member, and a signed digest (so a signing key is wrapped too)."""
    storage = PostgresStorage(url, before_commit=audit_scope.before_commit) if url.startswith("postgresql") else None
    kms = InProcessKMS(data_dir, storage=storage, keyfile_seal=True)
    root_key = unseal_root_key(kms.storage, keyfile_path=data_dir / keyfile.KEYFILE_NAME)
    tags = [{"TagKey": "env", "TagValue": "prod"}]
    status, created = kms.call("CreateKey", {"Description": "payments", "Tags": tags})
    assert status == 200, created
    key_id = created["KeyMetadata"]["KeyId"]
    for operation, params in (
        ("EnableKeyRotation", {"KeyId": key_id}),
        ("CreateAlias", {"AliasName": "alias/payments", "TargetKeyId": key_id}),
        ("CreateGrant", {"KeyId": key_id, "GranteePrincipal": f"arn:aws:iam::{ACCOUNT_ID}:root",
                         "Operations": ["Decrypt"], "Name": "restore-drill"}),
        ("CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    ):  # fmt: skip
        status, body = kms.call(operation, params)
        assert status == 200, (operation, body)
    status, encrypted = kms.call("Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(PLAINTEXT).decode()})
    assert status == 200, encrypted
    clock = SystemClock()
    identity.create_user(kms.storage, ACCOUNT_ID, "bob", clock)
    identity.create_group(kms.storage, ACCOUNT_ID, "readers", clock)
    identity.add_user_to_group(kms.storage, ACCOUNT_ID, "bob", "readers")
    identity.put_group_policy(kms.storage, ACCOUNT_ID, "readers", "decrypt", GROUP_POLICY)
    write_digest(kms.storage, root_key, time.time(), 3600, force=True)
    return Source(kms, root_key, key_id, encrypted["CiphertextBlob"])


def plain(value: Any) -> Any:
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    return value


def dump(storage: Storage, skip: frozenset[str] = frozenset({"job_leases"})) -> dict[str, list[dict[str, Any]]]:
    """Every backed-up table's rows as dicts of plain values (booleans as 0/1), in primary-key order."""
    found: dict[str, list[dict[str, Any]]] = {}
    with storage.read() as tx:
        for table in TABLES:
            if table.name in skip:
                continue
            columns, rows = tx.table_page(table.name, table.key, None, 1_000_000)
            found[table.name] = [{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return found
