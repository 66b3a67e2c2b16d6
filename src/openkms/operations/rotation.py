"""EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the
one step the automatic-rotation job repeats (:func:`rotate_if_due`).

A rotation adds a backing version to the key: fresh material, wrapped under the root key with AAD binding the
key ARN and the new version id, which becomes the key's current version. New encryptions use it; every older
version stays, so every older ciphertext still decrypts (the blob names its version). Key id, ARN, aliases,
policy and grants do not change (AWS developer guide, "Rotate AWS KMS keys").

What rotates, as AWS documents it: symmetric encryption keys (``SYMMETRIC_DEFAULT``) with AWS-generated
material, automatically (every ``RotationPeriodInDays``, 90-2560, default 365) and on demand (at most 25
times per key; ``Settings.on_demand_rotation_limit``). Asymmetric and HMAC keys, keys in custom key stores
and (for automatic rotation) keys with imported material are refused with UnsupportedOperationException. A
single-Region symmetric key with imported material rotates on demand into material imported beforehand with
``ImportType=NEW_KEY_MATERIAL`` (operations/key_import.py, :func:`~openkms.operations.key_import.rotate_to_pending`).

Timing, as AWS documents it: rotation happens the period after EnableKeyRotation and every period after
that; on-demand rotations leave that schedule alone. A Disabled or PendingDeletion key is not rotated, but
keeps its status (GetKeyRotationStatus shows false while deletion is pending); once Enabled again, a key
whose date has passed rotates at once, and the next date is counted from then: a key due three periods ago
rotates once, not three times.

Differences from AWS, on purpose: RotateKeyOnDemand completes inside the call (one transaction) instead of
in a background process, so ``OnDemandRotationStartDate`` (shown only while one is in progress) never
appears and ConflictException (one already in progress) cannot happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from openkms.context import RequestContext, ServiceAction, note_service_action, service_actions
from openkms.crypto.rand import random_bytes
from openkms.errors import InvalidMarkerException, LimitExceededException, UnsupportedOperationException
from openkms.operations import key_import, keyrefs, keyspecs, keystates, metadata, paging
from openkms.operations.keys import SECONDS_PER_DAY, new_key_material
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.ports import Transaction
from openkms.storage.records import ImportedMaterialRecord, KeyMaterialRecord, KeyRecord, KeyVersionRecord

INITIAL = "INITIAL"
AUTOMATIC = "AUTOMATIC"
ON_DEMAND = "ON_DEMAND"
DEFAULT_ROTATION_PERIOD_DAYS = 365  # the 90-2560 bounds come from the model (RotationPeriodInDaysType)

_CUSTOM_KEY_STORE_ORIGINS = frozenset({"AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"})


# -- which keys rotate ------------------------------------------------------------------------------------


def _origin_refused(key: KeyRecord) -> UnsupportedOperationException:
    # AWS key-state table, footnote: "<key ARN> origin is EXTERNAL which is not valid for this operation."
    return UnsupportedOperationException(f"{key.arn} origin is {key.origin} which is not valid for this operation.")


def _require_symmetric(key: KeyRecord) -> None:
    """Asymmetric and HMAC keys do not rotate; nor do keys in custom key stores. AWS refuses the key spec with an
    UnsupportedOperationException that has no message field at all (recorded for RotateKeyOnDemand, issue 18
    item 11; an AWS-checked emulator's suite, floci's, pins the same for EnableKeyRotation)."""
    if key.origin in _CUSTOM_KEY_STORE_ORIGINS:
        raise _origin_refused(key)
    if key.key_spec != keyspecs.SYMMETRIC_DEFAULT:
        raise UnsupportedOperationException()


def _require_automatic_rotation(key: KeyRecord) -> None:
    """Automatic rotation: symmetric keys with AWS-generated material (not imported, not custom key stores), in
    an Enabled key. The origin is checked first (the key-state table's footnote answers it for a PendingImport
    key), then the state, then the key spec: AWS checks the state before the spec (issue 18 item 4)."""
    if key.origin != "AWS_KMS":
        raise _origin_refused(key)
    keystates.require_enabled(key)
    _require_symmetric(key)


def supports_automatic_rotation(key: KeyRecord) -> bool:
    return key.key_spec == keyspecs.SYMMETRIC_DEFAULT and key.origin == "AWS_KMS"


# -- the one way a key gains a version ---------------------------------------------------------------------


def add_version(svc: Services, tx: Transaction, key: KeyRecord, rotation_type: str, now: float) -> KeyRecord:
    """Give ``key`` fresh material as a new current version inside ``tx``; returns the key as updated.

    The caller holds the key's row (``get_key`` in a write transaction) and has checked that it may rotate.
    """
    version_id = random_bytes(16).hex()
    wrapped = svc.materials.wrap_new(key, version_id, new_key_material(key.key_spec))
    tx.insert_version(KeyVersionRecord(key.key_id, version_id, now, wrapped, rotation_type))
    updated = replace(key, current_version_id=version_id)
    tx.update_key(updated)
    return updated


def automatic_rotation_due(key: KeyRecord, now: float) -> bool:
    """Whether the automatic-rotation job must rotate ``key`` at ``now``."""
    return (
        key.rotation_enabled
        and key.key_state == keystates.ENABLED
        and key.next_rotation_date is not None
        and key.next_rotation_date <= now
        and supports_automatic_rotation(key)
    )


def rotate_if_due(svc: Services, key_id: str, now: float) -> bool:
    """One step of the automatic-rotation job, in one write transaction; whether it rotated.

    The key is re-read under its row lock and the rule re-checked, so running this twice (two nodes whose
    leases overlapped, or a rerun after kill -9) rotates once: the first commit moves the date forward.
    """
    with service_actions(), svc.storage.transaction() as tx:
        key = tx.get_key(key_id)
        if key is None or not automatic_rotation_due(key, now):
            return False
        rotated = add_version(svc, tx, key, AUTOMATIC, now)
        period = rotated.rotation_period_days or DEFAULT_ROTATION_PERIOD_DAYS
        tx.update_key(replace(rotated, next_rotation_date=now + period * SECONDS_PER_DAY))
        material = metadata.key_material_id(rotated.current_version_id) if rotated.current_version_id else None
        note_service_action(ServiceAction("RotateKey", key.arn, key.key_spec, now, {"keyMaterialId": material}))
    return True


# -- the API ---------------------------------------------------------------------------------------------


def _change_key(svc: Services, ctx: RequestContext, key_ref: str, change: Callable[[KeyRecord], KeyRecord]) -> None:
    """Resolve, authorise, check and write the key in one write transaction."""
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, key_ref, allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        updated = change(key)
        if updated != key:
            tx.update_key(updated)


@operation("EnableKeyRotation")
def enable_key_rotation(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """Rotation happens ``RotationPeriodInDays`` after this call and every period after that (AWS: "the number
    of days after you enable automatic key rotation that KMS will rotate your key material")."""
    period: int = params.get("RotationPeriodInDays", DEFAULT_ROTATION_PERIOD_DAYS)

    def change(key: KeyRecord) -> KeyRecord:
        _require_automatic_rotation(key)
        return replace(
            key,
            rotation_enabled=True,
            rotation_period_days=period,
            next_rotation_date=ctx.now + period * SECONDS_PER_DAY,
        )

    _change_key(svc, ctx, params["KeyId"], change)
    return {}


@operation("DisableKeyRotation")
def disable_key_rotation(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """A key that cannot rotate (asymmetric, HMAC) has rotation off already: AWS answers success for it (as an
    AWS-checked emulator's suite, floci's, pins it), after the origin and state checks."""

    def change(key: KeyRecord) -> KeyRecord:
        if key.origin != "AWS_KMS":
            raise _origin_refused(key)
        keystates.require_enabled(key)
        if key.key_spec != keyspecs.SYMMETRIC_DEFAULT:
            return key
        return replace(key, rotation_enabled=False, rotation_period_days=None, next_rotation_date=None)

    _change_key(svc, ctx, params["KeyId"], change)
    return {}


@operation("GetKeyRotationStatus")
def get_key_rotation_status(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """Works in every key state. A key that cannot rotate automatically answers false; so does a key pending
    deletion, whose status returns if the deletion is cancelled (AWS)."""
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
    if key.origin in _CUSTOM_KEY_STORE_ORIGINS:
        raise _origin_refused(key)
    return {"KeyId": key.arn, **rotation_status(key)}


def rotation_status(key: KeyRecord) -> dict[str, object]:
    """GetKeyRotationStatus's fields (without KeyId): also what ``openkms keys show`` prints."""
    enabled = key.rotation_enabled and key.key_state != keystates.PENDING_DELETION and supports_automatic_rotation(key)
    status: dict[str, object] = {"KeyRotationEnabled": enabled}
    if enabled:
        status["RotationPeriodInDays"] = key.rotation_period_days or DEFAULT_ROTATION_PERIOD_DAYS
        if key.next_rotation_date is not None:
            status["NextRotationDate"] = key.next_rotation_date
    return status


@operation("RotateKeyOnDemand")
def rotate_key_on_demand(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """Rotates at once, whether or not automatic rotation is on, and leaves its schedule alone (AWS)."""
    limit = svc.settings.on_demand_rotation_limit
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        # The state before the key spec: a Disabled RSA key is DisabledException at AWS (recorded responses).
        keystates.require_enabled(key)
        _require_symmetric(key)
        if key.origin == keystates.EXTERNAL and not key.multi_region:
            # Into material imported beforehand with ImportType NEW_KEY_MATERIAL (PENDING_ROTATION).
            key_import.rotate_to_pending(tx, key, ctx.now, limit)
            return {"KeyId": key.arn}
        if key.origin != "AWS_KMS":  # and multi-Region keys with imported material (RotateKeyOnDemand)
            raise _origin_refused(key)
        if tx.count_versions(key.key_id, ON_DEMAND) >= limit:
            raise LimitExceededException(f"You have reached the maximum of {limit} on-demand rotations for {key.arn}.")
        add_version(svc, tx, key, ON_DEMAND, ctx.now)
    return {"KeyId": key.arn}  # the key ARN, as AWS answers (and as GetKeyRotationStatus does)


@operation("ListKeyRotations")
def list_key_rotations(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """Oldest first. ``ROTATIONS_ONLY`` (the default) lists the versions rotations made; ``ALL_KEY_MATERIAL``
    adds the first one, which has no RotationDate or RotationType, and, for imported material, what waits in
    PENDING_ROTATION (API reference, ListKeyRotations and RotationsListEntry)."""
    limit: int = params.get("Limit", 100)
    after = paging.decode_marker("rotations", params.get("Marker"))
    everything = params.get("IncludeKeyMaterial", "ROTATIONS_ONLY") == "ALL_KEY_MATERIAL"
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        _require_symmetric(key)
        entries = key_material_entries(tx, key, ctx.now)
    listed = [e for e in entries if everything or "RotationType" in e[1]]
    if after is not None:
        position = next((i for i, (version_id, _) in enumerate(listed) if version_id == after), None)
        if position is None:
            raise InvalidMarkerException("Invalid marker")
        listed = listed[position + 1 :]
    page, page_fields = paging.page_result(listed[: limit + 1], limit, "rotations", lambda e: e[0])
    return {"Rotations": [entry for _, entry in page], **page_fields}


def key_material_entries(tx: Transaction, key: KeyRecord, now: float) -> list[tuple[str, dict[str, object]]]:
    """Every key material of a symmetric key as ListKeyRotations shows it (``ALL_KEY_MATERIAL``), oldest first,
    each with its version id (the paging marker). Also what ``openkms keys show`` prints."""
    if key.origin != keystates.EXTERNAL:
        return [(v.version_id, rotation_entry(key, v)) for v in tx.list_versions(key.key_id)]
    record = tx.get_imported_material(key.key_id)
    return [
        (m.version_id, imported_entry(key, record, m, _imported(tx, key, record, m, now), i == 0))
        for i, m in enumerate(key_import.key_materials(tx, key, record))
    ]


def _imported(
    tx: Transaction, key: KeyRecord, current: ImportedMaterialRecord | None, material: KeyMaterialRecord, now: float
) -> bool:
    """ImportState IMPORTED: the material is here and, for the current one, not expired (the key's own record
    decides, as for the key state); a staged material by its own ValidTo."""
    if current is not None and material.version_id == current.version_id:
        return (
            not keystates.material_expired(current, now) and tx.get_version(key.key_id, material.version_id) is not None
        )
    return key_import.staged_present(tx, material, now)


def rotation_entry(key: KeyRecord, version: KeyVersionRecord) -> dict[str, object]:
    entry: dict[str, object] = {
        "KeyId": key.key_id,
        "KeyMaterialId": metadata.key_material_id(version.version_id),
        "KeyMaterialState": "CURRENT" if version.version_id == key.current_version_id else "NON_CURRENT",
    }
    if version.rotation_type in (AUTOMATIC, ON_DEMAND):
        entry["RotationDate"] = version.created_at
        entry["RotationType"] = version.rotation_type
    return entry


def imported_entry(
    key: KeyRecord, current: ImportedMaterialRecord | None, material: KeyMaterialRecord, imported: bool, first: bool
) -> dict[str, object]:
    """One material of a symmetric EXTERNAL key: its import state (whether the material is here now) and its
    state. The current material, even while deleted or expired, is the one ``imported_key_material`` names."""
    is_current = current is not None and material.version_id == current.version_id
    if is_current:
        state = "CURRENT"
    elif material.rotated_at is None:
        state = "PENDING_ROTATION"
    else:
        state = "NON_CURRENT"
    entry: dict[str, object] = {
        "KeyId": key.key_id,
        "KeyMaterialId": metadata.key_material_id(material.version_id),
        "ImportState": "IMPORTED" if imported else "PENDING_IMPORT",
        "KeyMaterialState": state,
    }
    description = current.description if is_current and current is not None else material.description
    if description is not None:
        entry["KeyMaterialDescription"] = description
    model = current.expiration_model if is_current and current is not None else material.expiration_model
    valid_to = current.valid_to if is_current and current is not None else material.valid_to
    entry["ExpirationModel"] = model
    if valid_to is not None:
        entry["ValidTo"] = valid_to
    if not first and material.rotated_at is not None:
        entry["RotationDate"] = material.rotated_at
        entry["RotationType"] = ON_DEMAND
    return entry
