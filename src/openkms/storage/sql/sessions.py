"""The console sessions aggregate over SQL (console/sessions.py). The identities aggregate ends a session when
it deletes the session's access key or user."""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

from openkms.storage.records import ConsoleSessionRecord
from openkms.storage.sql.core import Render, TransactionCore, columns, csv, marks, values

_SESSION_COLS = columns(ConsoleSessionRecord)


class SessionQueries:
    """The statements of the console sessions aggregate, rendered for one dialect."""

    def __init__(self, sql: Render) -> None:
        s = csv(_SESSION_COLS)
        self.insert_console_session = sql(
            f"INSERT INTO console_sessions ({s}) VALUES ({marks(len(_SESSION_COLS))}) ON CONFLICT DO NOTHING"
        )
        self.get_console_session = sql(f"SELECT {s} FROM console_sessions WHERE token_digest = ?")
        self.delete_console_session = sql("DELETE FROM console_sessions WHERE token_digest = ?")
        self.delete_expired_console_sessions = sql("DELETE FROM console_sessions WHERE expires_at <= ?")


class SessionsSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.sessions.SessionTransaction`."""

    __slots__ = ()
    _q: SessionQueries

    def insert_console_session(self, session: ConsoleSessionRecord) -> None:
        self._insert(self._q.insert_console_session, values(session, _SESSION_COLS), "console session")

    def get_console_session(self, token_digest: str) -> ConsoleSessionRecord | None:
        row = self._one(self._q.get_console_session, (token_digest,))
        return None if row is None else ConsoleSessionRecord(*row)

    def delete_console_session(self, token_digest: str) -> None:
        self._write(self._q.delete_console_session, (token_digest,))

    def delete_expired_console_sessions(self, now: float) -> int:
        return self._write(self._q.delete_expired_console_sessions, (now,))
