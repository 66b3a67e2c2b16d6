"""Background jobs: work that runs on a timer instead of in a request (docs/design.md section 6, docs/lifecycle.md).

Every worker process of every node runs a :class:`~openkms.jobs.scheduler.Scheduler` thread, but each job
runs on exactly one of them at a time: before running a job, a worker must claim that job's row in the
``job_leases`` table with one conditional UPDATE (free since ``lease_until``, due since ``next_run_at``).
That works the same on SQLite and PostgreSQL, survives a node dying (its lease simply ends), and shows in
the database who ran what and when. A sealed server runs no job until it is unsealed. A job on what each node
has of its own (``per_node=True``: the audit anchor's sinks) runs instead on every node, in its first worker,
without a lease.

Adding a job (rotation, deletion, imported-material expiry and the audit trail's upkeep came this way)::

    # src/openkms/jobs/reports.py
    from openkms.jobs.registry import job

    @job("usage-report", interval_seconds=3600)
    def write_report(svc: Services, now: float) -> None:
        ...

then name the module in :func:`openkms.jobs.registry._load_all`. The rules a job follows:

- ``now`` comes from the injected clock (``svc.clock``), so tests and ``--dev-clock-offset`` move it.
- Each step is one write transaction (``svc.storage.transaction()``) that re-reads its rows and re-checks
  its precondition, so a rerun after kill -9, or a second worker whose lease overlapped (a lease can run
  out under a stalled process), changes nothing twice. The lease prevents waste, the re-check is what
  makes it correct.
- A run should finish well inside ``Settings.job_lease_seconds``; work in batches and return, the next
  poll continues (``Settings.job_poll_seconds``).
- An exception is logged and counted in ``job_leases.failures``; the job runs again at its next turn.
"""
