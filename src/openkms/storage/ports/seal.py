"""The seal record of the storage port: how the root key is protected, written once by ``openkms init``
(seal/). Composed into :class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from typing import Protocol

from openkms.storage.records import SealRecord


class SealTransaction(Protocol):
    def get_seal(self) -> SealRecord | None: ...
    def put_seal(self, seal: SealRecord) -> None:
        """Raises :class:`DuplicateError` if a seal already exists (init runs once)."""
        ...
