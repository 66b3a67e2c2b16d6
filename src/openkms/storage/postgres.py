"""The shared engine: PostgreSQL through psycopg 3, for several stateless openkms nodes (docs/design.md section 6).

- ``synchronous_commit=on`` is set on every session, whatever the server default, so an acknowledged
  write survives a crash of the database server (docs/design.md section 8).
- Write transactions are READ COMMITTED; the read-modify-write races that level allows are closed by
  the row locks ``get_key``/``get_alias`` take in write transactions (see :mod:`openkms.storage.sql.keys`).
- ``read()`` is REPEATABLE READ, READ ONLY: one snapshot for every statement of the block, as the port
  promises (get_key then get_version must not straddle a concurrent rotation or deletion). Read-only
  transactions at that level never fail with serialization errors, and cost the same as READ COMMITTED.
- Connections run in autocommit mode and we send BEGIN ourselves, because then BEGIN is the first
  thing each transaction sends: if the server restarted (or killed our idle session), that BEGIN fails
  on a broken connection, we reconnect and send it again, and the caller never notices. A connection
  that breaks mid-transaction fails that transaction with :class:`StorageError`; the next one
  reconnects.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from openkms.storage.migrate import PG_MIGRATION_LOCK_ID
from openkms.storage.ports import CommitHook
from openkms.storage.sql import Cursor, Dialect, SQLStorage, ThreadState

CONNECT_TIMEOUT_S = 10

PgConnection = psycopg.Connection[tuple[Any, ...]]


def _is_unique_violation(exc: Exception) -> bool:
    return isinstance(exc, psycopg.errors.UniqueViolation)


POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    driver_error=psycopg.Error,
    is_unique_violation=_is_unique_violation,
    column_types={
        "id": 'TEXT COLLATE "C"',
        "bytes": "BYTEA",
        "time": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "int64": "BIGINT",
    },
    lock_clause=" FOR NO KEY UPDATE",
    begin_write=("BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE",),
    begin_read=("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",),
    begin_migrate=(
        "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE",
        f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK_ID})",
    ),
    table_exists="SELECT 1 WHERE to_regclass(%s) IS NOT NULL",
)


class PostgresStorage(SQLStorage[PgConnection]):
    """The port over one PostgreSQL database; each thread gets its own connection, opened on first use.
    ``before_commit``: the hook every write transaction runs (:data:`~openkms.storage.ports.CommitHook`)."""

    def __init__(self, url: str, *, before_commit: CommitHook | None = None) -> None:
        self._url = url
        # Our defaults, unless the URL says otherwise (raises ProgrammingError on a malformed URL).
        given = conninfo_to_dict(url)
        self._connect_args: dict[str, Any] = {}
        if "connect_timeout" not in given:
            self._connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        if "application_name" not in given:
            self._connect_args["application_name"] = "openkms"
        super().__init__(POSTGRESQL, before_commit)

    def _connect(self) -> tuple[PgConnection, Cursor]:
        conn = psycopg.connect(self._url, autocommit=True, **self._connect_args)
        try:
            conn.execute("SET synchronous_commit TO on")
        except BaseException:
            conn.close()
            raise
        return conn, conn.cursor()

    def _close_connection(self, conn: PgConnection) -> None:
        conn.close()

    def _begin(self, state: ThreadState[PgConnection], statements: tuple[str, ...]) -> None:
        if state.conn.broken or state.conn.closed:
            self._replace_connection(state)
        try:
            super()._begin(state, statements)
        except psycopg.OperationalError:
            if not state.conn.broken:
                raise
            # The session died while idle (server restart, idle timeout, terminated backend): nothing of
            # this transaction was sent yet, so a fresh connection can simply start it again.
            self._replace_connection(state)
            super()._begin(state, statements)

    def _in_transaction(self, state: ThreadState[PgConnection]) -> bool:
        return state.conn.info.transaction_status != pq.TransactionStatus.IDLE
