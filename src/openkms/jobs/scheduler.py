"""Runs the registered jobs from one worker process; a lease row per job makes each run exclusive.

Why a lease table rather than PostgreSQL advisory locks plus SQLite ``BEGIN IMMEDIATE``: one mechanism for
both engines, written once in storage/sql/lifecycle.py; a lease survives the connection pool (an advisory lock is
tied to one session, which our per-thread connections would have to keep open for the whole run); and the row
records who holds each job, since when, how often it ran and failed, which tests and operators can read. Its
cost: a node that dies mid-run holds the job until its lease ends (``Settings.job_lease_seconds``), where an
advisory lock would be released when the connection drops.

Claiming is one statement, ``UPDATE job_leases SET holder = me, lease_until = now + lease WHERE job_name = ?
AND lease_until <= now AND next_run_at <= now``, committed on its own: on PostgreSQL the row lock makes a
concurrent claimer wait and then re-check the WHERE against the winner's row (0 rows); SQLite serialises
writers. A cheap read first skips the write when the job is plainly taken or not due. Lease times come from
the wall clock (``lease_clock``), not the injected business clock: a lease is about liveness, and the nodes'
clocks must agree to well within the lease (NTP).

A lease is not a fence: a process stalled past its lease can still be running when another claims the job.
Correctness therefore rests on each job step re-checking its precondition in its own transaction (see
:mod:`openkms.jobs`); the lease only keeps the workers from doing the same work at the same time.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable

from openkms.jobs.registry import Job, registered_jobs
from openkms.operations.services import Services

log = logging.getLogger("openkms.jobs")


def new_holder_id() -> str:
    """Names the worker in ``job_leases.holder``: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Scheduler:
    """Polls the registered jobs on a daemon thread, each every ``Settings.job_poll_seconds`` or every
    interval of its own if shorter (:meth:`Job.poll_seconds`); :meth:`run_pending` is one poll of every job,
    callable directly (tests, tools).

    ``node_jobs`` are the jobs a node runs for itself (:attr:`Job.per_node`): the server gives them to its
    first worker only, which runs them at their interval without a lease (one such worker per node, and
    a replaced one takes its place)."""

    def __init__(
        self,
        services: Services,
        jobs: Iterable[Job] | None = None,
        *,
        node_jobs: Iterable[Job] = (),
        lease_clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self._svc = services
        self._jobs = tuple(jobs) if jobs is not None else registered_jobs()
        self._node_jobs = tuple(node_jobs)
        self._lease_clock = lease_clock
        self.holder = holder or new_holder_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rows_ready = False

    # -- one poll ---------------------------------------------------------------------------------------

    def run_pending(self) -> list[str]:
        """Run each job that is due and that this worker manages to claim, and each node job; the names of
        those it ran.

        A sealed server runs nothing: jobs need the root key, and must not touch storage before unseal.
        """
        return self._poll(self._jobs + self._node_jobs)

    def _poll(self, jobs: Iterable[Job]) -> list[str]:
        if self._svc.keyring.sealed:
            return []
        self._ensure_rows()
        return [job.name for job in jobs if (self._run_node_job(job) if job.per_node else self._run_if_claimed(job))]

    def _run_node_job(self, job: Job) -> bool:
        try:
            job.run(self._svc, self._svc.clock.now())
        except Exception:
            log.exception("node job %s failed; it runs again at its next turn", job.name)
        return True

    def _ensure_rows(self) -> None:
        if self._rows_ready:
            return
        with self._svc.storage.transaction() as tx:
            for job in self._jobs:
                if not job.per_node:
                    tx.ensure_job_lease(job.name)
        self._rows_ready = True

    def _run_if_claimed(self, job: Job) -> bool:
        storage = self._svc.storage
        start = self._lease_clock()
        with storage.read() as tx:
            lease = tx.get_job_lease(job.name)
        if lease is None or lease.lease_until > start or lease.next_run_at > start:
            return False
        with storage.transaction() as tx:
            claimed = tx.acquire_job_lease(job.name, self.holder, start, start + self._svc.settings.job_lease_seconds)
        if not claimed:
            return False
        failed = False
        try:
            job.run(self._svc, self._svc.clock.now())
        except Exception:
            failed = True
            log.exception("job %s failed; it runs again at its next turn", job.name)
        end = self._lease_clock()
        with storage.transaction() as tx:
            if not tx.release_job_lease(job.name, self.holder, end, end + job.interval(self._svc.settings), failed):
                log.warning(
                    "job %s outran its lease (%.1f s); another worker may have run it too", job.name, end - start
                )
        return True

    # -- the thread ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Poll on a daemon thread: once at once (catching up after downtime), then every poll interval."""
        if self._thread is not None:
            raise RuntimeError("scheduler already started")
        self._thread = threading.Thread(target=self._loop, name="openkms-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the job it is running, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        settings = self._svc.settings
        jobs = self._jobs + self._node_jobs
        next_poll = dict.fromkeys((job.name for job in jobs), 0.0)  # monotonic time each job is next looked at
        while not self._stop.is_set():
            now = time.monotonic()
            due = [job for job in jobs if next_poll[job.name] <= now]
            try:
                self._poll(due)
            except Exception:  # storage down, say: keep polling, never let the thread die
                log.exception("background job poll failed")
            for job in due:
                # A little jitter keeps the workers of a node from polling in lockstep.
                jitter = random.uniform(0.9, 1.1)  # noqa: S311 (not cryptographic)
                next_poll[job.name] = time.monotonic() + job.poll_seconds(settings) * jitter
            wake = min(next_poll.values(), default=time.monotonic() + settings.job_poll_seconds)
            self._stop.wait(max(0.0, wake - time.monotonic()))
