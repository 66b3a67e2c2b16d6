"""Job name -> function and interval, filled by the :func:`job` decorator (like operations/registry.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openkms.operations.services import Services
from openkms.settings import Settings

JobFunction = Callable[[Services, float], None]  # (services, now from the injected clock)


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # stable: the job's row in job_leases
    run: JobFunction
    # Least time between the end of one run and the start of the next, cluster-wide; 0 = at every poll.
    interval_seconds: float = 0.0
    # Work on what each node has of its own (the audit anchor's directory and syslog): run by every node, in
    # its first worker, with no lease row, every interval.
    per_node: bool = False
    # An interval that follows the settings (audit maintenance: a fraction of the digest interval); it
    # replaces ``interval_seconds``.
    cadence: Callable[[Settings], float] | None = None

    def interval(self, settings: Settings) -> float:
        return self.cadence(settings) if self.cadence is not None else self.interval_seconds

    def poll_seconds(self, settings: Settings) -> float:
        """How often a worker looks whether the job is due: every ``job_poll_seconds``, or every interval if
        that is shorter (so a short interval is kept)."""
        interval = self.interval(settings)
        return min(settings.job_poll_seconds, interval) if interval > 0 else settings.job_poll_seconds


_JOBS: dict[str, Job] = {}


def job(
    name: str,
    *,
    interval_seconds: float = 0.0,
    cadence: Callable[[Settings], float] | None = None,
    per_node: bool = False,
) -> Callable[[JobFunction], JobFunction]:
    """Register ``function`` as the job ``name``."""

    def register(function: JobFunction) -> JobFunction:
        if name in _JOBS:
            raise RuntimeError(f"job {name} registered twice")
        if interval_seconds < 0:
            raise ValueError("a job interval cannot be negative")
        _JOBS[name] = Job(name, function, interval_seconds, per_node, cadence)
        return function

    return register


def registered_jobs() -> tuple[Job, ...]:
    """The jobs one node at a time runs, each through its lease row (what ``openkms status`` shows)."""
    _load_all()
    return tuple(_JOBS[name] for name in sorted(_JOBS) if not _JOBS[name].per_node)


def node_jobs() -> tuple[Job, ...]:
    """The jobs every node runs for itself, in its first worker (:attr:`Job.per_node`)."""
    _load_all()
    return tuple(_JOBS[name] for name in sorted(_JOBS) if _JOBS[name].per_node)


def _load_all() -> None:
    # Importing the modules runs their decorators.
    from openkms.jobs import audit_maintenance, deletion, import_expiry, rotation  # noqa: F401
