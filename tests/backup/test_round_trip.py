"""A backup restores to the same rows on the same engine and across engines, and the restored trail verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.audit.verify import verify_storage
from openkms.backup.archive import BackupError
from openkms.backup.restore import TargetNotEmptyError, restore_backup
from openkms.backup.snapshot import take_backup
from tests.backup.support import database, dump, open_plain, populate

PG = pytest.mark.postgres
PAIRS = [
    pytest.param("sqlite", "sqlite", id="sqlite-to-sqlite"),
    pytest.param("sqlite", "postgresql", id="sqlite-to-postgresql", marks=PG),
    pytest.param("postgresql", "sqlite", id="postgresql-to-sqlite", marks=PG),
]


@pytest.mark.parametrize(("source_engine", "target_engine"), PAIRS)
def test_a_backup_restores_every_row_and_the_trail_verifies(
    tmp_path: Path, source_engine: str, target_engine: str
) -> None:
    with database(source_engine, tmp_path / "a") as source_url, database(target_engine, tmp_path / "b") as target_url:
        source = populate(source_url, tmp_path / "a")
        try:
            manifest = take_backup(source.kms.storage, source.root_key, tmp_path / "backup.okb")
            before = dump(source.kms.storage)
        finally:
            source.kms.close()
        assert manifest.engine == source_engine
        assert manifest.tables["keys"].rows == 2 and manifest.tables["grants"].rows == 1
        target = open_plain(target_url)
        try:
            report = restore_backup(target, tmp_path / "backup.okb", source.root_key)
            after = dump(target)
            trail = verify_storage(target)
        finally:
            target.close()
    assert report.ok and report.secrets_opened == {"access_keys": 1, "key_versions": 2, "audit_signing_keys": 1}
    assert after == before
    assert {row["alias_name"] for row in after["aliases"]} >= {"alias/payments"}
    assert [row["rotation_enabled"] for row in after["keys"] if row["key_id"] == source.key_id] == [1]
    assert trail.ok, trail.problems
    assert trail.last_seq == manifest.audit_head_seq and trail.digests == 1


def test_a_non_empty_target_is_refused_unless_forced(tmp_path: Path) -> None:
    with database("sqlite", tmp_path / "a") as source_url, database("sqlite", tmp_path / "b") as target_url:
        source = populate(source_url, tmp_path / "a")
        try:
            take_backup(source.kms.storage, source.root_key, tmp_path / "backup.okb")
            before = dump(source.kms.storage)
        finally:
            source.kms.close()
        target = open_plain(target_url)
        try:
            restore_backup(target, tmp_path / "backup.okb", source.root_key)
            with pytest.raises(TargetNotEmptyError, match="holds data: give --force"):
                restore_backup(target, tmp_path / "backup.okb", source.root_key)
            restore_backup(target, tmp_path / "backup.okb", source.root_key, force=True)
            assert dump(target) == before
        finally:
            target.close()


def test_a_restore_frees_the_job_leases_of_the_lost_deployment(tmp_path: Path) -> None:
    with database("sqlite", tmp_path / "a") as source_url, database("sqlite", tmp_path / "b") as target_url:
        source = populate(source_url, tmp_path / "a")
        source.kms.close()
        raw = open_plain(source_url)
        try:
            with raw.transaction() as tx:
                tx.insert_rows(
                    "job_leases",
                    ("job_name", "holder", "lease_until", "next_run_at", "last_started_at", "last_finished_at",
                     "runs", "failures"),
                    [("key-rotation", "node-a:123", 4e9, 10.0, 5.0, None, 7, 1)],
                )  # fmt: skip
            take_backup(raw, source.root_key, tmp_path / "backup.okb")
        finally:
            raw.close()
        target = open_plain(target_url)
        try:
            restore_backup(target, tmp_path / "backup.okb", source.root_key)
            (lease,) = dump(target, skip=frozenset())["job_leases"]
        finally:
            target.close()
    assert (lease["holder"], lease["lease_until"]) == ("", 0.0)
    assert (lease["next_run_at"], lease["runs"], lease["failures"]) == (10.0, 7, 1)


def test_an_unsound_backup_leaves_the_target_untouched(tmp_path: Path) -> None:
    with database("sqlite", tmp_path / "a") as source_url, database("sqlite", tmp_path / "b") as target_url:
        source = populate(source_url, tmp_path / "a")
        try:
            take_backup(source.kms.storage, source.root_key, tmp_path / "backup.okb")
        finally:
            source.kms.close()
        data = bytearray((tmp_path / "backup.okb").read_bytes())
        data[-40] ^= 0x01
        (tmp_path / "backup.okb").write_bytes(bytes(data))
        target = open_plain(target_url)
        try:
            with pytest.raises(BackupError, match="does not match the hash"):
                restore_backup(target, tmp_path / "backup.okb", source.root_key)
            assert target.schema_version() == 0  # not even migrated
        finally:
            target.close()
