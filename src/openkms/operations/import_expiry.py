"""Deleting imported key material whose ValidTo has passed.

AWS: "When the key material expires, AWS KMS deletes the key material, the key state of the KMS key changes to
PendingImport" (ImportKeyMaterial, ValidTo). A scheduler runs :func:`expire_imported_material` periodically; until
it has run, the request path already treats such a key as PendingImport (keystates.effective_key), so the job's
timing only decides when the wrapped material leaves the database, never whether an expired key can be used.

Idempotent and safe on several nodes at once: each key is re-read and re-checked inside its own write
transaction (the key row is locked there), so a key another node expired, or whose material was re-imported with
a later ValidTo in the meantime, is left alone.
"""

from __future__ import annotations

from openkms.context import ServiceAction, note_service_action, service_actions
from openkms.operations import keystates, metadata
from openkms.operations.key_import import after_material_deleted, remove_material
from openkms.operations.services import Services

BATCH = 100


def expire_imported_material(services: Services, now: float) -> int:
    """Delete every imported key material whose ValidTo is at or before ``now``, one write transaction per key;
    return how many were deleted."""
    deleted: list[bytes] = []
    while True:
        with services.storage.read() as tx:
            due = tx.list_expired_imported_material(now, BATCH)
        progress = 0
        for record in due:
            wrapped = _expire_one(services, record.key_id, now)
            if wrapped is not None:
                deleted.append(wrapped)
                progress += 1
        if len(due) < BATCH or progress == 0:  # no progress: never spin on rows this job cannot change
            break
    after_material_deleted(services, deleted)
    return len(deleted)


def _expire_one(services: Services, key_id: str, now: float) -> bytes | None:
    with service_actions(), services.storage.transaction() as tx:
        key = tx.get_key(key_id)
        record = tx.get_imported_material(key_id)
        if key is None or record is None or not keystates.material_expired(record, now):
            return None
        removed = remove_material(tx, key, record)
        if removed is not None:
            material = metadata.key_material_id(record.version_id)
            note_service_action(
                ServiceAction("DeleteExpiredKeyMaterial", key.arn, key.key_spec, now, {"keyMaterialId": material})
            )
        return removed
