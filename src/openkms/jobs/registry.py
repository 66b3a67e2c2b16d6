"""Job name -> function and interval, filled by the :func:`job` decorator (like operations/registry.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from openkms.operations.services import Services

JobFunction = Callable[[Services, float], None]  # (services, now from the injected clock)


@dataclass(frozen=True, slots=True)
class Job:
    name: str  # stable: the job's row in job_leases
    run: JobFunction
    # Least time between the end of one run and the start of the next, cluster-wide; 0 = at every poll.
    interval_seconds: float = 0.0


_JOBS: dict[str, Job] = {}


def job(name: str, *, interval_seconds: float = 0.0) -> Callable[[JobFunction], JobFunction]:
    """Register ``function`` as the job ``name``."""

    def register(function: JobFunction) -> JobFunction:
        if name in _JOBS:
            raise RuntimeError(f"job {name} registered twice")
        if interval_seconds < 0:
            raise ValueError("a job interval cannot be negative")
        _JOBS[name] = Job(name, function, interval_seconds)
        return function

    return register


def registered_jobs() -> tuple[Job, ...]:
    _load_all()
    return tuple(_JOBS[name] for name in sorted(_JOBS))


def _load_all() -> None:
    # Importing the modules runs their decorators.
    from openkms.jobs import deletion, import_expiry, rotation  # noqa: F401
