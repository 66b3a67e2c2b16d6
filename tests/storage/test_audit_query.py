"""``query_audit`` on both engines against a brute-force reading of the same trail.

The query plans for time windows (storage/sql/audit.py) use seq bounds read from the time index, a guess
from the window's earliest records, and the newest records; each path is exercised here with a small probe
size and with records whose times are *not* in seq order (late commits, several nodes' clocks), where a
bound guessed from the times alone would lose records.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

import pytest

from openkms.audit import events
from openkms.audit import log as audit_log
from openkms.context import AuditNote, Principal
from openkms.storage.audit import AuditFilter, AuditRecord, AuditRow
from openkms.storage.ports import Storage
from openkms.storage.sql import audit as audit_sql

ACCOUNT = "111122223333"
START = 1_790_000_000.0
KEYS = [str(uuid.UUID(int=n, version=4)) for n in range(1, 7)]
USERS = [Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/u{n}", f"u{n}", f"AKIAQUERYTEST{n:07d}", f"AIDA{n:017d}")
         for n in range(3)]  # fmt: skip
OPERATIONS = ["Encrypt", "Decrypt", "ReEncrypt", "DescribeKey", "ListKeys"]
ERRORS = [None, None, None, "AccessDeniedException", "NotFoundException"]
IPS = ["10.0.0.1", "10.0.0.2", "192.0.2.9"]


def _event(rng: random.Random, at: float) -> AuditRecord:
    operation = rng.choice(OPERATIONS)
    note = AuditNote()
    if operation != "ListKeys":
        note.add_key(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{rng.choice(KEYS)}", "SYMMETRIC_DEFAULT")
        if operation == "ReEncrypt":
            note.add_key(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{rng.choice(KEYS)}", "SYMMETRIC_DEFAULT")
    call = events.Call(
        request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        time=at,
        source_ip=rng.choice(IPS),
        user_agent="test",
        region="us-east-1",
        operation=operation,
        principal=rng.choice(USERS),
        params={},
        note=note,
    )
    error = rng.choice(ERRORS)
    return events.build(call, error, "no" if error else None)


def _fill(storage: Storage, count: int, seed: int) -> list[AuditRow]:
    """``count`` records about a second apart, a tenth of them with times up to ten minutes off their place."""
    rng = random.Random(seed)
    batch = []
    for i in range(count):
        at = START + i + rng.random()
        if rng.random() < 0.1:
            at += rng.uniform(-600, 600)
        batch.append(_event(rng, at))
    with storage.transaction() as tx:
        audit_log.append(tx, batch)
    with storage.read() as tx:
        return tx.audit_range(0, count + 1)


def _expected(rows: list[AuditRow], where: AuditFilter, limit: int) -> list[int]:
    def matches(row: AuditRow) -> bool:
        outcome = where.outcome
        return (
            (where.key_id is None or where.key_id in (row.key_id, row.other_key_id))
            and (where.principal_arn is None or row.principal_arn == where.principal_arn)
            and (where.event_name is None or row.event_name == where.event_name)
            and (where.source_ip is None or row.source_ip == where.source_ip)
            and (
                outcome is None
                or (outcome == "success" and row.error_code is None)
                or (outcome == "failure" and row.error_code is not None)
                or row.error_code == outcome
            )
            and (where.since is None or row.event_time >= where.since)
            and (where.until is None or row.event_time < where.until)
            and (where.before_seq is None or row.seq < where.before_seq)
        )

    return sorted((row.seq for row in rows if matches(row)), reverse=True)[:limit]


def _random_filter(rng: random.Random, count: int) -> AuditFilter:
    def maybe(value: object) -> object:
        return value if rng.random() < 0.3 else None

    since = START + rng.uniform(-700, count + 100) if rng.random() < 0.7 else None
    until = (since or START) + rng.choice([5, 60, 300, count]) if rng.random() < 0.6 else None
    return AuditFilter(
        key_id=maybe(rng.choice(KEYS)),  # type: ignore[arg-type]
        principal_arn=maybe(rng.choice(USERS).arn),  # type: ignore[arg-type]
        event_name=maybe(rng.choice(OPERATIONS)),  # type: ignore[arg-type]
        outcome=maybe(rng.choice(["success", "failure", "NotFoundException"])),  # type: ignore[arg-type]
        source_ip=maybe(rng.choice(IPS)),  # type: ignore[arg-type]
        since=since,
        until=until,
        before_seq=rng.randrange(1, count + 2) if rng.random() < 0.3 else None,
    )


@pytest.mark.parametrize("probe", [4, 64, audit_sql._WINDOW_PROBE])
def test_query_matches_a_brute_force_reading(storage: Storage, monkeypatch: pytest.MonkeyPatch, probe: int) -> None:
    monkeypatch.setattr(audit_sql, "_WINDOW_PROBE", probe)
    count = 1500
    rows = _fill(storage, count, seed=probe)
    rng = random.Random(probe)
    for _ in range(300):
        where = _random_filter(rng, count)
        limit = rng.choice([1, 5, 50])
        with storage.read() as tx:
            found = [row.seq for row in tx.query_audit(where, limit)]
        assert found == _expected(rows, where, limit), where


def test_time_windows_with_late_records(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record whose time lies far inside an old window but whose seq is the newest is still found."""
    monkeypatch.setattr(audit_sql, "_WINDOW_PROBE", 8)
    rows = _fill(storage, 400, seed=7)
    rng = random.Random(8)
    late = _event(rng, START + 100.5)  # appended last, stamped in the middle of the window below
    with storage.transaction() as tx:
        audit_log.append(tx, [late])
    with storage.read() as tx:
        rows = tx.audit_range(0, 1000)
    window = AuditFilter(since=START + 50, until=START + 150)
    for limit in (1, 10, 200):
        with storage.read() as tx:
            found = [row.seq for row in tx.query_audit(window, limit)]
        assert found == _expected(rows, window, limit)
        assert found[0] == rows[-1].seq
    paged = replace(window, before_seq=rows[-1].seq)
    with storage.read() as tx:
        assert [row.seq for row in tx.query_audit(paged, 10)] == _expected(rows, paged, 10)
    with storage.read() as tx:
        assert tx.query_audit(AuditFilter(since=START + 10_000), 5) == []
        assert tx.query_audit(AuditFilter(until=START - 10_000), 5) == []
