"""Issue 15 item 4: the trail's head anchored outside the database.

Deleting the newest records *together with* the digests that cover them left a trail that verified, even
with the signing key pinned: digests chain backwards only, and the end is whatever the database holds. These
tests cut such a tail in a real database (SQLite and PostgreSQL), show that the database alone still
verifies (the hole), and that ``openkms audit verify --anchor-dir`` names what is missing with exit 3. They
also cover the anchor directory's files and path rules, a rolled-back database, a stale trail, a stale or
edited anchor, and the syslog line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from openkms.audit import anchor, chain, digests, events, retention, verify
from openkms.audit import log as audit_log
from openkms.cli import signing_keys
from openkms.context import Principal
from openkms.crypto.rand import random_bytes
from openkms.storage.factory import open_storage
from openkms.storage.ports import Storage
from tests.cli.running import openkms
from tests.pg_helpers import create_temp_database, drop_database

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/a", "a", "AKIAANCHORTEST000001", "AIDAA")
KEY = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-4333-8444-555555555555"
T0 = 1_790_000_000.0
INTERVAL = 300.0
RECORDS_PER_INTERVAL = 10


@dataclass
class Db:
    url: str
    storage: Storage
    root: bytes
    anchor_dir: Path
    key_file: Path

    def sql(self, *statements: str) -> None:
        """Raw SQL, as an operator with write access to the database would run it."""
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                for statement in statements:
                    conn.execute(statement)
            return
        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def cli(self, *args: str) -> tuple[int, str]:
        run = openkms("audit", "verify", "--database-url", self.url, "--public-key", str(self.key_file), *args)
        return run.code, run.out + run.err


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    temp: str | None = None
    if request.param == "postgres":
        temp = url = create_temp_database()
    else:
        url = f"sqlite:///{tmp_path / 'openkms.db'}"
    storage = open_storage(url)
    try:
        storage.migrate()
        yield Db(url, storage, random_bytes(32), tmp_path / "anchor", tmp_path / "key.pem")
    finally:
        storage.close()
        if temp is not None:
            drop_database(temp)


def _append(storage: Storage, when: float, count: int, source: str = "kms") -> None:
    batch = []
    for i in range(count):
        call = events.Call(f"r{when}-{i}", when + i, "127.0.0.1", "t", "us-east-1", "Encrypt", PRINCIPAL, None, {})
        call.note.add_key(KEY, "SYMMETRIC_DEFAULT")
        event = events.build(call, None, None)
        if source != "kms":
            moved = {**json.loads(event.event), "eventSource": f"{source}.amazonaws.com"}
            event = dataclasses.replace(event, event=chain.canonical_json(moved))
        batch.append(event)
    with storage.transaction() as tx:
        audit_log.append(tx, batch)


def run_intervals(db: Db, first: int, count: int, sink: anchor.Anchor | None) -> None:
    """``count`` digest intervals from interval ``first`` on: records, then the maintenance pass at its end."""
    for interval in range(first, first + count):
        _append(db.storage, T0 + interval * INTERVAL, RECORDS_PER_INTERVAL)
        result = retention.run_once(db.storage, db.root, T0 + (interval + 1) * INTERVAL, INTERVAL, None, sink)
        assert result.digest_seq == interval + 1


def pin_key(db: Db) -> None:
    db.key_file.write_text("".join(signing_keys.labelled_pem(k) for k in digests.public_keys(db.storage)))


def truncate_after_digest(db: Db, keep: int) -> int:
    """Delete every digest after ``keep`` and every record after its coverage; returns that last record."""
    with db.storage.read() as tx:
        kept = tx.list_digests(keep - 1, 1)[0]
    db.sql(
        f"DELETE FROM audit_digests WHERE digest_seq > {keep}",
        f"DELETE FROM audit_events WHERE seq > {kept.to_seq}",
    )
    return kept.to_seq


# ---- the hole and its fix ------------------------------------------------------------------------------------


def test_cutting_records_and_their_digests_verifies_clean_without_the_anchor_and_exits_3_with_it(db: Db) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    assert sink is not None
    run_intervals(db, 0, 6, sink)
    sink.close()
    pin_key(db)
    assert db.cli("--anchor-dir", str(db.anchor_dir))[0] == 0
    last_kept = truncate_after_digest(db, keep=3)

    # The hole: the database alone (even with the signing key pinned) says the trail is intact.
    code, out = db.cli()
    assert code == 0, out
    pinned = {k.key_id: k.public_key for k in digests.public_keys(db.storage)}
    assert verify.verify_storage(db.storage, pinned).ok

    # The anchor names what is missing.
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3, out
    assert "digests 4..6: missing from the database; the anchor holds them (truncated)" in out
    assert f"records {last_kept + 1}..{6 * RECORDS_PER_INTERVAL}: missing; anchored digest 6 covers them" in out
    report = json.loads(openkms("audit", "verify", "--database-url", db.url, "--json", "--anchor-dir",
                                str(db.anchor_dir)).out)  # fmt: skip
    assert report["ok"] is False and report["anchoredDigestSeq"] == 6


def test_records_cut_without_their_digests_also_show_against_the_anchor(db: Db) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    run_intervals(db, 0, 4, sink)
    pin_key(db)
    db.sql(f"DELETE FROM audit_events WHERE seq > {2 * RECORDS_PER_INTERVAL}")
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3 and "truncated" in out, out


def test_a_rolled_back_and_re_signed_database_differs_from_the_anchor(db: Db, caplog: pytest.LogCaptureFixture) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    assert sink is not None
    run_intervals(db, 0, 5, sink)
    anchored_4 = (db.anchor_dir / anchor.file_name(4)).read_bytes()
    truncate_after_digest(db, keep=3)
    with caplog.at_level(logging.ERROR, logger="openkms.audit.anchor"):
        run_intervals(db, 3, 3, sink)  # the server goes on: digests 4-6 are signed again over the cut trail
    assert "already holds another digest 4" in caplog.text
    assert (db.anchor_dir / anchor.file_name(4)).read_bytes() == anchored_4  # never replaced
    pin_key(db)
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3 and "digest 4: differs from its anchored copy" in out, out
    assert db.cli()[0] == 0  # the database alone cannot tell
    sink.close()


# ---- staleness -----------------------------------------------------------------------------------------------


def test_calls_going_on_for_more_than_two_intervals_after_the_newest_digest_are_stale(db: Db) -> None:
    run_intervals(db, 0, 3, None)
    pin_key(db)
    # Digests 4 and 5 deleted, or signing stopped: the calls after digest 3 span three intervals.
    for interval in range(3, 6):
        _append(db.storage, T0 + interval * INTERVAL, RECORDS_PER_INTERVAL)
    code, out = db.cli()
    assert code == 3, out
    assert "no digest covers them (more than 2 intervals of 300 s)" in out and "(stale)" in out


def test_a_short_unsigned_tail_and_a_long_downtime_are_not_stale(db: Db) -> None:
    run_intervals(db, 0, 3, None)
    pin_key(db)
    _append(db.storage, T0 + 3 * INTERVAL, RECORDS_PER_INTERVAL)  # one interval's calls, not yet signed
    assert db.cli()[0] == 0
    # A server stopped for a day, restarted: its calls until the first pass are unsigned, but close together.
    _append(db.storage, T0 + 3 * INTERVAL + 86_400, RECORDS_PER_INTERVAL)
    retention.run_once(db.storage, db.root, T0 + 3 * INTERVAL + 86_460, INTERVAL, None)
    assert db.cli()[0] == 0


def test_records_not_of_calls_to_the_server_do_not_make_a_trail_stale(db: Db) -> None:
    run_intervals(db, 0, 2, None)
    pin_key(db)
    # `openkms iam` changes recorded while no server runs (eventSource iam.amazonaws.com), days apart.
    _append(db.storage, T0 + 10 * INTERVAL, 2, source="iam")
    _append(db.storage, T0 + 10 * INTERVAL + 86_400 * 3, 2, source="iam")
    assert db.cli()[0] == 0


def test_an_anchor_that_stopped_receiving_digests_is_named(db: Db) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    run_intervals(db, 0, 2, sink)
    run_intervals(db, 2, 4, None)  # delivery stopped; the database kept signing for four intervals
    pin_key(db)
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3 and "digests 3..6: signed over" in out and "(stale anchor)" in out, out


# ---- the anchor's own integrity ------------------------------------------------------------------------------


def test_an_edited_or_planted_anchor_file_is_named(db: Db, tmp_path: Path) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    run_intervals(db, 0, 3, sink)
    pin_key(db)
    path = db.anchor_dir / anchor.file_name(3)
    item = json.loads(path.read_text())
    item["body"] = item["body"].replace('"toSeq":30', '"toSeq":31')
    path.write_text(json.dumps(item))
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3 and "anchor file for digest 3: signature does not verify" in out, out
    path.unlink()
    os.symlink(tmp_path / "elsewhere", path)
    code, out = db.cli("--anchor-dir", str(db.anchor_dir))
    assert code == 3 and f"anchor file {anchor.file_name(3)}: cannot be read (a symbolic link)" in out, out


def test_an_empty_anchor_for_a_signed_trail_is_a_problem(db: Db, tmp_path: Path) -> None:
    run_intervals(db, 0, 2, None)
    pin_key(db)
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    code, out = db.cli("--anchor-dir", str(empty))
    assert code == 3 and "holds no digest" in out, out


def test_anchor_files_are_private_whole_and_match_the_database(db: Db) -> None:
    sink = anchor.open_sinks(db.anchor_dir, None)
    run_intervals(db, 0, 3, sink)
    assert stat.S_IMODE(db.anchor_dir.stat().st_mode) == 0o700
    names = sorted(os.listdir(db.anchor_dir))
    assert names == [anchor.file_name(n) for n in (1, 2, 3)]  # no temporary file left behind
    with db.storage.read() as tx:
        stored = tx.list_digests(0, 10)
    for digest, name in zip(stored, names, strict=True):
        assert stat.S_IMODE((db.anchor_dir / name).stat().st_mode) == 0o600
        assert anchor.from_file_text((db.anchor_dir / name).read_text()) == digest


def test_a_new_anchor_starts_at_the_head_and_an_old_one_catches_up(db: Db) -> None:
    run_intervals(db, 0, 3, None)
    sink = anchor.open_sinks(db.anchor_dir, None)
    assert sink is not None
    assert sink.deliver(db.storage) == 1  # an empty directory: the current head only
    assert sorted(os.listdir(db.anchor_dir)) == [anchor.file_name(3)]
    sink.close()
    run_intervals(db, 3, 2, None)  # the server ran without this anchor (or delivery failed)
    sink = anchor.open_sinks(db.anchor_dir, None)
    assert sink is not None
    assert sink.deliver(db.storage) == 2  # 4 and 5, from the newest file on
    assert sorted(os.listdir(db.anchor_dir))[-1] == anchor.file_name(5)
    sink.close()


# ---- path rules (docs/tests.md A-6, as for exports) ---------------------------------------------------------------


def test_an_anchor_directory_with_dotdot_a_link_or_loose_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(anchor.AnchorError, match=r"'\.\.' component"):
        anchor.open_sinks(tmp_path / "a" / ".." / "anchor", None)
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(anchor.AnchorError, match="is a symbolic link"):
        anchor.open_sinks(tmp_path / "link", None)
    with pytest.raises(anchor.AnchorError, match="is a symbolic link"):
        anchor.open_sinks(tmp_path / "link" / "anchor", None)
    assert not (real / "anchor").exists()
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    with pytest.raises(anchor.AnchorError, match="has mode 0755"):
        anchor.open_sinks(loose, None)
    with pytest.raises(anchor.AnchorError, match="No such file or directory"):
        anchor.open_sinks(tmp_path / "missing" / "anchor", None)


def test_a_planted_file_never_replaces_nor_redirects_a_digest(db: Db, tmp_path: Path) -> None:
    run_intervals(db, 0, 1, None)
    db.anchor_dir.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_text("untouched")
    (db.anchor_dir / anchor.file_name(2)).symlink_to(target)  # where digest 2 will go
    sink = anchor.open_sinks(db.anchor_dir, None)
    assert sink is not None
    run_intervals(db, 1, 1, sink)
    assert target.read_text() == "untouched"
    sink.close()


# ---- syslog --------------------------------------------------------------------------------------------------


def test_each_digest_is_one_syslog_line(db: Db) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        sink = anchor.open_sinks(None, f"127.0.0.1:{port}")
        assert sink is not None
        run_intervals(db, 0, 2, sink)
        lines = [receiver.recv(4096).decode() for _ in range(2)]
        sink.close()
    with db.storage.read() as tx:
        newest = tx.last_digest()
    assert newest is not None
    assert all(line.startswith("<") and "openkms: openkms audit digest digestSeq=" in line for line in lines)
    assert "digestSeq=2 fromSeq=11 toSeq=20 " in lines[1]
    assert f"digestHash={digests.digest_hash(newest)}" in lines[1]
    report = verify.verify_storage(db.storage)
    assert report.as_dict()["newestDigest"]["digestHash"] == digests.digest_hash(newest)


def test_syslog_over_a_local_socket(db: Db, tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(5)
        sink = anchor.open_sinks(None, path)
        run_intervals(db, 0, 1, sink)
        line = receiver.recv(4096).decode()
        assert sink is not None
        sink.close()
    assert "openkms: openkms audit digest digestSeq=1 fromSeq=1 toSeq=10 " in line


@pytest.mark.parametrize(
    ("text", "address"),
    [("/dev/log", "/dev/log"), ("logs.example:5140", ("logs.example", 5140)), ("10.0.0.9", ("10.0.0.9", 514)),
     ("[::1]:514", ("::1", 514))],
)  # fmt: skip
def test_syslog_addresses(text: str, address: object) -> None:
    assert anchor.parse_syslog_address(text) == address


def test_an_unreachable_syslog_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(anchor.AnchorError, match="cannot reach syslog"):
        anchor.open_sinks(None, str(tmp_path / "no-such-socket"))
