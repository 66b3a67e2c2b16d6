"""The keys aggregate over SQL: keys, their versions (wrapped material), aliases, tags and imported material.

In write transactions ``get_key``, ``get_alias`` and ``get_imported_material`` lock the row (the dialect's
``lock_clause``), because ``update_key`` overwrites every mutable column: without the lock, a concurrent
read-modify-write (DescribeKey -> UpdateKeyDescription) could silently undo a DisableKey.
"""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openkms.storage.records import (
    AliasRecord,
    ImportedMaterialRecord,
    KeyCount,
    KeyMaterialRecord,
    KeyRecord,
    KeyVersionRecord,
    TagRecord,
)
from openkms.storage.sql.core import Render, TransactionCore, columns, csv, marks, values

KEY_COLS = columns(KeyRecord)
_KEY_IMMUTABLE = frozenset(
    {"key_id", "account_id", "region", "arn", "key_usage", "key_spec", "origin", "key_manager", "creation_date"}
)
_KEY_MUTABLE = tuple(c for c in KEY_COLS if c not in _KEY_IMMUTABLE and c != "multi_region")
_KEY_BOOLS = tuple(i for i, c in enumerate(KEY_COLS) if c in ("multi_region", "rotation_enabled"))
_VERSION_COLS = columns(KeyVersionRecord)
_ALIAS_COLS = columns(AliasRecord)
IMPORTED_COLS = columns(ImportedMaterialRecord)
_FINGERPRINT = IMPORTED_COLS.index("fingerprint")
_MATERIAL_COLS = columns(KeyMaterialRecord)
_MATERIAL_FINGERPRINT = _MATERIAL_COLS.index("fingerprint")


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    cells = list(row)
    for i in _KEY_BOOLS:  # SQLite has no boolean type and hands back 0/1
        cells[i] = bool(cells[i])
    return KeyRecord(*cells)


def imported_from_row(row: Sequence[Any]) -> ImportedMaterialRecord:
    cells = list(row)
    cells[_FINGERPRINT] = bytes(cells[_FINGERPRINT])
    return ImportedMaterialRecord(*cells)


def _material_from_row(row: Sequence[Any]) -> KeyMaterialRecord:
    cells = list(row)
    cells[_MATERIAL_FINGERPRINT] = bytes(cells[_MATERIAL_FINGERPRINT])
    return KeyMaterialRecord(*cells)


class KeyQueries:
    """The statements of the keys aggregate, rendered for one dialect; ``lock`` is its row lock or ""."""

    def __init__(self, sql: Render, lock: str) -> None:
        k, v, a, m = csv(KEY_COLS), csv(_VERSION_COLS), csv(_ALIAS_COLS), csv(IMPORTED_COLS)
        keys_where = "SELECT " + k + " FROM keys WHERE account_id = ? AND region = ?"
        alias_where = "SELECT " + a + " FROM aliases WHERE account_id = ? AND region = ?"
        # keys
        self.insert_key = sql(f"INSERT INTO keys ({k}) VALUES ({marks(len(KEY_COLS))}) ON CONFLICT DO NOTHING")
        self.get_key = sql(f"SELECT {k} FROM keys WHERE key_id = ?{lock}")
        self.update_key = sql("UPDATE keys SET " + ", ".join(f"{c} = ?" for c in _KEY_MUTABLE) + " WHERE key_id = ?")
        self.list_keys = sql(keys_where + " ORDER BY key_id LIMIT ?")
        self.list_keys_after = sql(keys_where + " AND key_id > ? ORDER BY key_id LIMIT ?")
        self.count_keys = sql(
            "SELECT account_id, region, key_state, COUNT(*) FROM keys"
            " GROUP BY account_id, region, key_state ORDER BY account_id, region, key_state"
        )
        # delete_key: its children, then the key (grants are the grants aggregate's table, deleted with the key)
        self.delete_key_children = tuple(
            sql(f"DELETE FROM {table} WHERE {column} = ?")
            for table, column in (
                ("grants", "key_id"),
                ("tags", "key_id"),
                ("aliases", "target_key_id"),
                ("imported_key_material", "key_id"),
                ("key_materials", "key_id"),
                ("key_versions", "key_id"),
            )
        )
        self.delete_key = sql("DELETE FROM keys WHERE key_id = ?")
        # versions; version_number: the next slot of this key, so list_versions orders by insertion.
        self.insert_version = sql(
            "INSERT INTO key_versions (key_id, version_id, version_number, created_at, wrapped_material,"
            " rotation_type) VALUES (?, ?, (SELECT COALESCE(MAX(version_number), 0) + 1 FROM key_versions"
            " WHERE key_id = ?), ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.get_version = sql(f"SELECT {v} FROM key_versions WHERE key_id = ? AND version_id = ?")
        self.list_versions = sql(f"SELECT {v} FROM key_versions WHERE key_id = ? ORDER BY version_number")
        self.count_versions = sql("SELECT COUNT(*) FROM key_versions WHERE key_id = ? AND rotation_type = ?")
        self.delete_version = sql("DELETE FROM key_versions WHERE key_id = ? AND version_id = ?")
        # aliases
        self.insert_alias = sql(f"INSERT INTO aliases ({a}) VALUES ({marks(len(_ALIAS_COLS))}) ON CONFLICT DO NOTHING")
        self.get_alias = sql(f"SELECT {a} FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?{lock}")
        self.update_alias = sql(
            "UPDATE aliases SET target_key_id = ?, last_updated_date = ?"
            " WHERE account_id = ? AND region = ? AND alias_name = ?"
        )
        self.delete_alias = sql("DELETE FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?")
        self.list_aliases = sql(alias_where + " ORDER BY alias_name LIMIT ?")
        self.list_aliases_after = sql(alias_where + " AND alias_name > ? ORDER BY alias_name LIMIT ?")
        self.list_aliases_key = sql(alias_where + " AND target_key_id = ? ORDER BY alias_name LIMIT ?")
        self.list_aliases_key_after = sql(
            alias_where + " AND target_key_id = ? AND alias_name > ? ORDER BY alias_name LIMIT ?"
        )
        # tags
        self.put_tag = sql(
            "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)"
            " ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
        )
        self.delete_tag = sql("DELETE FROM tags WHERE key_id = ? AND tag_key = ?")
        tags_select = "SELECT key_id, tag_key, tag_value FROM tags WHERE key_id = ?"
        self.list_tags = sql(tags_select + " ORDER BY tag_key LIMIT ?")
        self.list_tags_after = sql(tags_select + " AND tag_key > ? ORDER BY tag_key LIMIT ?")
        self.count_tags = sql("SELECT COUNT(*) FROM tags WHERE key_id = ?")
        # imported material
        updates = ", ".join(f"{c} = excluded.{c}" for c in IMPORTED_COLS if c != "key_id")
        self.get_imported_material = sql(f"SELECT {m} FROM imported_key_material WHERE key_id = ?{lock}")
        self.put_imported_material = sql(
            f"INSERT INTO imported_key_material ({m}) VALUES ({marks(len(IMPORTED_COLS))})"
            f" ON CONFLICT (key_id) DO UPDATE SET {updates}"
        )
        materials = csv(_MATERIAL_COLS)
        material_updates = ", ".join(f"{c} = excluded.{c}" for c in _MATERIAL_COLS if c not in ("key_id", "version_id"))
        self.list_key_materials = sql(
            f"SELECT {materials} FROM key_materials WHERE key_id = ? ORDER BY imported_at, version_id"
        )
        self.delete_key_material = sql("DELETE FROM key_materials WHERE key_id = ? AND version_id = ?")
        self.put_key_material = sql(
            f"INSERT INTO key_materials ({materials}) VALUES ({marks(len(_MATERIAL_COLS))})"
            f" ON CONFLICT (key_id, version_id) DO UPDATE SET {material_updates}"
        )


class KeysSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.keys.KeyTransaction`."""

    __slots__ = ()
    _q: KeyQueries

    # -- keys

    def insert_key(self, key: KeyRecord) -> None:
        self._insert(self._q.insert_key, values(key, KEY_COLS), "key")

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._one(self._q.get_key, (key_id,))
        return None if row is None else key_from_row(row)

    def update_key(self, key: KeyRecord) -> None:
        self._update(self._q.update_key, (*values(key, _KEY_MUTABLE), key.key_id), "key")

    def list_keys(self, account_id: str, region: str, after_key_id: str | None, limit: int) -> list[KeyRecord]:
        if after_key_id is None:
            rows = self._all(self._q.list_keys, (account_id, region, limit))
        else:
            rows = self._all(self._q.list_keys_after, (account_id, region, after_key_id, limit))
        return [key_from_row(r) for r in rows]

    def count_keys(self) -> list[KeyCount]:
        return [KeyCount(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in self._all(self._q.count_keys, ())]

    def delete_key(self, key_id: str) -> None:
        # Explicit child deletes rather than trusting ON DELETE CASCADE alone: a connection opened without
        # PRAGMA foreign_keys would otherwise leave wrapped material behind (crypto-shredding).
        for sql in self._q.delete_key_children:
            self._write(sql, (key_id,))
        self._write(self._q.delete_key, (key_id,))

    # -- key versions

    def insert_version(self, version: KeyVersionRecord) -> None:
        v = version
        params = (v.key_id, v.version_id, v.key_id, v.created_at, v.wrapped_material, v.rotation_type)
        self._insert(self._q.insert_version, params, "key version")

    def get_version(self, key_id: str, version_id: str) -> KeyVersionRecord | None:
        row = self._one(self._q.get_version, (key_id, version_id))
        return None if row is None else KeyVersionRecord(*row)

    def list_versions(self, key_id: str) -> list[KeyVersionRecord]:
        return [KeyVersionRecord(*r) for r in self._all(self._q.list_versions, (key_id,))]

    def count_versions(self, key_id: str, rotation_type: str) -> int:
        return int(self._one(self._q.count_versions, (key_id, rotation_type))[0])

    def delete_version(self, key_id: str, version_id: str) -> bool:
        return self._write(self._q.delete_version, (key_id, version_id)) > 0

    # -- aliases

    def insert_alias(self, alias: AliasRecord) -> None:
        self._insert(self._q.insert_alias, values(alias, _ALIAS_COLS), "alias")

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        row = self._one(self._q.get_alias, (account_id, region, alias_name))
        return None if row is None else AliasRecord(*row)

    def update_alias(self, alias: AliasRecord) -> None:
        """Retarget the alias; ``creation_date`` is immutable and ignored."""
        a = alias
        params = (a.target_key_id, a.last_updated_date, a.account_id, a.region, a.alias_name)
        self._update(self._q.update_alias, params, "alias")

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._write(self._q.delete_alias, (account_id, region, alias_name))

    def list_aliases(
        self, account_id: str, region: str, key_id: str | None, after_alias_name: str | None, limit: int
    ) -> list[AliasRecord]:
        q = self._q
        if key_id is None:
            if after_alias_name is None:
                rows = self._all(q.list_aliases, (account_id, region, limit))
            else:
                rows = self._all(q.list_aliases_after, (account_id, region, after_alias_name, limit))
        elif after_alias_name is None:
            rows = self._all(q.list_aliases_key, (account_id, region, key_id, limit))
        else:
            rows = self._all(q.list_aliases_key_after, (account_id, region, key_id, after_alias_name, limit))
        return [AliasRecord(*r) for r in rows]

    # -- tags

    def put_tags(self, key_id: str, tags: Mapping[str, str]) -> None:
        for tag_key, tag_value in tags.items():
            self._write(self._q.put_tag, (key_id, tag_key, tag_value))

    def delete_tags(self, key_id: str, tag_keys: Sequence[str]) -> None:
        for tag_key in tag_keys:
            self._write(self._q.delete_tag, (key_id, tag_key))

    def list_tags(self, key_id: str, after_tag_key: str | None, limit: int) -> list[TagRecord]:
        if after_tag_key is None:
            rows = self._all(self._q.list_tags, (key_id, limit))
        else:
            rows = self._all(self._q.list_tags_after, (key_id, after_tag_key, limit))
        return [TagRecord(*r) for r in rows]

    def count_tags(self, key_id: str) -> int:
        return int(self._one(self._q.count_tags, (key_id,))[0])

    # -- imported material

    def get_imported_material(self, key_id: str) -> ImportedMaterialRecord | None:
        row = self._one(self._q.get_imported_material, (key_id,))
        return None if row is None else imported_from_row(row)

    def put_imported_material(self, record: ImportedMaterialRecord) -> None:
        self._write(self._q.put_imported_material, values(record, IMPORTED_COLS))

    def list_key_materials(self, key_id: str) -> list[KeyMaterialRecord]:
        rows = self._all(self._q.list_key_materials, (key_id,))
        return [_material_from_row(r) for r in rows]

    def put_key_material(self, record: KeyMaterialRecord) -> None:
        self._write(self._q.put_key_material, values(record, _MATERIAL_COLS))

    def delete_key_material(self, key_id: str, version_id: str) -> None:
        self._write(self._q.delete_key_material, (key_id, version_id))
