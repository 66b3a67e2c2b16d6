"""The engine-independent half of :class:`~openkms.storage.ports.Storage`: connections, transactions, schema.

``sqlite.py`` and ``postgres.py`` differ only in how they connect, which statements open a transaction and
which driver exceptions mean what; they describe that in a :class:`~openkms.storage.sql.core.Dialect` and
inherit everything else from :class:`SQLStorage`.

Rules the engines share:

- Each thread has its own connection (DB-API connections are not meant to be shared mid-transaction);
  :class:`SQLStorage` keeps a registry so ``close()`` can close all of them and a dead thread's
  connection is closed when the next one is opened.
- Inserts that can collide use ``ON CONFLICT DO NOTHING`` and raise :class:`DuplicateError` when no row was
  written. No statement fails, so on PostgreSQL the transaction stays usable after a caught duplicate.
- In write transactions ``get_key``, ``get_alias``, ``get_user`` and ``get_group`` lock the row (PostgreSQL
  ``FOR NO KEY UPDATE``; SQLite already serialises writers with ``BEGIN IMMEDIATE``): see ``keys.py`` and
  ``identities.py`` for why.
- The commit hook (:data:`~openkms.storage.ports.CommitHook`) is given when the storage is opened: the audit
  trail joins every state change of the server that way. ``committing_with`` lends one to a tool for a block.
- Driver errors become :class:`StorageError` (the original kept as ``__cause__``) so the server maps them to
  ``KMSInternalException`` without leaking driver text to clients.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar

from openkms.storage import migrate as _migrate
from openkms.storage.ports import CommitHook, StorageError
from openkms.storage.sql.core import Cursor, Dialect
from openkms.storage.sql.transaction import Queries, SQLTransaction

C = TypeVar("C")


class ThreadState(Generic[C]):
    """One thread's connection, its reusable cursor, and whether a transaction is open on it."""

    __slots__ = ("busy", "conn", "cur", "thread")

    def __init__(self, conn: C, cur: Cursor) -> None:
        self.conn = conn
        self.cur = cur
        self.busy = False
        self.thread = threading.current_thread()


_LIVE_STORAGES: weakref.WeakSet[SQLStorage[Any]] = weakref.WeakSet()
_FORK_ORPHANS: list[object] = []  # connections inherited across fork: never used or closed in the child


def _after_fork_in_child() -> None:
    # Closing an inherited connection would disturb the parent (libpq sends Terminate on the shared socket,
    # SQLite may release locks), so the child forgets them and opens its own.
    for storage in list(_LIVE_STORAGES):
        storage._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLStorage(Generic[C]):
    """The engine-independent half of :class:`~openkms.storage.ports.Storage`.

    Subclasses provide ``_connect``/``_close_connection`` and may override ``_begin`` (PostgreSQL retries
    on a connection that broke while idle).
    """

    def __init__(self, dialect: Dialect, before_commit: CommitHook | None = None) -> None:
        self.dialect = dialect.name
        self._dialect = dialect
        self._write_queries = Queries(dialect.placeholder, dialect.lock_clause)
        self._read_queries = Queries(dialect.placeholder, "")
        self._local = threading.local()
        self._registry: list[ThreadState[C]] = []
        self._registry_lock = threading.Lock()
        self._closed = False
        self._before_commit = before_commit
        _LIVE_STORAGES.add(self)

    # -- the commit hook

    @property
    def before_commit(self) -> CommitHook | None:
        return self._before_commit

    @contextmanager
    def committing_with(self, hook: CommitHook) -> Iterator[None]:
        """See :meth:`openkms.storage.ports.Storage.committing_with`."""
        if self._before_commit is not None:
            raise RuntimeError("this storage already runs a commit hook; a second would displace it")
        self._before_commit = hook
        try:
            yield
        finally:
            self._before_commit = None

    # -- subclass hooks

    def _connect(self) -> tuple[C, Cursor]:
        raise NotImplementedError

    def _close_connection(self, conn: C) -> None:
        raise NotImplementedError

    def _begin(self, state: ThreadState[C], statements: tuple[str, ...]) -> None:
        for sql in statements:
            state.cur.execute(sql, ())

    def _in_transaction(self, state: ThreadState[C]) -> bool:
        """Whether the server side still has a transaction open (SQLite ends some on error by itself)."""
        return True

    def _transaction_ended(self, state: ThreadState[C]) -> None:
        """Called after every COMMIT or ROLLBACK attempt, whatever its outcome."""

    # -- per-thread connections

    def _state(self) -> ThreadState[C]:
        try:
            state: ThreadState[C] = self._local.state
        except AttributeError:
            state = self._new_state()
        return state

    def _new_state(self) -> ThreadState[C]:
        if self._closed:
            raise StorageError(f"{self.dialect} storage is closed")
        self._close_dead_threads()
        try:
            conn, cur = self._connect()
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc
        state = ThreadState(conn, cur)
        with self._registry_lock:
            self._registry.append(state)
        self._local.state = state
        return state

    def _close_dead_threads(self) -> None:
        with self._registry_lock:
            dead = [s for s in self._registry if not s.thread.is_alive()]
            self._registry = [s for s in self._registry if s.thread.is_alive()]
        for s in dead:
            self._close_quietly(s.conn)

    def _replace_connection(self, state: ThreadState[C]) -> None:
        """Swap this thread's connection for a fresh one (after it broke)."""
        self._close_quietly(state.conn)
        try:
            state.conn, state.cur = self._connect()
        except self._dialect.driver_error as exc:
            self._drop_state(state)
            raise self._dialect.wrap(exc) from exc

    def _drop_state(self, state: ThreadState[C]) -> None:
        with self._registry_lock:
            if state in self._registry:
                self._registry.remove(state)
        if getattr(self._local, "state", None) is state:
            del self._local.state

    def _close_quietly(self, conn: C) -> None:
        try:
            self._close_connection(conn)
        except Exception:  # noqa: S110 - closing a broken connection may fail; there is nothing to save
            pass

    def _forget_connections(self) -> None:
        with self._registry_lock:
            _FORK_ORPHANS.extend(s.conn for s in self._registry)
            self._registry = []
        self._local = threading.local()

    # -- transactions

    def transaction(self) -> _Scope[C]:
        return _Scope(self, self._dialect.begin_write, self._write_queries, read_only=False)

    def read(self) -> _Scope[C]:
        return _Scope(self, self._dialect.begin_read, self._read_queries, read_only=True)

    def _open(self, statements: tuple[str, ...]) -> ThreadState[C]:
        state = self._state()
        if state.busy:
            raise RuntimeError("a transaction is already open on this thread; pass its Transaction down instead")
        try:
            self._begin(state, statements)
        except BaseException as exc:
            self._abandon(state)
            if isinstance(exc, self._dialect.driver_error):
                raise self._dialect.wrap(exc) from exc
            raise
        state.busy = True
        return state

    def _commit(self, state: ThreadState[C]) -> None:
        state.busy = False
        try:
            state.cur.execute("COMMIT", ())
        except self._dialect.driver_error as exc:
            self._abandon(state)
            raise self._dialect.wrap(exc) from exc
        self._transaction_ended(state)

    def _abandon(self, state: ThreadState[C]) -> None:
        """Roll back whatever is open; a connection that cannot even do that is replaced next time."""
        state.busy = False
        try:
            if self._in_transaction(state):
                state.cur.execute("ROLLBACK", ())
        except self._dialect.driver_error:
            self._close_quietly(state.conn)
            self._drop_state(state)
        finally:
            self._transaction_ended(state)

    # -- schema

    def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations under the dialect's migration lock; see :mod:`openkms.storage.migrate`."""
        return self._schema_step(
            self._dialect.begin_migrate, lambda cur, dialect: _migrate.apply_pending(cur, dialect, target)
        )

    def schema_version(self) -> int:
        return self._schema_step(self._dialect.begin_read, _migrate.current_version)

    def _schema_step(self, begin: tuple[str, ...], step: Callable[[Cursor, Dialect], int]) -> int:
        """Run one schema function in its own transaction; any failure rolls back."""
        state = self._open(begin)
        try:
            version = step(state.cur, self._dialect)
        except self._dialect.driver_error as exc:
            self._abandon(state)
            raise self._dialect.wrap(exc) from exc
        except BaseException:
            self._abandon(state)
            raise
        self._commit(state)
        return version

    def shred_deleted(self, attempts: int = 20) -> bool:
        """See :meth:`openkms.storage.ports.Storage.shred_deleted`; engines that can do more override it.
        Refused inside a transaction on every engine, so callers find the mistake on the engine they test."""
        if self._state().busy:
            raise RuntimeError("shred_deleted() inside a transaction cannot reach what the transaction holds")
        return False

    def close(self) -> None:
        """Close every thread's connection; later use raises :class:`StorageError`."""
        self._closed = True
        with self._registry_lock:
            states, self._registry = self._registry, []
        self._local = threading.local()
        for s in states:
            self._close_quietly(s.conn)
        _LIVE_STORAGES.discard(self)


class _Scope(Generic[C]):
    """``with storage.transaction() as tx``: commit on normal exit, roll back on any exception.

    A plain class rather than ``@contextmanager``: this is on the hot path of every request.
    """

    __slots__ = ("_queries", "_read_only", "_state", "_statements", "_storage", "_tx")

    def __init__(
        self, storage: SQLStorage[C], statements: tuple[str, ...], queries: Queries, *, read_only: bool
    ) -> None:
        self._storage = storage
        self._statements = statements
        self._queries = queries
        self._read_only = read_only

    def __enter__(self) -> SQLTransaction:
        storage = self._storage
        self._state = state = storage._open(self._statements)
        self._tx = SQLTransaction(state.cur, storage._dialect, self._queries, read_only=self._read_only)
        return self._tx

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        storage = self._storage
        after_commit: Callable[[], None] | None = None
        if exc_type is None and not self._read_only and (before_commit := storage._before_commit) is not None:
            try:
                after_commit = before_commit(self._tx)
            except BaseException:
                self._tx._end()
                storage._abandon(self._state)
                raise
        self._tx._end()
        if exc_type is None:
            storage._commit(self._state)
            if after_commit is not None:
                after_commit()
        else:
            storage._abandon(self._state)
