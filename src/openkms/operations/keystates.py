"""The states a key passes through (AWS's key-state table) and the checks an operation makes of a key's state.

:func:`effective_key` is the one place an EXTERNAL key's state is derived from its imported material, so every
read of a key on the request path sees the same state.
"""

from __future__ import annotations

from dataclasses import replace

from openkms.errors import DisabledException, KMSInvalidStateException
from openkms.storage.ports import Transaction
from openkms.storage.records import ImportedMaterialRecord, KeyRecord

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"
PENDING_IMPORT = "PendingImport"

EXTERNAL = "EXTERNAL"
KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"


def material_expired(record: ImportedMaterialRecord, now: float) -> bool:
    """Whether imported material has passed its ValidTo (AWS deletes it then; so does import_expiry.py)."""
    return record.valid_to is not None and record.valid_to <= now


def effective_key(tx: Transaction, key: KeyRecord, now: float) -> KeyRecord:
    """``key`` as the API must see it at ``now``: an EXTERNAL key whose imported material has expired is already
    PendingImport (without a current version) before the expiry job deletes the material, and an EXTERNAL key
    without material is never Enabled or Disabled (CancelKeyDeletion of a key whose material was deleted).
    Every read of a key on the request path goes through here (resolve_key, Decrypt's blob lookup)."""
    if key.origin != EXTERNAL:
        return key
    if key.current_version_id is None:
        if key.key_state in (ENABLED, DISABLED):
            return replace(key, key_state=PENDING_IMPORT)
        return key
    record = tx.get_imported_material(key.key_id)
    if record is None or not material_expired(record, now):
        return key
    state = key.key_state if key.key_state == PENDING_DELETION else PENDING_IMPORT
    return replace(key, key_state=state, current_version_id=None)


def require_enabled(key: KeyRecord) -> None:
    """Cryptographic operations need an Enabled key (AWS's key-state table)."""
    if key.key_state == ENABLED:
        return
    if key.key_state == DISABLED:
        raise DisabledException(f"{key.arn} is disabled.")
    raise KMSInvalidStateException(state_message(key))


def require_not_pending_deletion(key: KeyRecord) -> None:
    if key.key_state == PENDING_DELETION:
        raise KMSInvalidStateException(state_message(key))


def state_message(key: KeyRecord) -> str:
    readable = {PENDING_DELETION: "pending deletion", PENDING_IMPORT: "pending import"}
    return f"{key.arn} is {readable.get(key.key_state, key.key_state)}."
