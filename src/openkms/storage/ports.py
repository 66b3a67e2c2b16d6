"""The storage port: what operations, auth and the CLI may ask of persistence.

Each engine (``sqlite.py``, ``postgres.py``) implements :class:`Storage`; ``tests/contract`` runs one suite
against both. Every method of :class:`Transaction` runs inside the transaction it belongs to, so an API
call's writes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from openkms.storage.records import (
    AccessKeyRecord,
    AliasRecord,
    KeyRecord,
    KeyVersionRecord,
    SealRecord,
    TagRecord,
    UserRecord,
)


class StorageError(Exception):
    """A storage failure that is not the caller's fault (disk, connection, corruption)."""


class DuplicateError(StorageError):
    """A unique constraint refused an insert (alias name, user name, key id...)."""


class Transaction(Protocol):
    # keys
    def insert_key(self, key: KeyRecord) -> None: ...
    def get_key(self, key_id: str) -> KeyRecord | None: ...
    def update_key(self, key: KeyRecord) -> None:
        """Overwrite every mutable column of the key with ``key``'s values."""
        ...

    def list_keys(self, account_id: str, region: str, after_key_id: str | None, limit: int) -> list[KeyRecord]:
        """Keys of one account and region ordered by key id, strictly after ``after_key_id``."""
        ...

    def delete_key(self, key_id: str) -> None:
        """Remove the key, its versions (material), aliases and tags."""
        ...

    # key versions
    def insert_version(self, version: KeyVersionRecord) -> None: ...
    def get_version(self, key_id: str, version_id: str) -> KeyVersionRecord | None: ...
    def list_versions(self, key_id: str) -> list[KeyVersionRecord]:
        """Oldest first."""
        ...

    # aliases (unique per account, region and name)
    def insert_alias(self, alias: AliasRecord) -> None:
        """Raises :class:`DuplicateError` if the name is taken in that account and region."""
        ...

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None: ...
    def update_alias(self, alias: AliasRecord) -> None: ...
    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None: ...
    def list_aliases(
        self, account_id: str, region: str, key_id: str | None, after_alias_name: str | None, limit: int
    ) -> list[AliasRecord]:
        """Ordered by alias name, strictly after ``after_alias_name``; only those of ``key_id`` if given."""
        ...

    # tags
    def put_tags(self, key_id: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite each tag."""
        ...

    def delete_tags(self, key_id: str, tag_keys: Sequence[str]) -> None: ...
    def list_tags(self, key_id: str, after_tag_key: str | None, limit: int) -> list[TagRecord]:
        """Ordered by tag key."""
        ...

    def count_tags(self, key_id: str) -> int: ...

    # identities
    def insert_account(self, account_id: str, created_at: float) -> None:
        """Idempotent: an existing account is left alone."""
        ...

    def account_exists(self, account_id: str) -> bool: ...
    def list_accounts(self) -> list[str]: ...
    def insert_user(self, user: UserRecord) -> None:
        """Raises :class:`DuplicateError` if the name is taken in the account."""
        ...

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None: ...
    def list_users(self, account_id: str | None) -> list[UserRecord]: ...
    def delete_user(self, account_id: str, user_name: str) -> None:
        """Also deletes the user's access keys."""
        ...

    def insert_access_key(self, key: AccessKeyRecord) -> None: ...
    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...
    def list_access_keys(self, account_id: str | None, user_name: str | None) -> list[AccessKeyRecord]: ...
    def set_access_key_status(self, access_key_id: str, status: str) -> None: ...
    def delete_access_key(self, access_key_id: str) -> None: ...

    # seal
    def get_seal(self) -> SealRecord | None: ...
    def put_seal(self, seal: SealRecord) -> None:
        """Raises :class:`DuplicateError` if a seal already exists (init runs once)."""
        ...


class Storage(Protocol):
    dialect: str  # "sqlite" or "postgresql"

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A read-write transaction: commits on normal exit, rolls back on exception.

        SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``) so that concurrent writers queue
        instead of failing on lock upgrade.
        """
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only snapshot; cheap, used on the hot path (Encrypt, Decrypt, auth)."""
        ...

    def migrate(self) -> int:
        """Apply pending schema migrations; returns the schema version now in force."""
        ...

    def schema_version(self) -> int: ...

    def close(self) -> None: ...


def iterate_all_keys(storage: Storage, account_id: str, region: str, page: int = 500) -> Iterator[KeyRecord]:
    """Every key of an account and region, page by page (for CLI listings)."""
    after: str | None = None
    while True:
        with storage.read() as tx:
            batch = tx.list_keys(account_id, region, after, page)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].key_id
