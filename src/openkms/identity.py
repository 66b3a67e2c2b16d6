"""Accounts, users and access keys: the identities SigV4 authenticates.

Secret access keys are stored wrapped under the root key with the access key id bound into the AAD, so a
row copied onto another access key does not open. Used by the ``openkms iam`` CLI and by dev-mode init.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from openkms import ids
from openkms.clock import Clock
from openkms.crypto import wrap
from openkms.storage.ports import DuplicateError, Storage
from openkms.storage.records import AccessKeyRecord, UserRecord

ACTIVE = "Active"
INACTIVE = "Inactive"
_BASE32 = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_BINDING = "access-key-secret"  # noqa: S105 (an AAD label, not a secret)


class IdentityError(Exception):
    """A user-facing admin error (unknown user, duplicate name...)."""


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    user_name: str


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


def _new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_BASE32) for _ in range(16))


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_BASE32) for _ in range(17))


def secret_binding(access_key_id: str) -> tuple[str, str]:
    return (SECRET_BINDING, access_key_id)


def ensure_account(storage: Storage, account_id: str, clock: Clock) -> None:
    if not ids.is_valid_account_id(account_id):
        raise IdentityError(f"an account id is 12 digits, not {account_id!r}")
    with storage.transaction() as tx:
        tx.insert_account(account_id, clock.now())


def create_user(storage: Storage, account_id: str, user_name: str, clock: Clock) -> UserRecord:
    if not user_name or len(user_name) > 64 or not all(c.isalnum() or c in "+=,.@_-" for c in user_name):
        raise IdentityError("a user name is 1-64 characters: letters, digits and +=,.@_-")
    user = UserRecord(account_id, user_name, _new_user_id(), ids.user_arn(account_id, user_name), clock.now())
    with storage.transaction() as tx:
        if not tx.account_exists(account_id):
            raise IdentityError(f"no account {account_id}")
        try:
            tx.insert_user(user)
        except DuplicateError:
            raise IdentityError(f"user {user_name} already exists in account {account_id}") from None
    return user


def create_access_key(
    storage: Storage,
    root_key: bytes,
    account_id: str,
    user_name: str,
    clock: Clock,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> NewAccessKey:
    """Issue a key pair; a pinned id and secret (dev mode, CI) are taken as given."""
    key_id = access_key_id or _new_access_key_id()
    secret = secret_access_key or _new_secret()
    if not key_id or not secret:
        raise IdentityError("an access key id and secret must not be empty")
    record = AccessKeyRecord(
        key_id,
        account_id,
        user_name,
        wrap.wrap(root_key, secret.encode("utf-8"), secret_binding(key_id)),
        ACTIVE,
        clock.now(),
    )
    with storage.transaction() as tx:
        if tx.get_user(account_id, user_name) is None:
            raise IdentityError(f"no user {user_name} in account {account_id}")
        try:
            tx.insert_access_key(record)
        except DuplicateError:
            raise IdentityError(f"access key {key_id} already exists") from None
    return NewAccessKey(key_id, secret, account_id, user_name)


def reveal_secret(root_key: bytes, record: AccessKeyRecord) -> str:
    return wrap.unwrap(root_key, record.wrapped_secret, secret_binding(record.access_key_id)).decode("utf-8")


def set_access_key_status(storage: Storage, access_key_id: str, status: str) -> None:
    if status not in (ACTIVE, INACTIVE):
        raise IdentityError("status is Active or Inactive")
    with storage.transaction() as tx:
        if tx.get_access_key(access_key_id) is None:
            raise IdentityError(f"no access key {access_key_id}")
        tx.set_access_key_status(access_key_id, status)


def delete_access_key(storage: Storage, access_key_id: str) -> None:
    with storage.transaction() as tx:
        if tx.get_access_key(access_key_id) is None:
            raise IdentityError(f"no access key {access_key_id}")
        tx.delete_access_key(access_key_id)


def delete_user(storage: Storage, account_id: str, user_name: str) -> None:
    with storage.transaction() as tx:
        if tx.get_user(account_id, user_name) is None:
            raise IdentityError(f"no user {user_name} in account {account_id}")
        tx.delete_user(account_id, user_name)
