"""The lifecycle aggregate of the storage port: what the background jobs scan for (keys due for rotation or
deletion, imported material past its expiry) and the leases that let one node run each job at a time
(docs/lifecycle.md). Composed into :class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from typing import Protocol

from openkms.storage.records import ImportedMaterialRecord, JobLeaseRecord, KeyRecord


class LifecycleTransaction(Protocol):
    # -- due work (jobs/rotation.py, jobs/deletion.py, jobs/import_expiry.py)
    def keys_due_for_rotation(self, key_state: str, before: float, limit: int) -> list[KeyRecord]:
        """Keys in ``key_state`` whose ``next_rotation_date`` is at or before ``before``, earliest first (then by
        key id); one indexed range scan."""
        ...

    def keys_due_for_deletion(self, before: float, limit: int) -> list[KeyRecord]:
        """Keys whose ``deletion_date`` is at or before ``before``, earliest first (then by key id)."""
        ...

    def list_expired_imported_material(self, now: float, limit: int) -> list[ImportedMaterialRecord]:
        """Records whose ``valid_to`` is at or before ``now`` and whose material is still present (its key version
        row exists), earliest ``valid_to`` first, then by key id."""
        ...

    # -- job leases (jobs/scheduler.py)
    def ensure_job_lease(self, job_name: str) -> None:
        """Create the job's lease row, free and due at once, unless it exists."""
        ...

    def get_job_lease(self, job_name: str) -> JobLeaseRecord | None: ...
    def acquire_job_lease(self, job_name: str, holder: str, now: float, lease_until: float) -> bool:
        """Claim the job for ``holder`` until ``lease_until`` if its lease ended and its next run is due, both at
        ``now``; whether this call claimed it. Two nodes racing for one row: exactly one wins."""
        ...

    def release_job_lease(self, job_name: str, holder: str, now: float, next_run_at: float, failed: bool) -> bool:
        """End ``holder``'s lease at ``now`` and record the run; False if the lease had passed to another holder."""
        ...
