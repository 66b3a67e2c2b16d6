"""GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial: key material from outside (BYOK).

A key created with ``Origin=EXTERNAL`` starts in PendingImport with no key version. GetParametersForImport hands
out a fresh RSA wrapping public key and an import token that carries the private half, encrypted and
authenticated under a key derived from the root key (crypto/key_import.py): nothing is stored per token.
ImportKeyMaterial unwraps the material, checks it against the key spec, and stores it as a key version wrapped
under the root key exactly like generated material (operations/materials.py).

Version identity: the first import picks a random version id and records it with a one-way fingerprint of the
material (storage ``imported_key_material``). DeleteImportedKeyMaterial and expiry delete only the key version
(the wrapped material); a later import of the *same* material (fingerprint match) recreates the version under
the same id, so ciphertexts made before, which name that id, decrypt again. Different material is refused with
IncorrectKeyMaterialException, as AWS does.

Rotating imported material (symmetric keys only): ImportKeyMaterial with ``ImportType=NEW_KEY_MATERIAL`` stages
different material in a new key version, PENDING_ROTATION (storage ``key_materials``), and RotateKeyOnDemand
(:func:`rotate_to_pending`) makes the newest staged material current. ``imported_key_material`` always describes
the current material, so deletion, expiry and re-import keep working on it as above; older material stays and
still decrypts.

Sources: the AWS KMS API reference pages of the three operations and the developer guide's "Importing key
material" and key-state table (links in docs/import.md).
"""

from __future__ import annotations

from dataclasses import replace

from openkms.context import RequestContext
from openkms.crypto import key_import, keypairs
from openkms.crypto.errors import DecryptionError, IntegrityError, InvalidKeyError
from openkms.crypto.rand import random_bytes
from openkms.errors import (
    ExpiredImportTokenException,
    IncorrectKeyMaterialException,
    InvalidCiphertextException,
    InvalidImportTokenException,
    KMSInvalidStateException,
    LimitExceededException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.operations import keyrefs, keyspecs, keystates, metadata
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.ports import Transaction
from openkms.storage.records import ImportedMaterialRecord, KeyMaterialRecord, KeyRecord, KeyVersionRecord

SECONDS_PER_DAY = 86400
# "Each public key and import token set is valid for 24 hours." (GetParametersForImport)
PARAMETERS_LIFETIME_SECONDS = 24 * 3600
# "The value of this parameter must be a future date and time. The maximum value is 365 days from the request
# date." (ImportKeyMaterial, ValidTo)
MAX_VALID_TO_DAYS = 365

RSAES_PKCS1_V1_5 = "RSAES_PKCS1_V1_5"
NEW_KEY_MATERIAL = "NEW_KEY_MATERIAL"
EXISTING_KEY_MATERIAL = "EXISTING_KEY_MATERIAL"
# "This parameter is optional and only usable with symmetric encryption keys." (ImportKeyMaterial)
SYMMETRIC_ONLY_PARAMETERS = ("ImportType", "KeyMaterialDescription", "KeyMaterialId")

SYMMETRIC_MATERIAL_BYTES = 32  # "a 256-bit symmetric encryption key"
# Imported HMAC key material: at least the hash output, at most the hash block size (AWS's requirements table).
HMAC_MATERIAL_BYTES = {"HMAC_224": (28, 64), "HMAC_256": (32, 64), "HMAC_384": (48, 128), "HMAC_512": (64, 128)}


# -- shared rules


def _require_external(key: KeyRecord) -> None:
    """Only keys designed for imported material (key-state table, note 9)."""
    if key.origin != keystates.EXTERNAL:
        raise UnsupportedOperationException(f"{key.arn} origin is {key.origin} which is not valid for this operation.")


def _require_importable(key: KeyRecord) -> None:
    """GetParametersForImport and ImportKeyMaterial: EXTERNAL, and not pending deletion (note 8)."""
    _require_external(key)
    keystates.require_not_pending_deletion(key)


def remove_material(tx: Transaction, key: KeyRecord, record: ImportedMaterialRecord | None) -> bytes | None:
    """Delete the key's imported material (its key version) and make the key PendingImport, unless it is pending
    deletion (DeleteImportedKeyMaterial: "this operation does not change the KMS key's state" then).

    ``key`` may be the effective view of the key (keystates.effective_key); the row is written in full either way.
    Returns the wrapped bytes that were deleted (so the caller can drop them from the material cache), or None
    if there was no material. Shared by DeleteImportedKeyMaterial and the expiry job.
    """
    deleted: bytes | None = None
    if record is not None:
        version = tx.get_version(key.key_id, record.version_id)
        if version is not None and tx.delete_version(key.key_id, record.version_id):
            deleted = version.wrapped_material
    state = key.key_state if key.key_state == keystates.PENDING_DELETION else keystates.PENDING_IMPORT
    tx.update_key(replace(key, key_state=state, current_version_id=None))
    return deleted


def after_material_deleted(svc: Services, wrapped: list[bytes]) -> None:
    """Once the deletion has committed: forget this worker's cached plaintext and shred what the engine keeps
    (SQLite's WAL; docs/design.md section 8)."""
    if not wrapped:
        return
    svc.materials.forget(wrapped)
    # One attempt, no pause: this runs in the request. A reader that held the WAL leaves the frames to the
    # next shred (the key-deletion job shreds at every worker's start and after each deletion).
    svc.storage.shred_deleted(attempts=1)


# -- GetParametersForImport


def _wrapping(params: Params) -> tuple[str, str]:
    algorithm: str = params["WrappingAlgorithm"]
    spec: str = params["WrappingKeySpec"]
    if algorithm == RSAES_PKCS1_V1_5:
        # AWS removed it on 2023-10-10; a padding-oracle surface (docs/design.md section 8, docs/tests.md C-4).
        raise ValidationException(
            "The RSAES_PKCS1_V1_5 wrapping algorithm is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, "
            "RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
        )
    if algorithm not in key_import.WRAPPING_ALGORITHMS or spec not in key_import.WRAPPING_KEY_SPECS:
        if "SM2" in (algorithm, spec) or algorithm == "SM2PKE":
            reason = "the SM2 wrapping key spec and SM2PKE are offered only in AWS China Regions"
        else:
            reason = "its crypto library lacks it"
        raise UnsupportedOperationException(
            f"Wrapping algorithm {algorithm} with wrapping key spec {spec} is not supported by openkms ({reason})."
        )
    return algorithm, spec


@operation("GetParametersForImport")
def get_parameters_for_import(svc: Services, ctx: RequestContext, params: Params) -> Result:
    algorithm, spec = _wrapping(params)
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
    _require_importable(key)
    private_der = key_import.generate_wrapping_key(spec)  # RSA_4096 generation can take seconds: a slow operation
    valid_to = round((ctx.now + PARAMETERS_LIFETIME_SECONDS) * 1000) / 1000  # what the token holds
    token = key_import.ImportToken(key.arn, algorithm, spec, valid_to, private_der)
    return {
        "KeyId": key.arn,
        "ImportToken": key_import.seal_token(svc.keyring.root_key(), token),
        "PublicKey": key_import.wrapping_public_key(spec, private_der),
        "ParametersValidTo": valid_to,
    }


# -- ImportKeyMaterial


def _expiration(params: Params, now: float) -> tuple[str, float | None]:
    """ExpirationModel (default KEY_MATERIAL_EXPIRES) and ValidTo: required with, refused without, expiry."""
    model: str = params.get("ExpirationModel", keystates.KEY_MATERIAL_EXPIRES)
    valid_to: float | None = params.get("ValidTo")
    if model == keystates.KEY_MATERIAL_DOES_NOT_EXPIRE:
        if valid_to is not None:
            raise ValidationException(
                "The parameter ValidTo cannot be specified for a key with an expiration model of "
                "KEY_MATERIAL_DOES_NOT_EXPIRE"
            )
        return model, None
    if valid_to is None:
        raise ValidationException("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
    if valid_to <= now:
        raise ValidationException("ValidTo must be in the future")
    if valid_to > now + MAX_VALID_TO_DAYS * SECONDS_PER_DAY:
        raise ValidationException(f"ValidTo must be at most {MAX_VALID_TO_DAYS} days from the request date")
    return model, valid_to


def _check_symmetric_only(key: KeyRecord, params: Params) -> None:
    if key.key_spec == keyspecs.SYMMETRIC_DEFAULT:
        if params.get("ImportType") == NEW_KEY_MATERIAL and params.get("KeyMaterialId") is not None:
            raise ValidationException("You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL.")
        return
    for name in SYMMETRIC_ONLY_PARAMETERS:
        if params.get(name) is not None:
            raise ValidationException(f"{name} is only valid for symmetric encryption KMS keys.")


def _opened_token(svc: Services, key: KeyRecord, sealed: bytes, now: float) -> key_import.ImportToken:
    try:
        token = key_import.open_token(svc.keyring.root_key(), sealed)
    except IntegrityError:
        raise InvalidImportTokenException() from None
    if token.key_arn != key.arn:  # a token of another key, account or region
        raise InvalidImportTokenException()
    if token.valid_to <= now:
        raise ExpiredImportTokenException()
    return token


def _unwrapped(token: key_import.ImportToken, encrypted: bytes) -> bytes:
    try:
        return key_import.unwrap_material(
            token.wrapping_key_spec, token.private_key_der, token.wrapping_algorithm, encrypted
        )
    except DecryptionError:
        raise InvalidCiphertextException() from None  # one answer for every failure (docs/tests.md C-4)


def checked_material(key: KeyRecord, material: bytes) -> bytes:
    """The material as stored for ``key``'s spec, or IncorrectKeyMaterialException (AWS's requirements for
    imported key material: 256-bit symmetric keys, HMAC keys within the spec's range, private keys as PKCS #8
    DER of exactly the key spec, fully validated)."""
    spec = key.key_spec
    if spec == keyspecs.SYMMETRIC_DEFAULT:
        if len(material) != SYMMETRIC_MATERIAL_BYTES:
            raise IncorrectKeyMaterialException(
                f"Key material for a {spec} KMS key must be {SYMMETRIC_MATERIAL_BYTES * 8} bits."
            )
        return material
    if spec in HMAC_MATERIAL_BYTES:
        low, high = HMAC_MATERIAL_BYTES[spec]
        if not low <= len(material) <= high:
            raise IncorrectKeyMaterialException(f"Key material for a {spec} KMS key must be {low} to {high} bytes.")
        return material
    if not keyspecs.info(spec).asymmetric or not keyspecs.served(spec):
        raise UnsupportedOperationException(f"Importing key material into a {spec} KMS key is not supported.")
    try:
        return keypairs.import_private_key(spec, material)
    except InvalidKeyError:
        raise IncorrectKeyMaterialException(
            f"Key material for a {spec} KMS key must be a valid {spec} private key in PKCS #8 DER encoding."
        ) from None


def _matches(fingerprint: bytes, version_id: str, key: KeyRecord, material: bytes) -> bool:
    """Whether ``material`` is the material committed to by ``fingerprint`` (of ``key``'s version ``version_id``)."""
    try:
        key_import.verify_fingerprint(fingerprint, key.key_id, bytes.fromhex(version_id), material)
    except IntegrityError:
        return False
    return True


def _import_type(params: Params, record: ImportedMaterialRecord | None) -> str:
    return params.get("ImportType") or (EXISTING_KEY_MATERIAL if record is not None else NEW_KEY_MATERIAL)


def _version_for(
    key: KeyRecord, record: ImportedMaterialRecord | None, material: bytes, params: Params
) -> tuple[str, bytes]:
    """The key version the material goes into and its fingerprint, after AWS's same-material rules (first import,
    or re-import of the current material; NEW_KEY_MATERIAL into a key that has material is :func:`_stage_new`)."""
    import_type = _import_type(params, record)
    if record is None:
        if import_type == EXISTING_KEY_MATERIAL:
            raise IncorrectKeyMaterialException(f"No key material has been imported into {key.arn} yet.")
        version_id = random_bytes(16).hex()
        return version_id, key_import.material_fingerprint(key.key_id, bytes.fromhex(version_id), material)
    if not _matches(record.fingerprint, record.version_id, key, material):
        raise IncorrectKeyMaterialException(
            f"The key material is not the key material that was previously imported into {key.arn}."
        )
    given_id = params.get("KeyMaterialId")
    if given_id is not None and given_id != metadata.key_material_id(record.version_id):
        raise IncorrectKeyMaterialException(f"Key material {given_id} is not the key material of {key.arn}.")
    return record.version_id, record.fingerprint


def key_materials(tx: Transaction, key: KeyRecord, record: ImportedMaterialRecord | None) -> list[KeyMaterialRecord]:
    """Every material of a symmetric EXTERNAL key, oldest first. A key imported before schema version 10 has no
    rows yet: its one material is the current record's."""
    materials = tx.list_key_materials(key.key_id)
    if record is not None and all(m.version_id != record.version_id for m in materials):
        first = KeyMaterialRecord(
            key.key_id,
            record.version_id,
            record.fingerprint,
            record.expiration_model,
            record.valid_to,
            record.description,
            record.imported_at,
            record.imported_at,
        )
        materials.insert(0, first)
    # Rotated materials in the order they became current, then what waits for a rotation, in import order.
    return sorted(
        materials, key=lambda m: (m.rotated_at is None, m.imported_at if m.rotated_at is None else m.rotated_at)
    )


def _stage_new(
    svc: Services,
    tx: Transaction,
    ctx: RequestContext,
    key: KeyRecord,
    record: ImportedMaterialRecord,
    material: bytes,
    params: Params,
) -> str:
    """NEW_KEY_MATERIAL into a symmetric key that has material: a new key version, PENDING_ROTATION until
    RotateKeyOnDemand. The key, its current material and its state do not change. Returns the version id."""
    if key.current_version_id is None:  # the current material was deleted or expired: import it again first
        raise KMSInvalidStateException(keystates.state_message(key))
    for known in key_materials(tx, key, record):
        if _matches(known.fingerprint, known.version_id, key, material):
            raise IncorrectKeyMaterialException(f"The key material is already associated with {key.arn}.")
    model, valid_to = _expiration(params, ctx.now)
    version_id = random_bytes(16).hex()
    fingerprint = key_import.material_fingerprint(key.key_id, bytes.fromhex(version_id), material)
    wrapped = svc.materials.wrap_new(key, version_id, material)
    tx.insert_version(KeyVersionRecord(key.key_id, version_id, ctx.now, wrapped, "ON_DEMAND"))
    description = params.get("KeyMaterialDescription")
    tx.put_key_material(
        KeyMaterialRecord(key.key_id, version_id, fingerprint, model, valid_to, description, ctx.now, None)
    )
    return version_id


def staged_present(tx: Transaction, material: KeyMaterialRecord, now: float) -> bool:
    """Whether the material is here and usable at ``now``: its key version exists and its ValidTo has not passed
    (staged material that expired before its rotation is PENDING_IMPORT and cannot become current)."""
    if material.valid_to is not None and material.valid_to <= now:
        return False
    return tx.get_version(material.key_id, material.version_id) is not None


def rotate_to_pending(tx: Transaction, key: KeyRecord, now: float, limit: int) -> KeyRecord:
    """RotateKeyOnDemand of a symmetric EXTERNAL key: the newest material in PENDING_ROTATION becomes current (and
    what expiry, deletion and re-import act on). The caller holds the key's row and has checked its state."""
    record = tx.get_imported_material(key.key_id)
    materials = key_materials(tx, key, record)
    pending = [m for m in materials if m.rotated_at is None and staged_present(tx, m, now)]
    if not pending:
        raise UnsupportedOperationException(
            f"{key.arn} has no imported key material in PENDING_ROTATION state. "
            "Import new key material with ImportType NEW_KEY_MATERIAL first."
        )
    if sum(1 for m in materials if m.rotated_at is not None) - 1 >= limit:
        raise LimitExceededException(f"You have reached the maximum of {limit} on-demand rotations for {key.arn}.")
    target = replace(pending[-1], rotated_at=now)
    if record is not None and materials[0].version_id == record.version_id:
        tx.put_key_material(materials[0])  # a no-op overwrite, or the first row of a key imported before version 10
    tx.put_key_material(target)
    tx.put_imported_material(
        ImportedMaterialRecord(
            key.key_id,
            target.version_id,
            target.fingerprint,
            target.expiration_model,
            target.valid_to,
            target.description,
            target.imported_at,
        )
    )
    updated = replace(key, current_version_id=target.version_id)
    tx.update_key(updated)
    return updated


@operation("ImportKeyMaterial")
def import_key_material(svc: Services, ctx: RequestContext, params: Params) -> Result:
    model, valid_to = _expiration(params, ctx.now)
    key_ref: str = params["KeyId"]
    with svc.storage.read() as tx:  # authorise and check state before touching the token
        key = keyrefs.resolve_key(tx, ctx, key_ref, allow_alias=False)
    _require_importable(key)
    _check_symmetric_only(key, params)
    token = _opened_token(svc, key, params["ImportToken"], ctx.now)
    # Outside the write transaction: validating an RSA_4096 private key takes most of a second.
    material = checked_material(key, _unwrapped(token, params["EncryptedKeyMaterial"]))
    symmetric = key.key_spec == keyspecs.SYMMETRIC_DEFAULT

    with svc.storage.transaction() as tx:  # the one write transaction of this request
        key = keyrefs.resolve_key(tx, ctx, key_ref, allow_alias=False)  # the state may have changed meanwhile
        _require_importable(key)
        record = tx.get_imported_material(key.key_id)
        if record is not None and _import_type(params, record) == NEW_KEY_MATERIAL:
            version_id = _stage_new(svc, tx, ctx, key, record, material, params)
            return {"KeyId": key.arn, "KeyMaterialId": metadata.key_material_id(version_id)}
        version_id, fingerprint = _version_for(key, record, material, params)
        if tx.get_version(key.key_id, version_id) is None:
            wrapped = svc.materials.wrap_new(key, version_id, material)
            tx.insert_version(KeyVersionRecord(key.key_id, version_id, ctx.now, wrapped))
        description = params.get("KeyMaterialDescription", record.description if record is not None else None)
        current = ImportedMaterialRecord(key.key_id, version_id, fingerprint, model, valid_to, description, ctx.now)
        tx.put_imported_material(current)
        if symmetric:
            known = {m.version_id: m for m in key_materials(tx, key, record)}
            rotated_at = known[version_id].rotated_at if version_id in known else ctx.now
            tx.put_key_material(
                KeyMaterialRecord(
                    key.key_id, version_id, fingerprint, model, valid_to, description, ctx.now, rotated_at
                )
            )
        # "When this operation is successful, the state of the KMS key changes to Enabled"; a re-import into an
        # Enabled or Disabled key (to change the expiration) keeps its state.
        state = keystates.ENABLED if key.key_state == keystates.PENDING_IMPORT else key.key_state
        tx.update_key(replace(key, key_state=state, current_version_id=version_id))
    result: Result = {"KeyId": key.arn}
    if symmetric:  # AWS names key material of symmetric encryption keys only
        result["KeyMaterialId"] = metadata.key_material_id(version_id)
    return result


# -- DeleteImportedKeyMaterial


def _pending_named(tx: Transaction, key: KeyRecord, material_id: str) -> KeyMaterialRecord | None:
    """The PENDING_ROTATION material of ``key`` whose KeyMaterialId is ``material_id``, if any."""
    for known in tx.list_key_materials(key.key_id):
        if known.rotated_at is None and metadata.key_material_id(known.version_id) == material_id:
            return known
    return None


def _remove_pending(tx: Transaction, key: KeyRecord, staged: KeyMaterialRecord) -> bytes | None:
    """AWS: PENDING_ROTATION material "is not permanently associated with the KMS key. You can delete this key
    material and import different key material in its place." Its version and its record go; the key's state
    and current material stay."""
    version = tx.get_version(key.key_id, staged.version_id)
    tx.delete_version(key.key_id, staged.version_id)
    tx.delete_key_material(key.key_id, staged.version_id)
    return version.wrapped_material if version is not None else None


@operation("DeleteImportedKeyMaterial")
def delete_imported_key_material(svc: Services, ctx: RequestContext, params: Params) -> Result:
    given_id: str | None = params.get("KeyMaterialId")
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        _require_external(key)
        record = tx.get_imported_material(key.key_id)
        if given_id is not None and (record is None or given_id != metadata.key_material_id(record.version_id)):
            staged = _pending_named(tx, key, given_id)
            if staged is None:
                raise NotFoundException(f"Key material {given_id} is not associated with {key.arn}.")
            deleted = _remove_pending(tx, key, staged)
            material_id: str | None = given_id
        else:
            deleted = remove_material(tx, key, record)
            symmetric = key.key_spec == keyspecs.SYMMETRIC_DEFAULT
            material_id = metadata.key_material_id(record.version_id) if record is not None and symmetric else None
    after_material_deleted(svc, [deleted] if deleted is not None else [])
    result: Result = {"KeyId": key.arn}
    if material_id is not None:  # AWS names key material of symmetric encryption keys only
        result["KeyMaterialId"] = material_id
    return result
