"""The storage port: what operations, auth and the CLI may ask of persistence.

Each engine (``sqlite.py``, ``postgres.py``) implements :class:`Storage`; ``tests/storage`` runs one contract
suite against both. Every method of :class:`Transaction` runs inside the transaction it belongs to, so an API
call's writes commit together or not at all.

:class:`Transaction` is composed of one port per aggregate, each in its own module: ``keys`` (keys, versions,
aliases, tags, imported material), ``identities`` (accounts, users, access keys, groups, identity policies),
``grants``, ``lifecycle`` (due work and job leases), ``sessions`` (console sessions), ``seal``, and audit
(:class:`~openkms.storage.audit.AuditTransaction`). A caller that needs one aggregate may type against its port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from openkms.storage.audit import AuditTransaction
from openkms.storage.ports.grants import GrantTransaction
from openkms.storage.ports.identities import IdentityTransaction
from openkms.storage.ports.keys import KeyTransaction
from openkms.storage.ports.lifecycle import LifecycleTransaction
from openkms.storage.ports.seal import SealTransaction
from openkms.storage.ports.sessions import SessionTransaction
from openkms.storage.ports.tables import TableTransaction
from openkms.storage.records import KeyRecord

__all__ = [
    "AuditTransaction",
    "CommitHook",
    "DuplicateError",
    "GrantTransaction",
    "IdentityTransaction",
    "KeyTransaction",
    "LifecycleTransaction",
    "SealTransaction",
    "SessionTransaction",
    "Storage",
    "StorageError",
    "Transaction",
    "iterate_all_keys",
]


class StorageError(Exception):
    """A storage failure that is not the caller's fault (disk, connection, corruption)."""


class DuplicateError(StorageError):
    """A unique constraint refused an insert (alias name, user name, key id...)."""


class Transaction(
    KeyTransaction,
    IdentityTransaction,
    GrantTransaction,
    LifecycleTransaction,
    SessionTransaction,
    SealTransaction,
    AuditTransaction,
    TableTransaction,
    Protocol,
):
    """Every aggregate's port over one open transaction; what ``storage.transaction()`` and ``read()`` yield."""


# Runs inside every write transaction just before COMMIT (an exception rolls it back); what it returns, if
# anything, runs after the commit succeeded. The audit trail joins state changes this way.
CommitHook = Callable[[Transaction], Callable[[], None] | None]


class Storage(Protocol):
    dialect: str  # "sqlite" or "postgresql"

    @property
    def before_commit(self) -> CommitHook | None:
        """The hook every write transaction runs (:data:`CommitHook`), given when the storage was opened."""
        ...

    def committing_with(self, hook: CommitHook) -> AbstractContextManager[None]:
        """Within the block, every write transaction of this storage (on any thread) runs ``hook``.

        For a tool that owns its storage and knows each change's record only when it makes it (``openkms iam``);
        refused (RuntimeError) while another hook is in force, which a second one would silently displace.
        """
        ...

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
