"""The keys aggregate of the storage port: a key, its versions (wrapped material), aliases, tags and imported
material. Composed into :class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from openkms.storage.records import (
    AliasRecord,
    ImportedMaterialRecord,
    KeyCount,
    KeyMaterialRecord,
    KeyRecord,
    KeyVersionRecord,
    TagRecord,
)


class KeyTransaction(Protocol):
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

    def count_versions(self, key_id: str, rotation_type: str) -> int:
        """How many of the key's versions came from ``rotation_type`` (INITIAL, AUTOMATIC, ON_DEMAND)."""
        ...

    def delete_version(self, key_id: str, version_id: str) -> bool:
        """Remove one key version and its wrapped material; whether it existed."""
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

    # imported material (operations/key_import.py)
    def get_imported_material(self, key_id: str) -> ImportedMaterialRecord | None:
        """In a write transaction the row is locked until commit (see :meth:`IdentityTransaction.get_user`)."""
        ...

    def put_imported_material(self, record: ImportedMaterialRecord) -> None:
        """Insert or overwrite the key's record; the key must exist (:class:`StorageError` otherwise)."""
        ...

    def list_key_materials(self, key_id: str) -> list[KeyMaterialRecord]:
        """Every material imported into the symmetric EXTERNAL key, in import order."""
        ...

    def put_key_material(self, record: KeyMaterialRecord) -> None:
        """Insert or overwrite the record of one material (by key id and version id)."""
        ...

    def delete_key_material(self, key_id: str, version_id: str) -> None:
        """Forget one material's record (a PENDING_ROTATION material deleted before its rotation)."""
        ...
