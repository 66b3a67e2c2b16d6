"""Retention: pruning removes only whole, counted digest intervals older than the period; the trail still
verifies from the digest that stands for the pruned part; usage counts keep every pruned record."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from openkms.audit import anchor, events, retention, verify
from openkms.audit import log as audit_log
from openkms.context import Principal
from openkms.crypto.rand import random_bytes
from openkms.storage.sqlite import SQLiteStorage

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/r", "r", "AKIARETENTIONTEST001", "AIDAR")
KEY = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-4333-8444-555555555555"
T0 = 1_790_000_000.0


def _append(storage: SQLiteStorage, when: float, count: int) -> None:
    batch = []
    for i in range(count):
        call = events.Call(f"r{when}-{i}", when + i, "127.0.0.1", "t", "us-east-1", "Encrypt", PRINCIPAL, None, {})
        call.note.add_key(KEY, "SYMMETRIC_DEFAULT")
        batch.append(events.build(call, None, None))
    with storage.transaction() as tx:
        audit_log.append(tx, batch)


def test_prune_keeps_the_trail_verifiable_and_the_counts(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    storage.migrate()
    root = random_bytes(32)
    for day in range(10):  # one digest a day, 20 records each
        _append(storage, T0 + day * retention.DAY, 20)
        first = retention.run_once(storage, root, T0 + (day + 1) * retention.DAY, 3600, retention_days=None)
        assert first.digest_seq == day + 1
    result = retention.run_once(storage, root, T0 + 10 * retention.DAY, 3600, retention_days=3.5)
    assert result.pruned == 20 * 6  # days 0-5 ended 4+ days before "now"; day 6 ended 3 days before
    report = verify.verify_storage(storage)
    assert report.ok and report.first_seq == 121 and report.records == 80, report.problems
    with storage.read() as tx:
        assert sum(u.requests for u in tx.list_key_usage(None, None)) == 200
    _append(storage, T0 + 10 * retention.DAY, 5)  # the chain continues after pruning
    assert verify.verify_storage(storage).ok
    # Prune everything: the head remembers where the chain continues.
    retention.run_once(storage, root, T0 + 12 * retention.DAY, 3600, retention_days=0)
    _append(storage, T0 + 12 * retention.DAY, 3)
    report = verify.verify_storage(storage)
    assert report.ok, report.problems
    storage.close()


def test_a_node_anchor_gets_digests_signed_elsewhere_and_meets_a_re_signed_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    storage.migrate()
    root = random_bytes(32)
    sinks = anchor.open_sinks(tmp_path / "anchor", None)
    assert sinks is not None
    node = retention.NodeAnchor(sinks)
    for day in range(3):  # signed by "another node": run_once without this anchor
        _append(storage, T0 + day * retention.DAY, 5)
        retention.run_once(storage, root, T0 + (day + 1) * retention.DAY, 3600, retention_days=None)
        node.deliver(storage)
    assert sorted(p.name for p in (tmp_path / "anchor").iterdir()) == [anchor.file_name(n) for n in (1, 2, 3)]
    assert node.deliver(storage) == 0  # nothing new
    # The database is rolled back to digest 2 and digest 3 signed again over other records.
    with sqlite3.connect(tmp_path / "openkms.db") as conn:
        conn.execute("DELETE FROM audit_digests WHERE digest_seq > 2")
        conn.execute("DELETE FROM audit_events WHERE seq > 10")
    _append(storage, T0 + 2 * retention.DAY + 60, 2)
    retention.run_once(storage, root, T0 + 3 * retention.DAY + 60, 3600, retention_days=None)
    with caplog.at_level(logging.ERROR, logger="openkms.audit.anchor"):
        node.deliver(storage)
    assert "already holds another digest 3" in caplog.text
    sinks.close()
    storage.close()


def test_the_period_is_a_quarter_interval_within_bounds() -> None:
    assert retention.period(1) == 0.25 and retention.period(0.4) == 0.2 and retention.period(3600) == 60.0
