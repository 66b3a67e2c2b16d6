"""Records and constants shared by the storage contract suites (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import pytest

from openkms.storage import migrate
from openkms.storage.ports import CommitHook, Storage
from openkms.storage.records import (
    AccessKeyRecord,
    AliasRecord,
    GrantRecord,
    GroupRecord,
    KeyRecord,
    KeyVersionRecord,
    UserRecord,
)

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

# The schema version a fresh database migrates to (the same on both engines).
LATEST = len(migrate.load("sqlite"))


class Opener(Protocol):
    """Opens another Storage on the same database as the test's ``storage`` (with a commit hook if given)."""

    def __call__(self, *, before_commit: CommitHook | None = None) -> Storage: ...


def key(key_id: str, account: str = ACCOUNT, region: str = REGION, **changes: Any) -> KeyRecord:
    record = KeyRecord(
        key_id=key_id,
        account_id=account,
        region=region,
        arn=f"arn:aws:kms:{region}:{account}:key/{key_id}",
        description=f"key {key_id}",
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        origin="AWS_KMS",
        key_manager="CUSTOMER",
        key_state="Enabled",
        creation_date=1_700_000_000.25,
        multi_region=False,
        policy='{"Version": "2012-10-17", "Statement": []}',
        current_version_id="0" * 32,
    )
    return dataclasses.replace(record, **changes)


def version(key_id: str, version_id: str, created_at: float = 1_700_000_000.0, **changes: Any) -> KeyVersionRecord:
    record = KeyVersionRecord(key_id, version_id, created_at, b"\x00wrapped\xff" + version_id.encode())
    return dataclasses.replace(record, **changes)


def alias(name: str, target: str, account: str = ACCOUNT, region: str = REGION) -> AliasRecord:
    return AliasRecord(account, region, name, target, 1_700_000_001.5, 1_700_000_001.5)


def user(name: str, account: str = ACCOUNT) -> UserRecord:
    return UserRecord(account, name, f"AIDA{name.upper():0<17}"[:21], f"arn:aws:iam::{account}:user/{name}", 1.5)


def access_key(access_key_id: str, user_name: str, account: str = ACCOUNT) -> AccessKeyRecord:
    return AccessKeyRecord(access_key_id, account, user_name, b"\x01secret" + access_key_id.encode(), "Active", 2.5)


def add_key_with_version(storage: Storage, key_id: str, **changes: Any) -> KeyRecord:
    record = key(key_id, **changes)
    with storage.transaction() as tx:
        tx.insert_key(record)
        if record.current_version_id is not None:
            tx.insert_version(version(key_id, record.current_version_id))
    return record


def group(name: str, account: str = ACCOUNT, suffix: str = "") -> GroupRecord:
    return GroupRecord(
        account, name, f"AGPA{suffix}{name.upper():0<17}"[:21], f"arn:aws:iam::{account}:group/{name}", 3.5
    )


ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def grant(key_id: str, grant_id: str, grantee: str = ALICE, **changes: Any) -> GrantRecord:
    record = GrantRecord(
        key_id=key_id,
        grant_id=grant_id,
        account_id=ACCOUNT,
        name=None,
        grantee_principal=grantee,
        retiring_principal=None,
        operations=("Decrypt", "Encrypt"),
        constraints=None,
        issuing_principal=f"arn:aws:iam::{ACCOUNT}:user/admin",
        creation_date=1_700_000_002.75,
        grant_token=f"token-{key_id}-{grant_id}",
    )
    return dataclasses.replace(record, **changes)
