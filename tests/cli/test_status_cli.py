"""``openkms status``: what it reports, and exit 4 for each thing that needs attention (0 when all is well).

The database is real SQLite made through the request path in this process; the server's ``/healthz`` is a real
HTTP server on a local port answering as openkms's does (ok, or 503 sealed), plus one real ``serve --dev``.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openkms.audit import scope as audit_scope
from openkms.cli.status import EXIT_ATTENTION, JOB_OVERDUE_SECONDS
from openkms.clock import FrozenClock
from openkms.storage.migrate import latest_version
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.cli.running import Run, openkms
from tests.e2e.server import ServerProcess, free_port
from tests.inprocess import InProcessKMS
from tests.pg_helpers import create_temp_database, drop_database


def _status(data_dir: Path, *args: str) -> Run:
    return openkms("status", "--data-dir", str(data_dir), *args)


def _fields(text: str) -> dict[str, str]:
    head = text.split("\n\n", 1)[0]
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in head.splitlines()}


@dataclass
class Installation:
    data_dir: Path
    storage: Storage


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    """An initialised data directory (key file, as ``serve --dev`` leaves it) with three keys and some use."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    kms = InProcessKMS(data_dir, keyfile_seal=True)
    for _ in range(2):
        _, made = kms.call("CreateKey", {})
    kms.call("DisableKey", {"KeyId": made["KeyMetadata"]["KeyId"]})
    kms.call("CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, region="eu-west-1")
    yield Installation(data_dir, kms.storage)
    kms.close()


class _Health:
    """A local HTTP server whose ``/healthz`` answers ``status`` as openkms does (200 ok, 503 sealed)."""

    def __init__(self, status: str) -> None:
        answer = json.dumps({"status": status, "sealed": status == "sealed"}).encode()
        code = 200 if status == "ok" else 503

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(code if self.path == "/healthz" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def healthy() -> Iterator[_Health]:
    health = _Health("ok")
    yield health
    health.close()


def test_a_healthy_installation_reports_its_contents_and_exits_0(installation: Installation) -> None:
    run = _status(installation.data_dir)
    assert run.code == 0 and run.err == "", run
    fields = _fields(run.out)
    assert fields["Version"].startswith("openkms ")
    assert fields["Database"].endswith(f"(sqlite, schema {latest_version('sqlite')} of {latest_version('sqlite')})")
    assert fields["Seal"] == "key file (dev)"
    assert fields["Server"] == "not checked (give --endpoint)"
    assert fields["Accounts"] == "1"
    assert fields["Users"] == "1 (1 active access keys, 0 inactive)"
    assert fields["Keys"] == "3 (Disabled 1, Enabled 2)"
    assert fields["Audit"].startswith("4 records, newest 20")  # three CreateKey and one DisableKey
    jobs = run.out.split("\n\n")[1].splitlines()
    assert jobs[0].split() == ["Job", "Runs", "Failures", "LastFinished", "NextRun"]
    assert {line.split()[0] for line in jobs[1:]} == {
        "audit-maintenance",
        "imported-material-expiry",
        "key-deletion",
        "key-rotation",
    }
    assert run.out.rstrip().endswith("All well.")


def test_json_for_monitoring(installation: Installation, healthy: _Health) -> None:
    run = _status(installation.data_dir, "--endpoint", healthy.endpoint, "--json")
    assert run.code == 0, run
    report = run.json()
    assert report["Healthy"] is True and report["Attention"] == []
    assert report["Server"] == {"Endpoint": healthy.endpoint, "Status": "ok"}
    assert report["Keys"] == {"Total": 3, "ByState": {"Disabled": 1, "Enabled": 2}, "Regions": ["eu-west-1",
                                                                                           "us-east-1"]}  # fmt: skip
    assert report["Audit"]["Records"] == report["Audit"]["LastSeq"] == 4
    assert report["Audit"]["UnsignedRecords"] == 4 and report["Audit"]["LastDigest"] is None
    assert report["Database"]["Engine"] == "sqlite" and report["AccessKeys"] == {"Active": 1, "Inactive": 0}


def test_a_sealed_server_needs_attention(installation: Installation) -> None:
    sealed = _Health("sealed")
    try:
        run = _status(installation.data_dir, "--endpoint", sealed.endpoint)
    finally:
        sealed.close()
    assert run.code == EXIT_ATTENTION, run
    assert _fields(run.out)["Server"] == f"{sealed.endpoint} sealed"
    assert "Needs attention:\n  - the server is sealed: unseal it" in run.out


def test_an_unreachable_server_needs_attention(installation: Installation) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    run = _status(installation.data_dir, "--endpoint", endpoint, "--json")
    assert run.code == EXIT_ATTENTION, run
    report = run.json()
    assert report["Healthy"] is False and report["Server"]["Status"].startswith("unreachable")
    assert [a for a in report["Attention"] if a.startswith(f"the server at {endpoint} did not answer as healthy")]


def test_a_job_that_stopped_running_while_the_server_is_up_needs_attention(
    installation: Installation, healthy: _Health
) -> None:
    long_ago = time.time() - JOB_OVERDUE_SECONDS - 600
    with installation.storage.transaction() as tx:
        tx.ensure_job_lease("key-rotation")
        assert tx.acquire_job_lease("key-rotation", "node-a", long_ago, long_ago + 60)
        assert tx.release_job_lease("key-rotation", "node-a", long_ago + 1, long_ago + 1, failed=False)
    data_dir = installation.data_dir
    down = _status(data_dir)  # no server checked: a stopped server's jobs are late by design
    assert down.code == 0, down
    up = _status(data_dir, "--endpoint", healthy.endpoint)
    assert up.code == EXIT_ATTENTION, up
    assert "job key-rotation was due" in up.out and "has not run" in up.out


def test_keys_past_their_deletion_date_with_material_need_attention(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    clock = FrozenClock(time.time() - 9 * 86400)  # scheduled nine days ago with a seven-day window
    kms = InProcessKMS(data_dir, clock, keyfile_seal=True)
    try:
        _, made = kms.call("CreateKey", {})
        kms.call("ScheduleKeyDeletion", {"KeyId": made["KeyMetadata"]["KeyId"], "PendingWindowInDays": 7})
    finally:
        kms.close()
    run = _status(data_dir)
    assert run.code == EXIT_ATTENTION, run
    assert "1 key(s) are past their deletion date by over an hour and their material still exists" in run.out


def test_an_uninitialised_database_needs_attention(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    storage.migrate()
    storage.close()
    run = _status(tmp_path, "--json")
    assert run.code == EXIT_ATTENTION, run
    report = run.json()
    assert report["Seal"] == "not initialised"
    assert report["Attention"] == ["not initialised: run `openkms init` (or `openkms serve --dev`)"]


def test_a_database_of_an_older_schema_needs_attention_and_is_left_as_it_is(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    older = latest_version("sqlite") - 1
    storage.migrate(older)
    try:
        run = _status(tmp_path)
        assert run.code == EXIT_ATTENTION, run
        assert f"database schema {older} is not this release's {older + 1}" in run.out
        assert storage.schema_version() == older  # status read it; it did not migrate it
    finally:
        storage.close()


def test_the_database_password_is_never_printed(tmp_path: Path) -> None:
    run = openkms("status", "--database-url", "postgresql://kms:hunter2@127.0.0.1:1/none?connect_timeout=1")
    assert "hunter2" not in run.out + run.err
    assert run.code == 1, run


def test_against_a_real_dev_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'openkms.db'}", free_port()).start()
    try:
        kms: Any = server.client()
        kms.create_key(Description="status")
        run = _status(server.data_dir, "--endpoint", server.endpoint, "--json")
    finally:
        server.stop()
    assert run.code == 0, run
    report = run.json()
    assert report["Server"]["Status"] == "ok" and report["Seal"] == "key file (dev)"
    assert report["Keys"]["ByState"] == {"Enabled": 1}
    assert {job["Job"] for job in report["Jobs"]} >= {"key-deletion", "key-rotation"}


@pytest.mark.postgres
def test_status_and_keys_on_postgresql(tmp_path: Path) -> None:
    url = create_temp_database()
    try:
        empty = openkms("status", "--database-url", url)  # an empty database is not an openkms database
        assert empty.code == 1 and "no openkms database" in empty.err, empty
        kms = InProcessKMS(
            tmp_path, storage=PostgresStorage(url, before_commit=audit_scope.before_commit), keyfile_seal=True
        )
        try:
            _, made = kms.call("CreateKey", {"Tags": [{"TagKey": "env", "TagValue": "production"}]})
        finally:
            kms.close()
        run = openkms("status", "--database-url", url, "--json")
        assert run.code == 0, run
        report = run.json()
        assert report["Database"]["Engine"] == "postgresql" and "DataDirectory" not in report
        assert report["Keys"]["ByState"] == {"Enabled": 1}
        listed = openkms("keys", "list", "--database-url", url, "--tag", "env=production", "--json")
        assert [k["KeyId"] for k in listed.json()] == [made["KeyMetadata"]["KeyId"]]
    finally:
        drop_database(url)
