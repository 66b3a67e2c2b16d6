"""The deletion job: a key whose waiting period is over is destroyed, with every version of its material.

ScheduleKeyDeletion only marks the key PendingDeletion with a DeletionDate; here, once that date has come,
one write transaction re-reads the key and, if it is still pending deletion and due, deletes the key row, its
versions (the wrapped material), aliases, tags and grants (storage ``delete_key``). DescribeKey then answers
NotFoundException. After a batch, ``storage.shred_deleted()`` makes the engine drop what it still keeps of
the deleted rows (SQLite: WAL truncated; PostgreSQL cannot, see docs/lifecycle.md).
"""

from __future__ import annotations

import time

from openkms.context import ServiceAction, note_service_action, service_actions
from openkms.jobs.registry import job
from openkms.operations import keystates
from openkms.operations.services import Services

BATCH = 100

# Whether a shred is owed: after a deletion, and at process start (a process killed between a deletion's
# commit and its shred leaves the old frames in the WAL), until the engine reports one complete.
_shred_pending = True


def destroy_if_due(svc: Services, key_id: str, now: float) -> bool:
    """One step, in one write transaction; whether the key was destroyed. Rerunning it is harmless: a key
    destroyed, cancelled or not yet due is left alone."""
    with service_actions(), svc.storage.transaction() as tx:
        key = tx.get_key(key_id)
        if key is None or key.key_state != keystates.PENDING_DELETION:
            return False
        if key.deletion_date is None or key.deletion_date > now:
            return False
        wrapped = [version.wrapped_material for version in tx.list_versions(key_id)]
        tx.delete_key(key_id)
        note_service_action(ServiceAction("DeleteKey", key.arn, key.key_spec, now, {"versionsDestroyed": len(wrapped)}))
    svc.materials.forget(wrapped)  # this worker's cache; the others' entries can no longer be reached
    return True


@job("key-deletion")
def delete_due_keys(svc: Services, now: float) -> None:
    """Destroy what is due at ``now``; stops early (the next poll continues) after half the lease."""
    global _shred_pending
    deadline = time.monotonic() + svc.settings.job_lease_seconds / 2
    destroyed = 0
    while time.monotonic() < deadline:
        with svc.storage.read() as tx:
            due = tx.keys_due_for_deletion(now, BATCH)
        done = sum(destroy_if_due(svc, key.key_id, now) for key in due)
        destroyed += done
        if len(due) < BATCH or done == 0:
            break
    if destroyed or _shred_pending:
        _shred_pending = not svc.storage.shred_deleted()
