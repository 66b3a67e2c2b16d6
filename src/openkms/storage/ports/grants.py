"""The grants aggregate of the storage port (a grant belongs to one key; every request on a key reads its
grants). Composed into :class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from typing import Protocol

from openkms.storage.records import GrantRecord


class GrantTransaction(Protocol):
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
