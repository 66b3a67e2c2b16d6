"""docs/tests.md L-2: after deletion, is a destroyed key's wrapped material really gone from the database files?

SQLite (``secure_delete=ON`` plus the truncating checkpoint the deletion job ends with): the raw wrapped bytes
of every version must appear 0 times in ``openkms.db``, ``-wal`` and ``-shm``. PostgreSQL cannot promise that
(dead tuples stay in pages until overwritten, the WAL and base backups keep copies): the test measures the
residue after VACUUM in the table's pages (``pageinspect``) and in the WAL written since the key was made
(``pg_read_binary_file``), prints the figures and checks only that the measurement could see the bytes while the
key existed. docs/lifecycle.md records the figures and what they mean.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openkms.audit import scope as audit_scope
from openkms.jobs.deletion import delete_due_keys
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.jobs.conftest import DAY, Lifecycle, build
from tests.pg_helpers import create_temp_database, drop_database

VERSIONS = 4  # the first material and three on-demand rotations


def _doomed_key(lc: Lifecycle) -> tuple[str, list[bytes]]:
    key_id = lc.new_key()
    for _ in range(VERSIONS - 1):
        lc.call("RotateKeyOnDemand", KeyId=key_id)
    lc.call("Encrypt", KeyId=key_id, Plaintext=b"x")  # the cache now holds material too
    with lc.storage.read() as tx:
        wrapped = [v.wrapped_material for v in tx.list_versions(key_id)]
    assert len(wrapped) == VERSIONS and all(len(w) >= 32 for w in wrapped)
    return key_id, wrapped


def _destroy(lc: Lifecycle, key_id: str) -> None:
    deletion_date = lc.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)["DeletionDate"]
    lc.clock.set(deletion_date + DAY)
    delete_due_keys(lc.svc, lc.clock.now())
    with lc.storage.read() as tx:
        assert tx.get_key(key_id) is None and tx.list_versions(key_id) == []


def _hits(path: Path, needles: list[bytes]) -> int:
    data = path.read_bytes() if path.exists() else b""
    return sum(data.count(needle) for needle in needles)


@pytest.fixture
def sqlite_lifecycle(tmp_path: Path) -> Iterator[tuple[Lifecycle, Path]]:
    storage = SQLiteStorage(tmp_path / "openkms.db", before_commit=audit_scope.before_commit)
    life = build(storage, tmp_path)
    try:
        yield life, tmp_path / "openkms.db"
    finally:
        life.close()
        storage.close()


def test_sqlite_keeps_no_byte_of_a_destroyed_key(sqlite_lifecycle: tuple[Lifecycle, Path]) -> None:
    lc, db = sqlite_lifecycle
    keep_id, keep = _doomed_key(lc)  # a survivor: the search must still find its bytes
    key_id, doomed = _doomed_key(lc)
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    assert sum(_hits(f, doomed) for f in files) >= VERSIONS, "the search cannot see the material"
    _destroy(lc, key_id)
    found = {f.name: _hits(f, doomed) for f in files}
    print(f"L-2 sqlite: hits per file after deletion {found}")
    assert found == {f.name: 0 for f in files}
    assert sum(_hits(f, keep) for f in files) >= VERSIONS
    assert lc.call("Decrypt", CiphertextBlob=lc.call("Encrypt", KeyId=keep_id, Plaintext=b"k")["CiphertextBlob"])


@pytest.mark.postgres
def test_postgresql_residue_after_vacuum_is_measured() -> None:
    url = create_temp_database()
    storage = PostgresStorage(url, before_commit=audit_scope.before_commit)
    lc = build(storage, Path("/nonexistent"))
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
            row = admin.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert row is not None
            start_lsn = row[0]
            key_id, doomed = _doomed_key(lc)
            assert _heap_hits(admin, doomed) == VERSIONS, "the page scan cannot see the material"
            _destroy(lc, key_id)
            admin.execute("VACUUM key_versions")
            admin.execute("CHECKPOINT")
            heap = _heap_hits(admin, doomed)
            wal = _wal_hits(admin, start_lsn, doomed)
        print(f"L-2 postgresql: after VACUUM, table pages {heap} hits, WAL since key creation {wal} hits")
        assert wal > 0, "the WAL holds the inserts; if this finds nothing, the WAL scan is broken"
    finally:
        lc.close()
        storage.close()
        drop_database(url)


def _heap_hits(conn: psycopg.Connection[tuple[Any, ...]], needles: list[bytes]) -> int:
    pages = conn.execute(
        "SELECT get_raw_page('key_versions', n) FROM generate_series(0,"
        " (pg_relation_size('key_versions') / current_setting('block_size')::int) - 1) AS n"
    ).fetchall()
    return sum(bytes(page).count(needle) for (page,) in pages for needle in needles)


def _wal_hits(conn: psycopg.Connection[tuple[Any, ...]], start_lsn: Any, needles: list[bytes]) -> int:
    names = conn.execute(
        "SELECT name FROM pg_ls_waldir() WHERE name >= pg_walfile_name(%s) ORDER BY name", (start_lsn,)
    ).fetchall()
    total = 0
    for (name,) in names:
        if len(str(name)) != 24:  # skip .partial, .history and the like
            continue
        row = conn.execute("SELECT pg_read_binary_file('pg_wal/' || %s)", (name,)).fetchone()
        data = bytes(row[0]) if row else b""
        total += sum(data.count(needle) for needle in needles)
    return total
