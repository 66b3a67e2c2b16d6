"""The embedded engine: one SQLite file in WAL mode (docs/design.md sections 6 and 8).

Durability is explicit on every connection: ``journal_mode=WAL`` (readers never block the writer),
``synchronous=FULL`` (a commit is on disk before it is acknowledged, power loss included),
``secure_delete=ON`` (deleted rows are zeroed in the database file) and ``foreign_keys=ON``. Destroyed
material can still sit in the ``-wal`` file until a checkpoint copies the zeroed pages over it: a key
deletion ends with :meth:`SQLiteStorage.checkpoint_truncate`.

Writers take the write lock at ``BEGIN IMMEDIATE`` and queue behind ``busy_timeout`` instead of failing on
a lock upgrade; readers use ``BEGIN`` (deferred), which in WAL mode is a consistent snapshot that costs no I/O.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

from openkms.storage.ports import CommitHook, StorageError
from openkms.storage.sql import Cursor, Dialect, SQLStorage, ThreadState

BUSY_TIMEOUT_MS = 10_000

_UNIQUE_CODES = frozenset(
    {
        getattr(sqlite3, "SQLITE_CONSTRAINT_UNIQUE", 2067),
        getattr(sqlite3, "SQLITE_CONSTRAINT_PRIMARYKEY", 1555),
    }
)


def _is_unique_violation(exc: Exception) -> bool:
    # IntegrityError also covers foreign keys, NOT NULL and CHECK; only these two codes are duplicates.
    return isinstance(exc, sqlite3.IntegrityError) and getattr(exc, "sqlite_errorcode", None) in _UNIQUE_CODES


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    driver_error=sqlite3.Error,
    is_unique_violation=_is_unique_violation,
    column_types={"id": "TEXT", "bytes": "BLOB", "time": "REAL", "bool": "INTEGER", "int64": "INTEGER"},
    lock_clause="",  # BEGIN IMMEDIATE already serialises writers
    begin_write=("BEGIN IMMEDIATE",),
    begin_read=("BEGIN DEFERRED",),
    begin_migrate=("BEGIN IMMEDIATE",),
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
)

_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",  # first, so the journal-mode switch below also waits
    "PRAGMA synchronous = FULL",
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA trusted_schema = OFF",  # the schema is ours: no functions from views or triggers of a planted file
)


def _create_private_file(path: Path) -> None:
    """Create the directory (0700) and the database file (0600) if absent; SQLite gives -wal/-shm the same mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteStorage(SQLStorage[sqlite3.Connection]):
    """The port over one SQLite file; each thread gets its own connection. ``before_commit``: the hook every
    write transaction runs (:data:`~openkms.storage.ports.CommitHook`)."""

    def __init__(self, path: str | Path, *, before_commit: CommitHook | None = None) -> None:
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file:"):
            # Each thread has its own connection, so an in-memory database would be a different one per thread.
            raise ValueError(f"SQLiteStorage needs a filesystem path, got {text!r}")
        # Absolute, so that every thread's connection opens the same file even if the cwd changes later.
        self.path = Path(text).expanduser().absolute()
        try:
            _create_private_file(self.path)
        except OSError as exc:
            raise StorageError(f"sqlite: cannot create {self.path}: {exc}") from exc
        self._lock_path = self.path.with_name(self.path.name + ".writelock")
        self._write_lock = threading.local()
        super().__init__(SQLITE, before_commit)

    def _connect(self) -> tuple[sqlite3.Connection, Cursor]:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # used by one thread only, but close() may run on another
            cached_statements=256,
        )
        try:
            for pragma in _PRAGMAS:
                conn.execute(pragma)
            mode = _switch_to_wal(conn)
            if mode != "wal":
                raise StorageError(f"sqlite: {self.path} refused WAL mode (journal_mode={mode}); is it on NFS?")
        except BaseException:
            conn.close()
            raise
        return conn, conn.cursor()

    def _close_connection(self, conn: sqlite3.Connection) -> None:
        conn.close()

    def _begin(self, state: ThreadState[sqlite3.Connection], statements: tuple[str, ...]) -> None:
        if statements[0] == "BEGIN IMMEDIATE":
            self._take_write_lock()
        super()._begin(state, statements)

    def _take_write_lock(self) -> None:
        """Queue writers of every process on an flock before ``BEGIN IMMEDIATE``.

        SQLite's own busy handler polls with sleeps that grow to 100 ms, so two processes that both write
        often (each worker's audit writer commits several times a millisecond under load) starve each other
        and p99 latency explodes. A blocked ``flock`` wakes as soon as the holder releases it; SQLite's lock
        stays the authority (other programs on the file still use busy_timeout).
        """
        fd = getattr(self._write_lock, "fd", None)
        if fd is None:
            fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
            self._write_lock.fd = fd
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._write_lock.held = True

    def _transaction_ended(self, state: ThreadState[sqlite3.Connection]) -> None:
        if getattr(self._write_lock, "held", False):
            self._write_lock.held = False
            fcntl.flock(self._write_lock.fd, fcntl.LOCK_UN)

    def _in_transaction(self, state: ThreadState[sqlite3.Connection]) -> bool:
        return state.conn.in_transaction

    def checkpoint_truncate(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes (crypto-shredding after a delete).

        Returns False if a reader kept part of the WAL alive; the caller may retry. Waits up to
        ``busy_timeout`` for readers; must not be called inside a transaction.
        """
        state = self._state()
        if state.busy:
            raise RuntimeError("checkpoint_truncate() inside a transaction cannot truncate the WAL")
        try:
            state.cur.execute("PRAGMA wal_checkpoint(TRUNCATE)", ())
            busy, _, _ = state.cur.fetchone()
        except sqlite3.Error as exc:
            raise SQLITE.wrap(exc) from exc
        return int(busy) == 0

    def shred_deleted(self, attempts: int = 20, pause_seconds: float = 0.05) -> bool:
        """Deleted rows are already zeroed in the pages (``secure_delete``); truncating the WAL removes the
        older frames that still hold them. Readers of other connections can keep the WAL alive for a moment,
        so this retries a few times."""
        for attempt in range(attempts):
            if self.checkpoint_truncate():
                return True
            if attempt + 1 < attempts:
                time.sleep(pause_seconds)
        return False


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Enter WAL mode; the switch can answer SQLITE_BUSY at once while another connection opens the file,
    without consulting busy_timeout, so it is retried here (WAL is persistent: usually already set)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        (current,) = conn.execute("PRAGMA journal_mode").fetchone()
        if str(current).lower() == "wal":
            return "wal"
        try:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return str(mode).lower()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
