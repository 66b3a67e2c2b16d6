"""Shared rules of the API: resolving a KeyId, key states, metadata rendering and pagination.

:func:`resolve_key` is the only way an operation gets a key, and it returns one only if the caller may
use it (operations/authorization.py), so authorisation cannot be skipped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import replace
from typing import Any

from openkms import ids
from openkms.context import RequestContext
from openkms.errors import (
    AccessDeniedException,
    DisabledException,
    DryRunOperationException,
    InvalidKeyUsageException,
    InvalidMarkerException,
    KMSInvalidStateException,
    NotFoundException,
)
from openkms.operations import authorization, keyspecs
from openkms.storage.ports import Transaction
from openkms.storage.records import ImportedMaterialRecord, KeyRecord, KeyVersionRecord

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"
PENDING_IMPORT = "PendingImport"

SYMMETRIC_DEFAULT = keyspecs.SYMMETRIC_DEFAULT
ENCRYPT_DECRYPT = keyspecs.ENCRYPT_DECRYPT

EXTERNAL = "EXTERNAL"
KEY_MATERIAL_EXPIRES = "KEY_MATERIAL_EXPIRES"
KEY_MATERIAL_DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"


class ManagedKeyMissing(Exception):
    """An operation that creates AWS managed keys on first use named ``alias/aws/<service>`` before it existed
    (operations/managed_keys.py); the operation registry creates the key and runs the operation again."""

    def __init__(self, account_id: str, region: str, alias_name: str) -> None:
        super().__init__(alias_name)
        self.account_id = account_id
        self.region = region
        self.alias_name = alias_name


def resolve_key(
    tx: Transaction,
    ctx: RequestContext,
    key_ref: str,
    *,
    allow_alias: bool,
    action: str | None = None,
    authorize: bool = True,
) -> KeyRecord:
    """Find the key ``key_ref`` names and check that the caller may perform ``action`` (default
    ``kms:<operation>``) on it, or raise as AWS does.

    A key id or alias name means the caller's account; an ARN names the account (cross-account use needs a key
    policy that allows it) and must name the caller's region. ``authorize=False`` is only for lookups whose
    result is authorised another way (Decrypt compares a named key with the one the blob names).
    """
    ref = ids.parse_key_reference(key_ref)
    if ref is None or (ref.is_alias and not allow_alias):
        raise NotFoundException(f"Invalid keyId {key_ref}")
    if ref.region is not None and ref.region != ctx.region:
        raise NotFoundException(f"Invalid arn {ref.region}")
    account = ref.account or ctx.principal.account_id
    request_alias: str | None = None
    if ref.is_alias:
        assert ref.alias_name is not None
        request_alias = ref.alias_name
        alias = tx.get_alias(account, ctx.region, ref.alias_name)
        if alias is None:
            _raise_if_managed_key_missing(ctx, account, ref.alias_name)
            raise NotFoundException(f"Alias {ids.alias_arn(ctx.region, account, ref.alias_name)} is not found.")
        key_id = alias.target_key_id
    else:
        assert ref.key_id is not None
        key_id = ref.key_id
    key = tx.get_key(key_id)
    if key is None or key.account_id != account or key.region != ctx.region:
        raise NotFoundException(f"Key '{ids.key_arn(ctx.region, account, key_id)}' does not exist")
    ctx.audit.add_key(key.arn, key.key_spec)  # denied or not, the record names the key asked for
    key = effective_key(tx, key, ctx.now)
    if authorize:
        authorization.authorize_key(tx, ctx, key, action, request_alias=request_alias)
    return key


def _raise_if_managed_key_missing(ctx: RequestContext, account: str, alias_name: str) -> None:
    from openkms.operations import managed_keys  # it builds on this module

    if (
        account == ctx.principal.account_id
        and ctx.operation in managed_keys.CREATING_OPERATIONS
        and managed_keys.service_of(alias_name) is not None
    ):
        raise ManagedKeyMissing(account, ctx.region, alias_name)


def require_customer_managed(key: KeyRecord, ctx: RequestContext) -> None:
    """Refuse to change an AWS managed key. Its key policy already denies every such action to everyone (so
    authorisation refuses first, with AWS's AccessDeniedException); this is the backstop, in AWS's words."""
    if key.key_manager != "CUSTOMER":
        raise AccessDeniedException(
            f"User: {ctx.principal.arn} is not authorized to perform: kms:{ctx.operation} on resource: {key.arn} "
            f"because no resource-based policy allows the kms:{ctx.operation} action"
        )


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


def require_usage(key: KeyRecord, usage: str, operation: str) -> None:
    if key.key_usage != usage:
        raise InvalidKeyUsageException(f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}.")


def require_algorithm(key: KeyRecord, usage: str, algorithm: str) -> str:
    """``algorithm`` if the key's spec offers it for ``usage`` (AWS's table), else InvalidKeyUsageException."""
    if algorithm not in keyspecs.algorithms(key.key_spec, usage):
        raise InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}.")
    return algorithm


def require_encryption_algorithm(key: KeyRecord, algorithm: str | None) -> str:
    """Encrypt, Decrypt and ReEncrypt default to SYMMETRIC_DEFAULT, which an RSA key refuses."""
    return require_algorithm(key, ENCRYPT_DECRYPT, algorithm or SYMMETRIC_DEFAULT)


def require_key(
    tx: Transaction, ctx: RequestContext, key_ref: str, usage: str, operation: str, action: str | None = None
) -> KeyRecord:
    """The usual preamble of a cryptographic operation: resolve and authorise, Enabled, the right KeyUsage."""
    key = resolve_key(tx, ctx, key_ref, allow_alias=True, action=action)
    require_enabled(key)
    require_usage(key, usage, operation)
    return key


def current_version(tx: Transaction, key: KeyRecord, ctx: RequestContext | None = None) -> KeyVersionRecord:
    """The backing version new outputs use (noted for the audit record); a key without one (PendingImport)
    cannot be used."""
    version = tx.get_version(key.key_id, key.current_version_id) if key.current_version_id else None
    if version is None:
        raise KMSInvalidStateException(state_message(key))
    if ctx is not None:
        ctx.audit.key_material_id = key_material_id(version.version_id)
    return version


def check_dry_run(params: dict[str, Any]) -> None:
    """Raise after every other check passed, as AWS does when ``DryRun`` is true."""
    if params.get("DryRun"):
        raise DryRunOperationException()


def key_material_id(version_id: str) -> str:
    """AWS names key material with 64 hex characters; ours are derived from the 16-byte version id."""
    return hashlib.sha256(b"openkms key material id\x00" + bytes.fromhex(version_id)).hexdigest()


def key_metadata(key: KeyRecord, imported: ImportedMaterialRecord | None = None) -> dict[str, Any]:
    """DescribeKey's ``KeyMetadata`` with AWS's field names; absent fields are omitted.

    ``imported`` (EXTERNAL keys that ever had material imported) adds ``ExpirationModel`` and, for material that
    expires, ``ValidTo``, as of the latest import; they stay after the material is deleted or expires, as AWS
    shows them on a PendingImport key."""
    meta: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.key_state == ENABLED,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.key_state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        **keyspecs.algorithm_fields(key.key_spec, key.key_usage),
        "MultiRegion": key.multi_region,
    }
    if key.key_state == PENDING_DELETION:
        # AWS shows PendingDeletionWindowInDays only for multi-Region primaries awaiting replica deletion.
        meta["DeletionDate"] = key.deletion_date
    if key.current_version_id is not None and key.key_spec == SYMMETRIC_DEFAULT:
        meta["CurrentKeyMaterialId"] = key_material_id(key.current_version_id)
    if imported is not None and key.origin == EXTERNAL:
        meta["ExpirationModel"] = imported.expiration_model
        if imported.valid_to is not None:
            meta["ValidTo"] = imported.valid_to
    return meta


def encode_marker(kind: str, last: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}\x00{last}".encode()).decode("ascii")


def decode_marker(kind: str, marker: str | None) -> str | None:
    """The position after which the next page starts; a marker from elsewhere is refused."""
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidMarkerException("Invalid marker") from None
    prefix, sep, last = text.partition("\x00")
    if prefix != kind or not sep or not last:
        raise InvalidMarkerException("Invalid marker")
    return last


def page_result(items: list[Any], limit: int, kind: str, last_of: Any) -> tuple[list[Any], dict[str, Any]]:
    """Split ``limit + 1`` fetched items into a page and its ``NextMarker``/``Truncated`` fields."""
    if len(items) > limit:
        page = items[:limit]
        return page, {"NextMarker": encode_marker(kind, last_of(page[-1])), "Truncated": True}
    return items, {"Truncated": False}
