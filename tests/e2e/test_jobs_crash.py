"""docs/tests.md D-4 for automatic rotation and deletion: SIGKILL the server in the middle of its background jobs,
over and over, on both engines; each job step must happen exactly once.

Phase 1 (clock as it is) makes ``OPENKMS_D4_KEYS`` keys with 90-day rotation and as many scheduled for deletion
in 7 days. Then each cycle starts the server 91 days later (``--dev-clock-offset``), where everything is due,
lets the jobs run for a random 0.5-1.5 s and kills the whole process group with SIGKILL. A test-only
``sitecustomize`` (``job_hooks/``) sleeps inside each step's transaction, after its writes and before its
commit, so most kills land inside a transaction rather than between them. After each kill the database is
checked while nothing runs; a last start without the hook must finish the work.

What must hold: no key ever has two automatic rotations (no duplicate execution); every key's current version
exists; a key is either fully there (PendingDeletion, with its material) or fully gone (no version, alias or
tag left): never both deleted and usable; the work completes (no stuck job) and every old ciphertext decrypts.
``OPENKMS_D4_CYCLES`` (default 5) and ``OPENKMS_D4_KEYS`` (default 60) size the run; ``OPENKMS_D4_SEED`` replays it.
"""

from __future__ import annotations

import datetime
import os
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.e2e.kmsapi import code, unique_alias
from tests.e2e.server import ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CYCLES = int(os.environ.get("OPENKMS_D4_CYCLES") or 5)
KEYS = int(os.environ.get("OPENKMS_D4_KEYS") or 60)
SEED = int(os.environ.get("OPENKMS_D4_SEED") or random.SystemRandom().randrange(1 << 30))
STEP_DELAY = "0.05"
HOOKS = Path(__file__).with_name("job_hooks")
LATER = ["--dev-clock-offset", str(datetime.timedelta(days=91).total_seconds())]
JOB_ARGS = ["--job-poll-seconds", "0.2", "--job-lease-seconds", "3"]


@dataclass
class Report:
    cycles: int = 0
    killed_mid_job: int = 0
    progress: list[tuple[int, int]] = field(default_factory=list)  # (rotated, deleted) after each kill


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'openkms.db'}"
        return
    postgres_or_skip()
    url = create_temp_database()
    try:
        yield url
    finally:
        drop_database(url)


class Database:
    """Read the server's tables directly while no server runs."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.url) as pg:
            return pg.execute(sql).fetchall()

    def integrity(self) -> None:
        if self.url.startswith("sqlite"):
            assert self.rows("PRAGMA integrity_check") == [("ok",)]


def check_invariants(db: Database, rotating: set[str], deleting: set[str]) -> tuple[int, int]:
    """The state a kill may leave; returns (keys rotated, keys deleted)."""
    db.integrity()
    automatic = dict(
        db.rows("SELECT key_id, COUNT(*) FROM key_versions WHERE rotation_type = 'AUTOMATIC' GROUP BY key_id")
    )
    assert max(automatic.values(), default=0) <= 1, "a key was rotated twice"
    assert set(automatic) <= rotating
    missing_current = db.rows(
        "SELECT k.key_id FROM keys k LEFT JOIN key_versions v ON v.key_id = k.key_id AND v.version_id ="
        " k.current_version_id WHERE v.key_id IS NULL"
    )
    assert missing_current == [], "a key without its current material"
    for table, column in (("key_versions", "key_id"), ("aliases", "target_key_id"), ("tags", "key_id")):
        orphans = db.rows(
            f"SELECT t.{column} FROM {table} t LEFT JOIN keys k ON k.key_id = t.{column} WHERE k.key_id IS NULL"
        )
        assert orphans == [], f"{table} rows of a deleted key"
    # One statement: the server may still be running its jobs, so two reads could see two states.
    states = dict(db.rows("SELECT key_id, key_state FROM keys"))
    present = set(states)
    for key_id in deleting & present:
        assert states[key_id] == "PendingDeletion"
    return len(automatic), len(deleting - present)


def test_kill_minus_9_in_the_middle_of_rotation_and_deletion(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    db = Database(database)
    first = ServerProcess(data_dir, database, free_port(), extra_args=JOB_ARGS).start()
    try:
        kms: Any = first.client()
        rotating: dict[str, bytes] = {}
        for index in range(KEYS):
            key_id = kms.create_key(Description=f"d4-rotate-{index}")["KeyMetadata"]["KeyId"]
            kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
            rotating[key_id] = kms.encrypt(KeyId=key_id, Plaintext=key_id.encode())["CiphertextBlob"]
        deleting: dict[str, bytes] = {}
        for index in range(KEYS):
            key_id = kms.create_key(Description=f"d4-delete-{index}")["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=unique_alias("d4"), TargetKeyId=key_id)
            kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "d4", "TagValue": str(index)}])
            deleting[key_id] = kms.encrypt(KeyId=key_id, Plaintext=b"doomed")["CiphertextBlob"]
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    finally:
        first.stop()

    report = Report()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HOOKS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OPENKMS_TEST_JOB_STEP_DELAY", STEP_DELAY)
    previous = (0, 0)
    for _ in range(CYCLES):
        server = ServerProcess(data_dir, database, free_port(), extra_args=[*JOB_ARGS, *LATER]).start()
        time.sleep(rng.uniform(0.5, 1.5))
        server.kill(signal.SIGKILL)
        progress = check_invariants(db, set(rotating), set(deleting))
        report.cycles += 1
        report.progress.append(progress)
        if progress != previous and progress != (KEYS, KEYS):
            report.killed_mid_job += 1
        previous = progress
    monkeypatch.delenv("OPENKMS_TEST_JOB_STEP_DELAY")

    final = ServerProcess(data_dir, database, free_port(), extra_args=[*JOB_ARGS, *LATER]).start()
    try:
        deadline = time.monotonic() + 120
        while check_invariants(db, set(rotating), set(deleting)) != (KEYS, KEYS):
            assert time.monotonic() < deadline, f"stuck: {check_invariants(db, set(rotating), set(deleting))}"
            time.sleep(0.2)
        kms = final.client()
        for key_id, blob in rotating.items():
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == key_id.encode()
            (rotation,) = kms.list_key_rotations(KeyId=key_id)["Rotations"]
            assert rotation["RotationType"] == "AUTOMATIC"
        for key_id, blob in deleting.items():
            for call, params in (
                (kms.describe_key, {"KeyId": key_id}),
                (kms.encrypt, {"KeyId": key_id, "Plaintext": b"x"}),
                (kms.decrypt, {"CiphertextBlob": blob}),
            ):
                with pytest.raises(ClientError) as caught:
                    call(**params)
                assert code(caught.value) in ("NotFoundException", "InvalidCiphertextException")
        leases = dict(db.rows("SELECT job_name, runs FROM job_leases"))
        assert leases.get("key-rotation", 0) >= 1 and leases.get("key-deletion", 0) >= 1
    finally:
        final.stop()
    print(
        f"D-4 seed={SEED} cycles={report.cycles} killed mid-job={report.killed_mid_job} "
        f"duplicate executions=0 stuck jobs=0 progress={report.progress}"
    )
    assert report.killed_mid_job >= 1, "no kill landed while the jobs were working; the test proved nothing"
