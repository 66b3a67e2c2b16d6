"""SQLite durability settings (docs/design.md section 8), file permissions and crypto-shredding of the WAL (L-2)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from openkms.storage.records import KeyRecord, KeyVersionRecord
from openkms.storage.sql import Queries
from openkms.storage.sqlite import SQLiteStorage
from tests.storage.support import LATEST


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key(key_id: str) -> KeyRecord:
    return KeyRecord(
        key_id, "111122223333", "us-east-1", f"arn:aws:kms:us-east-1:111122223333:key/{key_id}", "", "ENCRYPT_DECRYPT",
        "SYMMETRIC_DEFAULT", "AWS_KMS", "CUSTOMER", "Enabled", 1.0, False, "{}", "0" * 32,
    )  # fmt: skip


def test_every_connection_is_durable_and_shreds(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    try:
        storage.migrate()
        seen: list[tuple[object, ...]] = []

        def inspect() -> None:  # a connection opened by another thread gets the same pragmas
            with storage.read():
                conn = storage._state().conn
                seen.append(
                    tuple(
                        conn.execute(f"PRAGMA {name}").fetchone()[0]
                        for name in ("journal_mode", "synchronous", "secure_delete", "foreign_keys", "busy_timeout")
                    )
                )

        inspect()
        thread = threading.Thread(target=inspect)
        thread.start()
        thread.join(10)
        assert seen == [("wal", 2, 1, 1, 10_000)] * 2  # synchronous 2 = FULL
    finally:
        storage.close()
    with sqlite3.connect(tmp_path / "openkms.db") as plain:  # WAL is a property of the file, not the connection
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    plain.close()


def test_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a typical umask would give 0644 files and 0755 directories
    try:
        storage = SQLiteStorage(tmp_path / "fresh" / "dir" / "openkms.db")
        try:
            storage.migrate()
            with storage.transaction() as tx:
                tx.insert_key(_key("k1"))
            db = tmp_path / "fresh" / "dir" / "openkms.db"
            assert _mode(db) == 0o600
            assert _mode(db.parent) == 0o700
            assert _mode(Path(f"{db}-wal")) == 0o600
            assert _mode(Path(f"{db}-shm")) == 0o600
        finally:
            storage.close()
    finally:
        os.umask(old_umask)


def test_an_existing_file_is_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "openkms.db"
    db.touch(mode=0o640)
    os.chmod(db, 0o640)
    storage = SQLiteStorage(db)
    storage.migrate()
    storage.close()
    assert _mode(db) == 0o640


def test_deleted_material_leaves_no_residue_after_a_truncating_checkpoint(tmp_path: Path) -> None:
    """docs/tests.md L-2: secure_delete zeroes the pages; the checkpoint removes the WAL's copies."""
    db = tmp_path / "openkms.db"
    storage = SQLiteStorage(db)
    try:
        storage.migrate()
        material = [os.urandom(48) for _ in range(3)]
        with storage.transaction() as tx:
            tx.insert_key(_key("k1"))
            tx.insert_key(_key("k2"))
            for i, blob in enumerate(material):
                tx.insert_version(KeyVersionRecord("k1", f"{i:032x}", 1.0, blob))
            tx.insert_version(KeyVersionRecord("k2", "f" * 32, 1.0, b"survivor-material-" + bytes(30)))
        assert storage.checkpoint_truncate()
        assert all(blob in db.read_bytes() for blob in material)  # the probe can see material when it is there

        with storage.transaction() as tx:
            tx.delete_key("k1")
        assert storage.checkpoint_truncate()

        wal = Path(f"{db}-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        for path in (db, wal, Path(f"{db}-shm")):
            if path.exists():
                data = path.read_bytes()
                assert [blob in data for blob in material] == [False] * 3, path.name
        assert b"survivor-material-" in db.read_bytes()
    finally:
        storage.close()


def test_checkpoint_inside_a_transaction_is_refused(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    try:
        storage.migrate()
        with storage.read(), pytest.raises(RuntimeError):
            storage.checkpoint_truncate()
    finally:
        storage.close()


@pytest.mark.parametrize("path", ["", ":memory:", "file:x.db?mode=memory"])
def test_in_memory_databases_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="filesystem path"):
        SQLiteStorage(path)


def test_relative_paths_are_pinned_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = SQLiteStorage("data/openkms.db")
    try:
        assert storage.path == tmp_path / "data" / "openkms.db"
        monkeypatch.chdir("/")
        assert storage.migrate() == LATEST  # still the same file, whatever the cwd is now
        assert (tmp_path / "data" / "openkms.db").stat().st_size > 0
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("query", "index"),
    [
        pytest.param(lambda q: q.grants_for, "grants_by_grantee", id="grants_for"),
        pytest.param(lambda q: q.list_grants[False, False, True], "grants_by_grantee", id="list_grants_grantee"),
        pytest.param(lambda q: q.find_grant_by_name, "grants_by_name", id="find_grant_by_name"),
        pytest.param(lambda q: q.list_retirable_grants_after, "grants_by_retiring", id="list_retirable_grants_after"),
        pytest.param(lambda q: q.get_grant_by_token, "sqlite_autoindex_grants", id="get_grant_by_token"),
        pytest.param(lambda q: q.authorization_user, "sqlite_autoindex_users", id="authorization_user"),
        pytest.param(lambda q: q.authorization_policies, "group_members_by_user", id="authorization_policies"),
    ],
)
def test_access_control_hot_paths_search_an_index(tmp_path: Path, query: Callable[[Queries], str], index: str) -> None:
    """The authorisation reads of every request, and the grant look-ups: no table scan, the intended index."""
    storage = SQLiteStorage(tmp_path / "openkms.db")
    try:
        storage.migrate()
        sql = query(storage._read_queries)
        with storage.read():
            conn = storage._state().conn
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?"))]
    finally:
        storage.close()
    touching_tables = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
    assert touching_tables, plan
    assert all(step.startswith("SEARCH") for step in touching_tables), plan
    assert any(index in step for step in touching_tables), plan
