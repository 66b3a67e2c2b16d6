"""Background jobs in a real server whose clock is moved forward 400 days (``--dev-clock-offset``), on both
engines: automatic rotation done and caught up once, deletion after the waiting period done (docs/tests.md L-1, L-4),
and on SQLite no byte of the destroyed material left in the database files (L-2).

Phase 1 (the clock as it is) sets keys up; phase 2 restarts the same data 400 days later and waits for the jobs
(polling every 0.2 s). Expectations are AWS's: rotation the period after it was enabled, once, with the next date
counted from then for a key that is long overdue; a disabled key not rotated; a key past its waiting period
deleted with its material and aliases; a cancelled deletion leaves the key Disabled.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.e2e.kmsapi import assert_close, code, expect_error, new_key, unique_alias, utcnow
from tests.e2e.server import ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

pytestmark = pytest.mark.e2e

DAY = datetime.timedelta(days=1)
OFFSET = 400 * DAY
JOB_ARGS = ["--job-poll-seconds", "0.2", "--job-lease-seconds", "5"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield f"sqlite:///{data_dir / 'openkms.db'}", data_dir
        return
    postgres_or_skip()
    url = create_temp_database()
    try:
        yield url, data_dir
    finally:
        drop_database(url)


def _server(url: str, data_dir: Path, offset: datetime.timedelta | None = None) -> ServerProcess:
    extra = [*JOB_ARGS, "--dev-clock-offset", str(offset.total_seconds())] if offset else list(JOB_ARGS)
    return ServerProcess(data_dir, url, free_port(), extra_args=extra).start()


def _wrapped_material(url: str, key_id: str) -> list[bytes]:
    query = "SELECT wrapped_material FROM key_versions WHERE key_id = {} ORDER BY version_number"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(query.format("?"), (key_id,)).fetchall()
        conn.close()
    else:
        with psycopg.connect(url) as pg:
            rows = pg.execute(query.format("%s"), (key_id,)).fetchall()
    return [bytes(row[0]) for row in rows]


def _eventually(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the background jobs did not finish in time"
        time.sleep(0.1)


def _gone(kms: Any, key_id: str) -> bool:
    try:
        kms.describe_key(KeyId=key_id)
    except ClientError as exc:
        assert code(exc) == "NotFoundException", exc.response
        return True
    return False


def test_400_days_later_keys_have_rotated_and_expired_keys_are_destroyed(database: tuple[str, Path]) -> None:
    url, data_dir = database
    server = _server(url, data_dir)
    try:
        kms: Any = server.client()
        yearly = new_key(kms, "yearly")
        kms.enable_key_rotation(KeyId=yearly)
        quarterly = new_key(kms, "quarterly")  # due 310 days before phase 2: three periods and more overdue
        kms.enable_key_rotation(KeyId=quarterly, RotationPeriodInDays=90)
        never = new_key(kms, "never")
        resting = new_key(kms, "resting")
        kms.enable_key_rotation(KeyId=resting)
        kms.disable_key(KeyId=resting)
        blobs = {k: kms.encrypt(KeyId=k, Plaintext=k.encode())["CiphertextBlob"] for k in (yearly, quarterly, never)}
        old_material = {k: kms.decrypt(CiphertextBlob=b)["KeyMaterialId"] for k, b in blobs.items()}

        doomed = new_key(kms, "doomed")
        doomed_alias = unique_alias("doomed")
        kms.create_alias(AliasName=doomed_alias, TargetKeyId=doomed)
        kms.rotate_key_on_demand(KeyId=doomed)
        kms.rotate_key_on_demand(KeyId=doomed)
        doomed_blob = kms.encrypt(KeyId=doomed, Plaintext=b"shredded")["CiphertextBlob"]
        kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
        doomed_later = new_key(kms, "doomed-later")
        kms.schedule_key_deletion(KeyId=doomed_later, PendingWindowInDays=30)
        spared = new_key(kms, "spared")
        kms.schedule_key_deletion(KeyId=spared, PendingWindowInDays=7)
        kms.cancel_key_deletion(KeyId=spared)
    finally:
        server.stop()
    doomed_material = _wrapped_material(url, doomed)
    assert len(doomed_material) == 3

    later = _server(url, data_dir, OFFSET)
    try:
        kms = later.client()
        _eventually(
            lambda: (
                all(kms.list_key_rotations(KeyId=k)["Rotations"] for k in (yearly, quarterly))
                and _gone(kms, doomed)
                and _gone(kms, doomed_later)
            )
        )
        moved_now = utcnow() + OFFSET
        for key_id, period in ((yearly, 365), (quarterly, 90)):
            (rotation,) = kms.list_key_rotations(KeyId=key_id)["Rotations"]
            assert rotation["RotationType"] == "AUTOMATIC" and rotation["KeyMaterialState"] == "CURRENT"
            assert_close(rotation["RotationDate"], moved_now, seconds=120)
            status = kms.get_key_rotation_status(KeyId=key_id)
            assert_close(status["NextRotationDate"], rotation["RotationDate"] + period * DAY, seconds=1)
            old = kms.decrypt(CiphertextBlob=blobs[key_id])
            assert (old["Plaintext"], old["KeyMaterialId"]) == (key_id.encode(), old_material[key_id])
            fresh = kms.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=fresh)["KeyMaterialId"] == rotation["KeyMaterialId"]
        assert kms.list_key_rotations(KeyId=never)["Rotations"] == []
        assert kms.decrypt(CiphertextBlob=blobs[never])["KeyMaterialId"] == old_material[never]
        assert kms.list_key_rotations(KeyId=resting)["Rotations"] == []  # disabled: waits for EnableKey
        assert kms.get_key_rotation_status(KeyId=resting)["KeyRotationEnabled"] is True

        assert kms.describe_key(KeyId=spared)["KeyMetadata"]["KeyState"] == "Disabled"
        expect_error(kms.describe_key, "NotFoundException", KeyId=doomed_alias)
        assert doomed_alias not in {a["AliasName"] for a in kms.list_aliases(Limit=100)["Aliases"]}
        with pytest.raises(ClientError):
            kms.decrypt(CiphertextBlob=doomed_blob)
        assert _wrapped_material(url, doomed) == []
        if url.startswith("sqlite"):
            db = data_dir / "openkms.db"
            for path in (db, db.with_name("openkms.db-wal"), db.with_name("openkms.db-shm")):
                data = path.read_bytes() if path.exists() else b""
                assert sum(data.count(m) for m in doomed_material) == 0, path

        kms.enable_key(KeyId=resting)  # overdue since day 365: rotates at the next poll
        _eventually(lambda: bool(kms.list_key_rotations(KeyId=resting)["Rotations"]))
    finally:
        later.stop()
