"""The automatic-rotation job: every Enabled key whose rotation date has come gets one new version.

The rule and the step live in :func:`openkms.operations.rotation.rotate_if_due`; this module only finds the
due keys, a batch at a time, earliest first.
"""

from __future__ import annotations

import time

from openkms.jobs.registry import job
from openkms.operations import keystates
from openkms.operations.rotation import rotate_if_due
from openkms.operations.services import Services

BATCH = 100


@job("key-rotation")
def rotate_due_keys(svc: Services, now: float) -> None:
    """Rotate what is due at ``now``; stops early (the next poll continues) after half the lease."""
    deadline = time.monotonic() + svc.settings.job_lease_seconds / 2
    while time.monotonic() < deadline:
        with svc.storage.read() as tx:
            due = tx.keys_due_for_rotation(keystates.ENABLED, now, BATCH)
        rotated = sum(rotate_if_due(svc, key.key_id, now) for key in due)
        if len(due) < BATCH or rotated == 0:
            return
