"""The storage port: what operations, auth and the CLI may ask of persistence.

Each engine (``sqlite.py``, ``postgres.py``) implements :class:`Storage`; ``tests/contract`` runs one suite
against both. Every method of :class:`Transaction` runs inside the transaction it belongs to, so an API
call's writes commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from openkms.storage.audit import AuditTransaction
from openkms.storage.records import (
    AccessKeyRecord,
    AliasRecord,
    ConsoleSessionRecord,
    GrantRecord,
    GroupRecord,
    ImportedMaterialRecord,
    JobLeaseRecord,
    KeyCount,
    KeyRecord,
    KeyVersionRecord,
    PrincipalAuthorization,
    SealRecord,
    TagRecord,
    UserRecord,
)


class StorageError(Exception):
    """A storage failure that is not the caller's fault (disk, connection, corruption)."""


class DuplicateError(StorageError):
    """A unique constraint refused an insert (alias name, user name, key id...)."""


class Transaction(AuditTransaction, Protocol):
    # keys
    def insert_key(self, key: KeyRecord) -> None: ...
    def get_key(self, key_id: str) -> KeyRecord | None: ...
    def update_key(self, key: KeyRecord) -> None:
        """Overwrite every mutable column of the key with ``key``'s values."""
        ...

    def list_keys(self, account_id: str, region: str, after_key_id: str | None, limit: int) -> list[KeyRecord]:
        """Keys of one account and region ordered by key id, strictly after ``after_key_id``."""
        ...

    def count_keys(self) -> list[KeyCount]:
        """Keys per account, region and state, ordered by those three; only non-zero counts."""
        ...

    def delete_key(self, key_id: str) -> None:
        """Remove the key, its versions (material), aliases, tags and grants."""
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
        """Raises :class:`DuplicateError` if the name is taken in the account, also in another case."""
        ...

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None:
        """In a write transaction the row is locked until commit, so that read-check-write sequences on the
        user's children (the aggregate size of its inline policies, say) cannot interleave."""
        ...

    def find_user_ignoring_case(self, account_id: str, user_name: str) -> UserRecord | None:
        """The account's user whose name equals ``user_name`` ignoring case (IAM user names are unique so)."""
        ...

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` that some user has now (a deleted user's unique id is never reused)."""
        ...

    def list_users(self, account_id: str | None) -> list[UserRecord]: ...
    def delete_user(self, account_id: str, user_name: str) -> None:
        """Also deletes the user's access keys, inline policies, tags and group memberships."""
        ...

    def insert_access_key(self, key: AccessKeyRecord) -> None: ...
    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...
    def list_access_keys(self, account_id: str | None, user_name: str | None) -> list[AccessKeyRecord]: ...
    def set_access_key_status(self, access_key_id: str, status: str) -> None: ...
    def delete_access_key(self, access_key_id: str) -> None: ...

    # inline identity policies (documents are JSON text, stored as given; names ordered bytewise)
    def put_user_policy(self, account_id: str, user_name: str, policy_name: str, document: str) -> None:
        """Insert or replace; the user must exist (:class:`StorageError` otherwise)."""
        ...

    def delete_user_policy(self, account_id: str, user_name: str, policy_name: str) -> bool:
        """Whether a policy was deleted."""
        ...

    def list_user_policies(self, account_id: str, user_name: str) -> dict[str, str]:
        """Policy name -> document, ordered by name."""
        ...

    # groups
    def insert_group(self, group: GroupRecord) -> None:
        """Raises :class:`DuplicateError` if the name is taken in the account (or the group id anywhere)."""
        ...

    def get_group(self, account_id: str, group_name: str) -> GroupRecord | None:
        """In a write transaction the row is locked until commit (see :meth:`get_user`)."""
        ...

    def list_groups(self, account_id: str | None) -> list[GroupRecord]:
        """Ordered by account id, then group name; every account's if ``account_id`` is None."""
        ...

    def delete_group(self, account_id: str, group_name: str) -> bool:
        """Also deletes the group's inline policies and memberships; whether the group existed."""
        ...

    def add_user_to_group(self, account_id: str, user_name: str, group_name: str) -> None:
        """Idempotent; the user and the group must exist (:class:`StorageError` otherwise)."""
        ...

    def remove_user_from_group(self, account_id: str, user_name: str, group_name: str) -> bool:
        """Whether the user was a member."""
        ...

    def list_groups_for_user(self, account_id: str, user_name: str) -> list[str]:
        """Group names, ordered."""
        ...

    def list_group_members(self, account_id: str, group_name: str) -> list[str]:
        """User names, ordered."""
        ...

    def put_group_policy(self, account_id: str, group_name: str, policy_name: str, document: str) -> None:
        """Insert or replace; the group must exist (:class:`StorageError` otherwise)."""
        ...

    def delete_group_policy(self, account_id: str, group_name: str, policy_name: str) -> bool: ...
    def list_group_policies(self, account_id: str, group_name: str) -> dict[str, str]:
        """Policy name -> document, ordered by name."""
        ...

    # principal tags (aws:PrincipalTag/...)
    def put_user_tags(self, account_id: str, user_name: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite each tag; the user must exist. Keys compare exactly (case rules are the caller's)."""
        ...

    def delete_user_tags(self, account_id: str, user_name: str, tag_keys: Sequence[str]) -> None: ...
    def list_user_tags(self, account_id: str, user_name: str) -> dict[str, str]:
        """Tag key -> value, ordered by key."""
        ...

    def principal_authorization(self, account_id: str, user_name: str) -> PrincipalAuthorization | None:
        """The user, its tags, groups and every inline policy that applies to it; None if there is no such user.

        On the path of every API request: two queries, both on primary keys or indexes.
        """
        ...

    # grants
    def insert_grant(self, grant: GrantRecord) -> None:
        """The key must exist (:class:`StorageError`); a taken grant id or token raises :class:`DuplicateError`."""
        ...

    def get_grant(self, key_id: str, grant_id: str) -> GrantRecord | None: ...
    def get_grant_by_token(self, grant_token: str) -> GrantRecord | None: ...
    def find_grant_by_name(self, key_id: str, name: str) -> list[GrantRecord]:
        """The key's grants of that name, ordered by grant id (CreateGrant's idempotence check)."""
        ...

    def list_grants(
        self,
        key_id: str,
        after_grant_id: str | None,
        limit: int,
        *,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
    ) -> list[GrantRecord]:
        """The key's grants ordered by grant id, strictly after ``after_grant_id``; filters apply if given."""
        ...

    def list_retirable_grants(
        self, retiring_principal: str, after_grant_id: str | None, limit: int
    ) -> list[GrantRecord]:
        """Grants of any key naming ``retiring_principal``, ordered by grant id, strictly after ``after_grant_id``."""
        ...

    def delete_grant(self, key_id: str, grant_id: str) -> bool:
        """Whether a grant was deleted."""
        ...

    def grants_for(self, key_id: str, grantee_principal: str) -> list[GrantRecord]:
        """The key's grants to that grantee, ordered by grant id; one indexed query (every request on a key)."""
        ...

    def count_grants(self, key_id: str) -> int: ...

    # seal
    def get_seal(self) -> SealRecord | None: ...
    def put_seal(self, seal: SealRecord) -> None:
        """Raises :class:`DuplicateError` if a seal already exists (init runs once)."""
        ...

    # -- key import
    def get_imported_material(self, key_id: str) -> ImportedMaterialRecord | None:
        """In a write transaction the row is locked until commit (see :meth:`get_user`)."""
        ...

    def put_imported_material(self, record: ImportedMaterialRecord) -> None:
        """Insert or overwrite the key's record; the key must exist (:class:`StorageError` otherwise)."""
        ...

    def delete_version(self, key_id: str, version_id: str) -> bool:
        """Remove one key version and its wrapped material; whether it existed."""
        ...

    def list_expired_imported_material(self, now: float, limit: int) -> list[ImportedMaterialRecord]:
        """Records whose ``valid_to`` is at or before ``now`` and whose material is still present (its key version
        row exists), earliest ``valid_to`` first, then by key id."""

    # -- rotation (operations/rotation.py, jobs/rotation.py)
    def keys_due_for_rotation(self, key_state: str, before: float, limit: int) -> list[KeyRecord]:
        """Keys in ``key_state`` whose ``next_rotation_date`` is at or before ``before``, earliest first (then by
        key id); one indexed range scan."""
        ...

    def count_versions(self, key_id: str, rotation_type: str) -> int:
        """How many of the key's versions came from ``rotation_type`` (INITIAL, AUTOMATIC, ON_DEMAND)."""
        ...

    # -- deletion (jobs/deletion.py)
    def keys_due_for_deletion(self, before: float, limit: int) -> list[KeyRecord]:
        """Keys whose ``deletion_date`` is at or before ``before``, earliest first (then by key id)."""
        ...

    # -- job leases (jobs/scheduler.py)
    def ensure_job_lease(self, job_name: str) -> None:
        """Create the job's lease row, free and due at once, unless it exists."""
        ...

    def get_job_lease(self, job_name: str) -> JobLeaseRecord | None: ...
    def acquire_job_lease(self, job_name: str, holder: str, now: float, lease_until: float) -> bool:
        """Claim the job for ``holder`` until ``lease_until`` if its lease ended and its next run is due, both at
        ``now``; whether this call claimed it. Two nodes racing for one row: exactly one wins."""
        ...

    def release_job_lease(self, job_name: str, holder: str, now: float, next_run_at: float, failed: bool) -> bool:
        """End ``holder``'s lease at ``now`` and record the run; False if the lease had passed to another holder."""
        ...

    # -- console sessions (console/sessions.py)
    def insert_console_session(self, session: ConsoleSessionRecord) -> None:
        """The access key must exist (foreign key)."""
        ...

    def get_console_session(self, token_digest: str) -> ConsoleSessionRecord | None: ...
    def delete_console_session(self, token_digest: str) -> None: ...
    def delete_expired_console_sessions(self, now: float) -> int:
        """Remove the sessions that expired at or before ``now``; how many went."""
        ...


class Storage(Protocol):
    dialect: str  # "sqlite" or "postgresql"
    # Called inside every write transaction just before COMMIT (an exception rolls it back); what it returns,
    # if anything, is called after the commit succeeded. The audit trail joins state changes this way.
    before_commit: Callable[[Transaction], Callable[[], None] | None] | None

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A read-write transaction: commits on normal exit, rolls back on exception.

        SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``) so that concurrent writers queue
        instead of failing on lock upgrade.
        """
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A read-only snapshot; cheap, used on the hot path (Encrypt, Decrypt, auth)."""
        ...

    def migrate(self, target: int | None = None) -> int:
        """Apply pending schema migrations (up to ``target`` if given); returns the schema version now in force.

        ``target`` exists for tests of a migration (build the schema before it, add rows, migrate the rest);
        there are no downgrades, so a target below the current version changes nothing.
        """
        ...

    def schema_version(self) -> int: ...

    def shred_deleted(self, attempts: int = 20) -> bool:
        """Make rows that committed transactions deleted unrecoverable from the engine's own files, as far as
        the engine allows (crypto-shredding, docs/lifecycle.md); call outside any transaction. True only when
        that is done.

        SQLite zeroes deleted content (``secure_delete``) and here copies the WAL into the database and truncates
        it, so the old frames holding the deleted rows are gone; a reader can keep the WAL alive for a moment,
        so it tries up to ``attempts`` times, a short pause apart (1: no pause, for a request's own thread), and
        answers False if the WAL stayed. PostgreSQL cannot: dead tuples stay in pages until VACUUM lets them be
        overwritten, and its WAL and backups keep them; always False.
        """
        ...

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
