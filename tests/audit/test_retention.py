"""Retention: pruning removes only whole, counted digest intervals older than the period; the trail still
verifies from the digest that stands for the pruned part; usage counts keep every pruned record."""

from __future__ import annotations

from pathlib import Path

from openkms.audit import events, retention, verify
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
