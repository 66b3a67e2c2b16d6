"""The imported-material expiry job: material whose ValidTo has passed leaves the database.

The rule and the step live in :mod:`openkms.operations.import_expiry` (the request path already treats such a
key as PendingImport; this job decides only when the wrapped material is deleted).
"""

from __future__ import annotations

from openkms.jobs.registry import job
from openkms.operations.import_expiry import expire_imported_material
from openkms.operations.services import Services


@job("imported-material-expiry")
def expire_material(svc: Services, now: float) -> None:
    expire_imported_material(svc, now)
