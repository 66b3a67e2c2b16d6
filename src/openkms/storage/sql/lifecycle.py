"""The lifecycle aggregate over SQL: the scans the background jobs run (keys due for rotation or deletion,
imported material past its expiry) and their leases (docs/lifecycle.md)."""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

from openkms.storage.records import ImportedMaterialRecord, JobLeaseRecord, KeyRecord
from openkms.storage.sql.core import Render, TransactionCore, columns, csv
from openkms.storage.sql.keys import IMPORTED_COLS, KEY_COLS, imported_from_row, key_from_row

_LEASE_COLS = columns(JobLeaseRecord)


class LifecycleQueries:
    """The statements of the lifecycle aggregate, rendered for one dialect."""

    def __init__(self, sql: Render) -> None:
        k = csv(KEY_COLS)
        # due work
        self.keys_due_for_rotation = sql(
            f"SELECT {k} FROM keys WHERE key_state = ? AND next_rotation_date IS NOT NULL"
            " AND next_rotation_date <= ? ORDER BY next_rotation_date, key_id LIMIT ?"
        )
        self.keys_due_for_deletion = sql(
            f"SELECT {k} FROM keys WHERE deletion_date IS NOT NULL AND deletion_date <= ?"
            " ORDER BY deletion_date, key_id LIMIT ?"
        )
        self.list_expired_imported_material = sql(
            "SELECT " + ", ".join(f"m.{c}" for c in IMPORTED_COLS) + " FROM imported_key_material m"
            " JOIN key_versions v ON v.key_id = m.key_id AND v.version_id = m.version_id"
            " WHERE m.valid_to IS NOT NULL AND m.valid_to <= ? ORDER BY m.valid_to, m.key_id LIMIT ?"
        )
        # job leases
        self.ensure_job_lease = sql(
            "INSERT INTO job_leases (job_name, holder, lease_until, next_run_at, runs, failures)"
            " VALUES (?, '', 0, 0, 0, 0) ON CONFLICT DO NOTHING"
        )
        self.get_job_lease = sql(f"SELECT {csv(_LEASE_COLS)} FROM job_leases WHERE job_name = ?")
        self.acquire_job_lease = sql(
            "UPDATE job_leases SET holder = ?, lease_until = ?, last_started_at = ?"
            " WHERE job_name = ? AND lease_until <= ? AND next_run_at <= ?"
        )
        self.release_job_lease = sql(
            "UPDATE job_leases SET lease_until = ?, next_run_at = ?, last_finished_at = ?, runs = runs + 1,"
            " failures = failures + ? WHERE job_name = ? AND holder = ?"
        )


class LifecycleSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.lifecycle.LifecycleTransaction`."""

    __slots__ = ()
    _q: LifecycleQueries

    # -- due work

    def keys_due_for_rotation(self, key_state: str, before: float, limit: int) -> list[KeyRecord]:
        return [key_from_row(r) for r in self._all(self._q.keys_due_for_rotation, (key_state, before, limit))]

    def keys_due_for_deletion(self, before: float, limit: int) -> list[KeyRecord]:
        return [key_from_row(r) for r in self._all(self._q.keys_due_for_deletion, (before, limit))]

    def list_expired_imported_material(self, now: float, limit: int) -> list[ImportedMaterialRecord]:
        return [imported_from_row(r) for r in self._all(self._q.list_expired_imported_material, (now, limit))]

    # -- job leases

    def ensure_job_lease(self, job_name: str) -> None:
        self._write(self._q.ensure_job_lease, (job_name,))

    def get_job_lease(self, job_name: str) -> JobLeaseRecord | None:
        row = self._one(self._q.get_job_lease, (job_name,))
        return None if row is None else JobLeaseRecord(*row)

    def acquire_job_lease(self, job_name: str, holder: str, now: float, lease_until: float) -> bool:
        params = (holder, lease_until, now, job_name, now, now)
        return self._write(self._q.acquire_job_lease, params) == 1

    def release_job_lease(self, job_name: str, holder: str, now: float, next_run_at: float, failed: bool) -> bool:
        params = (now, next_run_at, now, int(failed), job_name, holder)
        return self._write(self._q.release_job_lease, params) == 1
