"""The storage contract for the key lifecycle (rotation, deletion, job leases), on every engine.

Kept apart from ``test_contract.py`` so that the lifecycle methods (``storage/ports/lifecycle.py`` and
``storage/sql/lifecycle.py``, with ``count_versions`` of the keys aggregate) and their tests move together.
"""

from __future__ import annotations

import threading

import pytest

from openkms.storage.ports import Storage
from openkms.storage.records import JobLeaseRecord
from openkms.storage.sqlite import SQLiteStorage
from tests.storage.support import Opener, add_key_with_version, version

# ------------------------------------------------------------------------------------------ rotation


def test_keys_due_for_rotation_filters_by_state_and_date_in_date_order(storage: Storage) -> None:
    add_key_with_version(storage, "late", rotation_enabled=True, rotation_period_days=90, next_rotation_date=300.0)
    add_key_with_version(storage, "early", rotation_enabled=True, rotation_period_days=90, next_rotation_date=100.0)
    add_key_with_version(storage, "tie-b", rotation_enabled=True, rotation_period_days=90, next_rotation_date=200.0)
    add_key_with_version(storage, "tie-a", rotation_enabled=True, rotation_period_days=90, next_rotation_date=200.0)
    add_key_with_version(storage, "off")  # no date: rotation disabled
    add_key_with_version(storage, "disabled", key_state="Disabled", rotation_enabled=True, next_rotation_date=50.0)
    with storage.read() as tx:
        assert [k.key_id for k in tx.keys_due_for_rotation("Enabled", 200.0, 10)] == ["early", "tie-a", "tie-b"]
        assert [k.key_id for k in tx.keys_due_for_rotation("Enabled", 1000.0, 2)] == ["early", "tie-a"]
        assert [k.key_id for k in tx.keys_due_for_rotation("Enabled", 99.0, 10)] == []
        assert [k.key_id for k in tx.keys_due_for_rotation("Disabled", 1000.0, 10)] == ["disabled"]
        due = tx.keys_due_for_rotation("Enabled", 100.0, 10)
        assert due[0].rotation_enabled is True and due[0].rotation_period_days == 90


def test_count_versions_by_rotation_type(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        for c in "abc":
            tx.insert_version(version("k1", c * 32, rotation_type="ON_DEMAND"))
        tx.insert_version(version("k1", "d" * 32, rotation_type="AUTOMATIC"))
        tx.insert_version(version("k2", "e" * 32, rotation_type="ON_DEMAND"))
    with storage.read() as tx:
        assert tx.count_versions("k1", "ON_DEMAND") == 3
        assert tx.count_versions("k1", "AUTOMATIC") == 1
        assert tx.count_versions("k1", "INITIAL") == 1
        assert tx.count_versions("missing", "ON_DEMAND") == 0


# ------------------------------------------------------------------------------------------ deletion


def test_keys_due_for_deletion_in_date_order(storage: Storage) -> None:
    add_key_with_version(storage, "b", key_state="PendingDeletion", deletion_date=20.0, pending_window_days=7)
    add_key_with_version(storage, "a", key_state="PendingDeletion", deletion_date=20.0, pending_window_days=7)
    add_key_with_version(storage, "c", key_state="PendingDeletion", deletion_date=10.0, pending_window_days=7)
    add_key_with_version(storage, "later", key_state="PendingDeletion", deletion_date=99.0, pending_window_days=30)
    add_key_with_version(storage, "alive")
    with storage.read() as tx:
        assert [k.key_id for k in tx.keys_due_for_deletion(20.0, 10)] == ["c", "a", "b"]
        assert [k.key_id for k in tx.keys_due_for_deletion(20.0, 1)] == ["c"]
        assert tx.keys_due_for_deletion(9.0, 10) == []


# ---------------------------------------------------------------------------------------- job leases


def test_job_lease_lifecycle(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.ensure_job_lease("j")
        tx.ensure_job_lease("j")  # idempotent
    with storage.read() as tx:
        assert tx.get_job_lease("j") == JobLeaseRecord("j", "", 0.0, 0.0, None, None, 0, 0)
        assert tx.get_job_lease("other") is None
    with storage.transaction() as tx:
        assert tx.acquire_job_lease("j", "a", 100.0, 160.0)
        assert not tx.acquire_job_lease("j", "b", 159.0, 219.0)  # still held
        assert not tx.acquire_job_lease("missing", "b", 159.0, 219.0)
    with storage.transaction() as tx:
        assert not tx.release_job_lease("j", "b", 150.0, 150.0, False)  # not the holder
        assert tx.release_job_lease("j", "a", 150.0, 200.0, True)
    with storage.read() as tx:
        assert tx.get_job_lease("j") == JobLeaseRecord("j", "a", 150.0, 200.0, 100.0, 150.0, 1, 1)
    with storage.transaction() as tx:
        assert not tx.acquire_job_lease("j", "b", 199.0, 259.0)  # free, but not due until 200
        assert tx.acquire_job_lease("j", "b", 200.0, 260.0)
    with storage.transaction() as tx:
        assert tx.acquire_job_lease("j", "c", 260.0, 320.0)  # b's lease ended without a release


def test_exactly_one_of_many_racing_claimers_wins(storage: Storage, engine: Opener) -> None:
    with storage.transaction() as tx:
        tx.ensure_job_lease("race")
    others = [engine() for _ in range(4)]
    barrier = threading.Barrier(len(others))
    wins: list[str] = []

    def claim(index: int, other: Storage) -> None:
        barrier.wait()
        with other.transaction() as tx:
            if tx.acquire_job_lease("race", f"w{index}", 10.0, 70.0):
                wins.append(f"w{index}")

    threads = [threading.Thread(target=claim, args=(i, s)) for i, s in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    with storage.read() as tx:
        lease = tx.get_job_lease("race")
    assert lease is not None and lease.holder == wins[0]


# ---------------------------------------------------------------------------------------- shredding


def test_shred_deleted_reports_what_the_engine_can_do(storage: Storage) -> None:
    add_key_with_version(storage, "doomed")
    with storage.transaction() as tx:
        tx.delete_key("doomed")
    assert storage.shred_deleted() is isinstance(storage, SQLiteStorage)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.shred_deleted()  # inside a transaction it could not truncate anything
