"""Test-only: slow every background-job step down so that a SIGKILL lands inside its transaction (docs/tests.md D-4).

``tests/e2e/test_jobs_crash.py`` puts this directory first on ``PYTHONPATH`` of the server it starts, so
Python runs this file at interpreter start in the supervisor and in every spawned worker. With
``OPENKMS_TEST_JOB_STEP_DELAY=<seconds>`` it wraps, after the real code ran and before the transaction commits:

- ``operations.rotation.add_version`` (the automatic-rotation step: the new version is inserted, the key not
  yet committed),
- ``SQLTransaction.delete_key`` (the deletion step: rows deleted, not yet committed).

Nothing of this is in the product: without this directory on the path the server is unchanged.
"""

from __future__ import annotations

import os
import time
from typing import Any

_DELAY = float(os.environ.get("OPENKMS_TEST_JOB_STEP_DELAY") or 0)

if _DELAY > 0:
    from openkms.operations import rotation as _rotation
    from openkms.storage import sql as _sql

    _add_version = _rotation.add_version
    _delete_key = _sql.SQLTransaction.delete_key

    def _slow_add_version(*args: Any, **kwargs: Any) -> Any:
        result = _add_version(*args, **kwargs)
        time.sleep(_DELAY)
        return result

    def _slow_delete_key(self: Any, key_id: str) -> None:
        _delete_key(self, key_id)
        time.sleep(_DELAY)

    _rotation.add_version = _slow_add_version
    _sql.SQLTransaction.delete_key = _slow_delete_key  # type: ignore[method-assign]
