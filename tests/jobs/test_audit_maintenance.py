"""The audit trail's upkeep as jobs (jobs/audit_maintenance.py): with two nodes on one database, each digest is
signed once, when due, by whichever node holds the lease, and reaches both nodes' anchors."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from openkms.audit import anchor, events, retention
from openkms.audit import log as audit_log
from openkms.context import Principal
from openkms.jobs.registry import Job, node_jobs, registered_jobs
from openkms.jobs.scheduler import Scheduler
from openkms.operations.services import Services
from openkms.settings import Settings
from tests.jobs.conftest import Lifecycle

INTERVAL = 300.0  # the digest interval: maintenance runs every period(INTERVAL) / 2 = 37.5 s
PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/m", "m", "AKIAMAINTENANCETEST1", "AIDAM")
KEY = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-4333-8444-555555555555"


class LeaseClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _append(svc: Services, when: float, count: int) -> None:
    batch = []
    for i in range(count):
        call = events.Call(f"m{when}-{i}", when, "127.0.0.1", "t", "us-east-1", "Encrypt", PRINCIPAL, None, {})
        call.note.add_key(KEY, "SYMMETRIC_DEFAULT")
        batch.append(events.build(call, None, None))
    with svc.storage.transaction() as tx:
        audit_log.append(tx, batch)


def _services(lifecycle: Lifecycle, anchor_dir: Path) -> Services:
    settings = dataclasses.replace(
        lifecycle.svc.settings, audit_digest_interval_seconds=INTERVAL, audit_anchor_dir=anchor_dir
    )
    return dataclasses.replace(lifecycle.svc, settings=settings)


def _node(lifecycle: Lifecycle, anchor_dir: Path, clock: LeaseClock, name: str) -> Scheduler:
    """A node's first worker, running the maintenance job (the only one here) and the node's own jobs."""
    (maintenance,) = [job for job in registered_jobs() if job.name == "audit-maintenance"]
    svc = _services(lifecycle, anchor_dir)
    return Scheduler(svc, [maintenance], node_jobs=node_jobs(), lease_clock=clock, holder=name)


def _anchored(anchor_dir: Path) -> list[int]:
    return sorted(seq for seq in map(anchor.parse_file_name, (p.name for p in anchor_dir.iterdir())) if seq)


def test_two_nodes_sign_each_digest_once_when_due_and_both_anchors_get_every_digest(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    clock = LeaseClock()
    dirs = [tmp_path / "anchor-a", tmp_path / "anchor-b"]
    nodes = [_node(lifecycle, dirs[0], clock, "node-a"), _node(lifecycle, dirs[1], clock, "node-b")]
    start = lifecycle.clock.now()
    ran_maintenance: list[str] = []
    for interval in range(6):
        _append(lifecycle.svc, start + interval * INTERVAL, 5)
        lifecycle.clock.set(start + (interval + 1) * INTERVAL)  # the interval is over: its digest is due
        clock.now += 40  # past the job's 37.5 s interval, so its lease row lets it run again
        first, second = nodes if interval % 3 else nodes[::-1]  # either node may be the first to poll
        for node in (first, second):
            if "audit-maintenance" in node.run_pending():
                ran_maintenance.append(node.holder)
        with lifecycle.storage.read() as tx:
            digest = tx.last_digest()
        assert digest is not None and digest.digest_seq == interval + 1  # one digest, none twice
        assert digest.to_seq == 5 * (interval + 1)  # it covers every record of the interval
        for anchor_dir in dirs:  # both nodes' anchors, whichever node signed
            assert _anchored(anchor_dir) == list(range(1, interval + 2))
    assert len(ran_maintenance) == 6 and set(ran_maintenance) == {"node-a", "node-b"}  # one run per interval


def test_maintenance_is_looked_at_as_often_as_a_digest_needs() -> None:
    settings = Settings(Path("/unused"), "unused", audit_digest_interval_seconds=1, job_poll_seconds=60)
    jobs = {job.name: job for job in registered_jobs() + node_jobs()}
    assert jobs["audit-maintenance"].poll_seconds(settings) == retention.period(1) / 2 == 0.125
    assert jobs["audit-anchor"].poll_seconds(settings) == 0.25 and jobs["audit-anchor"].per_node
    assert jobs["key-rotation"].poll_seconds(settings) == 60  # the other jobs keep the poll interval
    slow = dataclasses.replace(settings, audit_digest_interval_seconds=3600)
    assert jobs["audit-maintenance"].poll_seconds(slow) == 30.0  # a period of at most a minute


def test_the_thread_polls_each_job_at_its_own_cadence(lifecycle: Lifecycle) -> None:
    counts = {"often": 0, "seldom": 0}
    lock = threading.Lock()

    def counter(name: str) -> Job:
        def run(svc: Services, now: float) -> None:
            with lock:
                counts[name] += 1

        return Job(name, run, cadence=(lambda settings: 0.05) if name == "often" else None)

    svc = dataclasses.replace(
        lifecycle.svc, settings=dataclasses.replace(lifecycle.svc.settings, job_poll_seconds=30.0)
    )
    scheduler = Scheduler(svc, [counter("seldom")], node_jobs=[dataclasses.replace(counter("often"), per_node=True)])
    scheduler.start()
    time.sleep(1.0)
    scheduler.stop()
    assert counts["seldom"] == 1  # at start, then not for 30 s
    assert counts["often"] >= 5  # every 0.05 s, with no lease row
    with lifecycle.storage.read() as tx:
        assert tx.get_job_lease("often") is None


def test_a_worker_without_the_node_s_jobs_anchors_nothing(lifecycle: Lifecycle, tmp_path: Path) -> None:
    clock = LeaseClock()
    anchored, other = tmp_path / "anchor-first", tmp_path / "anchor-other"
    first = _node(lifecycle, anchored, clock, "worker-0")
    second = Scheduler(_services(lifecycle, other), lease_clock=clock)  # every registered job, no node job
    _append(lifecycle.svc, lifecycle.clock.now(), 3)
    lifecycle.clock.advance(INTERVAL)
    assert "audit-maintenance" in second.run_pending() and "audit-anchor" not in second.run_pending()
    assert not other.exists()
    assert "audit-anchor" in first.run_pending() and _anchored(anchored) == [1]
