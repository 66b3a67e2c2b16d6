"""The job scheduler: one run at a time cluster-wide through the job_leases table, on both engines.

Two :class:`Scheduler` objects on one database stand for two workers or nodes; the lease clock is injected
so leases can run out without waiting.
"""

from __future__ import annotations

import threading
import time

import pytest

from openkms.jobs.registry import Job, job, registered_jobs
from openkms.jobs.scheduler import Scheduler
from openkms.operations.services import Services
from tests.jobs.conftest import Lifecycle


class LeaseClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A job that records who ran it, and can be told to take a while or to fail."""

    def __init__(self, name: str = "test-job", interval: float = 0.0) -> None:
        self.calls: list[float] = []
        self.running = 0
        self.overlaps = 0
        self.delay = 0.0
        self.fail = False
        self._lock = threading.Lock()
        self.job = Job(name, self.run, interval)

    def run(self, svc: Services, now: float) -> None:
        with self._lock:
            self.running += 1
            self.overlaps += self.running > 1
            self.calls.append(now)
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
        if self.fail:
            raise RuntimeError("job failure for the test")


def test_the_built_in_jobs_are_registered() -> None:
    names = [j.name for j in registered_jobs()]
    assert "key-rotation" in names and "key-deletion" in names
    with pytest.raises(RuntimeError, match="registered twice"):
        job("key-rotation")(lambda svc, now: None)


def test_a_sealed_server_runs_no_job_and_touches_no_lease(lifecycle: Lifecycle) -> None:
    recorder = Recorder()
    scheduler = Scheduler(lifecycle.svc, [recorder.job])
    lifecycle.svc.keyring.seal()
    assert scheduler.run_pending() == []
    with lifecycle.storage.read() as tx:
        assert tx.get_job_lease(recorder.job.name) is None
    assert recorder.calls == []


def test_two_workers_never_run_one_job_at_the_same_time(lifecycle: Lifecycle) -> None:
    recorder = Recorder()
    recorder.delay = 0.3
    schedulers = [Scheduler(lifecycle.svc, [recorder.job], holder=f"worker-{i}") for i in range(4)]
    barrier = threading.Barrier(len(schedulers))
    ran: list[list[str]] = []

    def poll(scheduler: Scheduler) -> None:
        barrier.wait()
        ran.append(scheduler.run_pending())

    threads = [threading.Thread(target=poll, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ran) == [[], [], [], ["test-job"]]
    assert (len(recorder.calls), recorder.overlaps) == (1, 0)
    with lifecycle.storage.read() as tx:
        lease = tx.get_job_lease("test-job")
    assert lease is not None and lease.runs == 1 and lease.failures == 0 and lease.holder.startswith("worker-")


def test_the_interval_spaces_runs_cluster_wide(lifecycle: Lifecycle) -> None:
    clock = LeaseClock()
    recorder = Recorder(interval=100.0)
    first = Scheduler(lifecycle.svc, [recorder.job], lease_clock=clock)
    second = Scheduler(lifecycle.svc, [recorder.job], lease_clock=clock)
    assert first.run_pending() == ["test-job"]
    clock.now += 99
    assert first.run_pending() == [] and second.run_pending() == []
    clock.now += 1
    assert second.run_pending() == ["test-job"]
    assert len(recorder.calls) == 2


def test_a_dead_workers_lease_passes_on_when_it_ends(lifecycle: Lifecycle) -> None:
    clock = LeaseClock()
    recorder = Recorder()
    survivor = Scheduler(lifecycle.svc, [recorder.job], lease_clock=clock, holder="survivor")
    survivor.run_pending()  # creates the row
    lease_seconds = lifecycle.svc.settings.job_lease_seconds
    with lifecycle.storage.transaction() as tx:  # a worker claims the job, then is killed before releasing it
        assert tx.acquire_job_lease("test-job", "killed", clock.now, clock.now + lease_seconds)
    clock.now += lease_seconds - 1
    assert survivor.run_pending() == []
    clock.now += 1
    assert survivor.run_pending() == ["test-job"]
    with lifecycle.storage.transaction() as tx:  # the dead worker's late release changes nothing
        assert not tx.release_job_lease("test-job", "killed", clock.now, clock.now, False)


def test_a_failing_job_is_counted_and_runs_again(lifecycle: Lifecycle) -> None:
    recorder = Recorder()
    recorder.fail = True
    scheduler = Scheduler(lifecycle.svc, [recorder.job])
    assert scheduler.run_pending() == ["test-job"]
    assert scheduler.run_pending() == ["test-job"]
    with lifecycle.storage.read() as tx:
        lease = tx.get_job_lease("test-job")
    assert lease is not None and (lease.runs, lease.failures) == (2, 2)


def test_jobs_get_the_injected_clock(lifecycle: Lifecycle) -> None:
    recorder = Recorder()
    lifecycle.clock.advance(12345)
    Scheduler(lifecycle.svc, [recorder.job]).run_pending()
    assert recorder.calls == [lifecycle.clock.now()]


def test_the_thread_polls_until_stopped_and_waits_for_unseal(lifecycle: Lifecycle) -> None:
    recorder = Recorder()
    lifecycle.svc.keyring.seal()
    scheduler = Scheduler(lifecycle.svc, [recorder.job])
    scheduler.start()
    try:
        time.sleep(0.3)
        assert recorder.calls == []
        lifecycle.svc.keyring.unseal(b"\x01" * 32)
        deadline = time.monotonic() + 10
        while len(recorder.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(recorder.calls) >= 3
    finally:
        scheduler.stop()
    count = len(recorder.calls)
    time.sleep(0.2)
    assert len(recorder.calls) == count
