"""The key import part of the storage contract (imported material in ``storage/ports/keys.py``), on every engine.

Imported material is remembered per key (version id, fingerprint, expiration) while the material itself, a key
version row, comes and goes; the expiry job finds expired material that is still present.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from openkms.storage.ports import DuplicateError, Storage, StorageError
from openkms.storage.records import ImportedMaterialRecord, KeyMaterialRecord
from openkms.storage.sqlite import SQLiteStorage
from tests.storage.support import add_key_with_version, alias, key, version

V1 = "1" * 32
V2 = "2" * 32


def imported(key_id: str, version_id: str = V1, **changes: Any) -> ImportedMaterialRecord:
    record = ImportedMaterialRecord(
        key_id=key_id,
        version_id=version_id,
        fingerprint=b"\x00fp\xff" + key_id.encode(),
        expiration_model="KEY_MATERIAL_EXPIRES",
        valid_to=1_700_003_600.5,
        description="first import",
        imported_at=1_700_000_000.25,
    )
    return dataclasses.replace(record, **changes)


def external_key(storage: Storage, key_id: str, with_material: bool = True, **changes: Any) -> None:
    fields: dict[str, Any] = {
        "origin": "EXTERNAL",
        "current_version_id": V1 if with_material else None,
        "key_state": "Enabled" if with_material else "PendingImport",
    }
    add_key_with_version(storage, key_id, **{**fields, **changes})


def test_imported_material_round_trip_and_overwrite(storage: Storage) -> None:
    external_key(storage, "k1")
    with storage.read() as tx:
        assert tx.get_imported_material("k1") is None
    with storage.transaction() as tx:
        tx.put_imported_material(imported("k1"))
    with storage.read() as tx:
        found = tx.get_imported_material("k1")
    assert found == imported("k1")
    assert isinstance(found.fingerprint, bytes)  # not a memoryview (PostgreSQL BYTEA)

    changed = imported("k1", expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE", valid_to=None, description=None)
    with storage.transaction() as tx:
        tx.put_imported_material(changed)
        assert tx.get_imported_material("k1") == changed  # a write transaction sees its own write
    with storage.read() as tx:
        assert tx.get_imported_material("k1") == changed
        assert tx.get_imported_material("k2") is None


def test_imported_material_needs_its_key(storage: Storage) -> None:
    with pytest.raises(StorageError) as caught, storage.transaction() as tx:
        tx.put_imported_material(imported("ghost"))
    assert not isinstance(caught.value, DuplicateError)


def test_delete_version_removes_only_that_version(storage: Storage) -> None:
    external_key(storage, "k1")
    external_key(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_version(version("k1", V2))
        assert tx.delete_version("k1", V1)
        assert not tx.delete_version("k1", V1)
        assert not tx.delete_version("nobody", V1)
    with storage.read() as tx:
        assert [v.version_id for v in tx.list_versions("k1")] == [V2]
        assert tx.get_version("k2", V1) is not None
    with storage.transaction() as tx:  # the same version can come back (re-import of the same material)
        tx.insert_version(version("k1", V1))
    with storage.read() as tx:
        assert {v.version_id for v in tx.list_versions("k1")} == {V1, V2}


def test_delete_key_takes_the_import_record(storage: Storage) -> None:
    external_key(storage, "doomed")
    external_key(storage, "kept")
    with storage.transaction() as tx:
        tx.put_imported_material(imported("doomed"))
        tx.put_imported_material(imported("kept"))
        tx.insert_alias(alias("alias/doomed", "doomed"))
    with storage.transaction() as tx:
        tx.delete_key("doomed")
    with storage.read() as tx:
        assert tx.get_imported_material("doomed") is None
        assert tx.get_imported_material("kept") == imported("kept")


def test_list_expired_finds_present_material_past_its_valid_to(storage: Storage) -> None:
    now = 1_700_010_000.0
    external_key(storage, "late")
    external_key(storage, "early")
    external_key(storage, "exactly-now")
    external_key(storage, "future")
    external_key(storage, "never")
    external_key(storage, "deleted", with_material=False)  # material already gone: nothing to expire
    external_key(storage, "plain", origin="AWS_KMS")
    with storage.transaction() as tx:
        tx.put_imported_material(imported("late", valid_to=now - 10))
        tx.put_imported_material(imported("early", valid_to=now - 3600))
        tx.put_imported_material(imported("exactly-now", valid_to=now))
        tx.put_imported_material(imported("future", valid_to=now + 0.001))
        tx.put_imported_material(imported("never", expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE", valid_to=None))
        tx.put_imported_material(imported("deleted", valid_to=now - 7200))
    with storage.read() as tx:
        due = tx.list_expired_imported_material(now, 10)
        assert [r.key_id for r in due] == ["early", "late", "exactly-now"]
        assert due[0] == imported("early", valid_to=now - 3600)
        assert [r.key_id for r in tx.list_expired_imported_material(now, 2)] == ["early", "late"]
        assert tx.list_expired_imported_material(now - 7200, 10) == []
    with storage.transaction() as tx:  # material present under another version id does not count
        tx.put_imported_material(imported("late", version_id=V2, valid_to=now - 10))
    with storage.read() as tx:
        assert [r.key_id for r in tx.list_expired_imported_material(now, 10)] == ["early", "exactly-now"]


def test_equal_valid_to_orders_by_key_id(storage: Storage) -> None:
    for key_id in ("b", "c", "a"):
        external_key(storage, key_id)
    with storage.transaction() as tx:
        for key_id in ("b", "c", "a"):
            tx.put_imported_material(imported(key_id, valid_to=5.0))
    with storage.read() as tx:
        assert [r.key_id for r in tx.list_expired_imported_material(5.0, 10)] == ["a", "b", "c"]


def test_read_transactions_refuse_key_import_writes(storage: Storage) -> None:
    external_key(storage, "k1")
    with storage.read() as tx:
        with pytest.raises(RuntimeError):
            tx.put_imported_material(imported("k1"))
        with pytest.raises(RuntimeError):
            tx.delete_version("k1", V1)


def test_shredding_after_a_material_delete_says_what_the_engine_did(storage: Storage) -> None:
    """One honest answer: True only where the engine really dropped the deleted bytes (SQLite), never
    PostgreSQL (it used to answer True from a checkpoint that did nothing)."""
    external_key(storage, "k1")
    with storage.transaction() as tx:
        tx.delete_version("k1", V1)
    assert storage.shred_deleted(attempts=1) is isinstance(storage, SQLiteStorage)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.shred_deleted(attempts=1)


def test_key_record_is_unchanged_by_import_writes(storage: Storage) -> None:
    """The import record lives beside the key: writing it never touches the key row."""
    external_key(storage, "k1")
    with storage.transaction() as tx:
        tx.put_imported_material(imported("k1"))
        tx.delete_version("k1", V1)
    with storage.read() as tx:
        assert tx.get_key("k1") == key("k1", origin="EXTERNAL", current_version_id=V1)


def test_sqlite_shreds_deleted_material_from_the_wal(tmp_path: Path) -> None:
    """The wrapped material of a deleted version is in neither file after shred_deleted (docs/tests.md L-2)."""
    db = tmp_path / "openkms.db"
    storage = SQLiteStorage(db)
    try:
        storage.migrate()
        marker = b"IMPORTED-MATERIAL-MARKER" * 4
        add_key_with_version(storage, "k1", origin="EXTERNAL", current_version_id=None)
        with storage.transaction() as tx:
            tx.insert_version(version("k1", V1, wrapped_material=marker))
        with storage.transaction() as tx:
            assert tx.delete_version("k1", V1)
        assert storage.shred_deleted()
        for path in (db, Path(f"{db}-wal")):
            if path.exists():
                assert marker not in path.read_bytes(), path
    finally:
        storage.close()


def test_key_materials_listed_in_import_order_overwritten_and_deleted_with_the_key(storage: Storage) -> None:
    external_key(storage, "k1")
    first = KeyMaterialRecord("k1", V2, b"\x00a\xff", "KEY_MATERIAL_DOES_NOT_EXPIRE", None, "a", 1_700_000_000.0, 1.0)
    staged = KeyMaterialRecord("k1", V1, b"\x00b", "KEY_MATERIAL_EXPIRES", 1_700_009_000.5, None, 1_700_000_500.0, None)
    with storage.transaction() as tx:
        assert tx.list_key_materials("k1") == []
        tx.put_key_material(staged)
        tx.put_key_material(first)
    with storage.read() as tx:
        found = tx.list_key_materials("k1")
    assert found == [first, staged] and all(isinstance(m.fingerprint, bytes) for m in found)
    rotated = dataclasses.replace(staged, rotated_at=1_700_001_000.0)
    with storage.transaction() as tx:
        tx.put_key_material(rotated)
        assert tx.list_key_materials("k1") == [first, rotated]
        tx.delete_key_material("k1", V1)
        tx.delete_key_material("k1", "9" * 32)  # none such: nothing happens
        assert tx.list_key_materials("k1") == [first]
    with storage.transaction() as tx:
        tx.delete_key("k1")
    with storage.read() as tx:
        assert tx.list_key_materials("k1") == []
