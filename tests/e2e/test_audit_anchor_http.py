"""Issue 15 item 4 over HTTP: a production server (``init``, ``serve`` unsealed from a 0600 passphrase file)
anchors its signed digests in a directory and to syslog; an operator with database access then deletes the
newest records together with the digests that cover them. ``openkms audit verify`` with the key pinned still
says ok (the hole this closes); with ``--anchor-dir`` it exits 3 and names what is missing. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openkms.audit import anchor
from tests.e2e.server import ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

pytestmark = pytest.mark.e2e

PASSPHRASE = "anchor the head outside the database"
ENVS = ("OPENKMS_AUDIT_ANCHOR_DIR", "OPENKMS_AUDIT_ANCHOR_SYSLOG", "OPENKMS_NO_AUDIT_ANCHOR",
        "OPENKMS_UNSEAL_PASSPHRASE", "OPENKMS_INIT_PASSPHRASE", "OPENKMS_DATA_DIR", "OPENKMS_DATABASE_URL")  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ENVS}


def openkms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms", *args],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip


class ProductionServer(ServerProcess):
    """``openkms serve`` without ``--dev``: unsealed from a passphrase file, digests anchored outside."""

    passphrase_file: Path
    anchor_args: list[str]

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "openkms", "serve",
            "--data-dir", str(self.data_dir), "--database-url", self.database_url,
            "--port", str(self.port), "--workers", "1", "--audit-digest-interval", "1",
            "--unseal-passphrase-file", str(self.passphrase_file), *self.anchor_args,
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> ProductionServer:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env()
            )
        self.wait_healthy(timeout)
        return self


def _sql(url: str, *statements: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        postgres_or_skip()
        url = create_temp_database()
        yield url
        drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'data' / 'openkms.db'}"


def _newest_anchored(anchor_dir: Path) -> Any:
    names = sorted(n for n in os.listdir(anchor_dir) if anchor.parse_file_name(n) is not None)
    return anchor.from_file_text((anchor_dir / names[-1]).read_text()) if names else None


def _wait_for_anchor(anchor_dir: Path, records: int, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        newest = _newest_anchored(anchor_dir)
        if newest is not None and newest.to_seq >= records:
            return newest
        time.sleep(0.1)
    raise AssertionError(f"no anchored digest covered {records} records in {timeout} s")


def test_a_tail_cut_with_its_digests_verifies_clean_but_not_against_the_anchor(database: str, tmp_path: Path) -> None:
    data_dir, anchor_dir = tmp_path / "data", tmp_path / "anchor-volume"
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)
    init = openkms("init", "--data-dir", str(data_dir), "--database-url", database, "--passphrase-file",
                   str(passphrase_file), "--json")  # fmt: skip
    assert init.returncode == 0, init.stderr
    admin = json.loads(init.stdout)

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog_host:
        syslog_host.bind(("127.0.0.1", 0))
        syslog_host.settimeout(10)
        server = ProductionServer(data_dir, database, free_port())
        server.passphrase_file = passphrase_file
        server.anchor_args = ["--audit-anchor-dir", str(anchor_dir),
                              "--audit-anchor-syslog", f"127.0.0.1:{syslog_host.getsockname()[1]}"]  # fmt: skip
        server.start()
        try:
            kms: Any = server.client(admin["AccessKeyId"], admin["SecretAccessKey"])
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            for _ in range(10):
                kms.encrypt(KeyId=key_id, Plaintext=b"before the cut")
            kept = _wait_for_anchor(anchor_dir, 11)
            for _ in range(10):
                kms.encrypt(KeyId=key_id, Plaintext=b"to be cut")
            newest = _wait_for_anchor(anchor_dir, 21)
            line = syslog_host.recv(4096).decode()
        finally:
            server.stop()
    assert "openkms audit digest digestSeq=" in line and "digestHash=" in line
    assert stat_mode(anchor_dir) == 0o700 and stat_mode(anchor_dir / anchor.file_name(newest.digest_seq)) == 0o600

    key_file = tmp_path / "audit-key.pem"
    public = openkms("audit", "public-key", "--data-dir", str(data_dir), "--database-url", database)
    key_file.write_text(public.stdout)
    verify = ["audit", "verify", "--data-dir", str(data_dir), "--database-url", database, "--public-key", str(key_file)]
    intact = openkms(*verify, "--anchor-dir", str(anchor_dir))
    assert intact.returncode == 0, intact.stdout + intact.stderr

    # The operator cuts the last encryptions and every digest that covers them.
    _sql(database, f"DELETE FROM audit_digests WHERE digest_seq > {kept.digest_seq}",
         f"DELETE FROM audit_events WHERE seq > {kept.to_seq}")  # fmt: skip
    hole = openkms(*verify)
    assert hole.returncode == 0, hole.stdout  # the database alone cannot tell
    caught = openkms(*verify, "--anchor-dir", str(anchor_dir))
    assert caught.returncode == 3, caught.stdout + caught.stderr
    cut = range(kept.digest_seq + 1, newest.digest_seq + 1)
    named = f"digest {cut[0]}" if len(cut) == 1 else f"digests {cut[0]}..{cut[-1]}"
    assert f"{named}: missing from the database" in caught.stdout
    assert f"records {kept.to_seq + 1}..{newest.to_seq}: missing; anchored digest {newest.digest_seq}" in caught.stdout


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_production_start_without_an_anchor_choice_exits_2(tmp_path: Path) -> None:
    result = openkms("serve", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    assert result.returncode == 2, result
    assert result.stderr.startswith("ValidationException: choose where signed audit digests are anchored")
    assert not (tmp_path / "data").exists()
