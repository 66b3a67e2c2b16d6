"""The console sessions aggregate of the storage port (console/sessions.py): a session belongs to an access
key, and deleting the key or its user ends it. Composed into :class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from typing import Protocol

from openkms.storage.records import ConsoleSessionRecord


class SessionTransaction(Protocol):
    def insert_console_session(self, session: ConsoleSessionRecord) -> None:
        """The access key must exist (foreign key)."""
        ...

    def get_console_session(self, token_digest: str) -> ConsoleSessionRecord | None: ...
    def delete_console_session(self, token_digest: str) -> None: ...
    def delete_expired_console_sessions(self, now: float) -> int:
        """Remove the sessions that expired at or before ``now``; how many went."""
        ...
