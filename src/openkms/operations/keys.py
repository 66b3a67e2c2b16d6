"""CreateKey, DescribeKey, ListKeys, Enable/DisableKey, Schedule/CancelKeyDeletion, UpdateKeyDescription."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from openkms import ids
from openkms.context import RequestContext
from openkms.crypto import keypairs, symmetric
from openkms.crypto.rand import random_bytes
from openkms.errors import (
    CustomKeyStoreNotFoundException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.operations import authorization, keyrefs, keyspecs, keystates, metadata, paging, principal_ids
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.operations.tags import validate_new_tags
from openkms.policy.document import parse_policy
from openkms.policy.lockout import ensure_no_lockout
from openkms.storage.records import KeyRecord, KeyVersionRecord

# AWS enforces 7-30 days although the API model allows 1-365 (docs/design.md section 8).
MIN_PENDING_WINDOW_DAYS = 7
MAX_PENDING_WINDOW_DAYS = 30
DEFAULT_PENDING_WINDOW_DAYS = 30
SECONDS_PER_DAY = 86400


def default_key_policy(account_id: str) -> str:
    """AWS's default key policy: the account's root may do everything, so identity policies decide."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": ids.root_arn(account_id)},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


def checked_key_policy(ctx: RequestContext, text: str, key_arn: str | None, bypass_lockout: bool) -> str:
    """A key policy as AWS accepts it: valid, and (unless bypassed) still letting the caller manage the key."""
    document = parse_policy(text, "key")
    if not bypass_lockout:
        ensure_no_lockout(document, ctx.principal.arn, ctx.principal.account_id, key_arn=key_arn)
    return text


def _requested_spec(params: Params) -> str:
    key_spec = params.get("KeySpec")
    legacy_spec = params.get("CustomerMasterKeySpec")
    if key_spec is not None and legacy_spec is not None:
        raise ValidationException("You cannot specify both KeySpec and CustomerMasterKeySpec. Use KeySpec.")
    spec: str = key_spec or legacy_spec or keyspecs.SYMMETRIC_DEFAULT
    return spec


def _requested_usage(spec: str, params: Params) -> str:
    """KeyUsage defaults to ENCRYPT_DECRYPT only for a symmetric encryption key; AWS refuses to guess for any other
    spec ("This parameter is optional when you are creating a symmetric encryption KMS key; otherwise, it is
    required", CreateKey; the refusal and its text are recorded answers, issue 18 item 12)."""
    usage: str | None = params.get("KeyUsage")
    if usage is not None:
        return usage
    if spec != keyspecs.SYMMETRIC_DEFAULT:
        raise ValidationException(
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
        )
    return keyspecs.ENCRYPT_DECRYPT


def _checked_spec_and_usage(spec: str, usage: str) -> None:
    """AWS's KeySpec x KeyUsage table (operations/keyspecs.py); specs this build cannot serve say so."""
    if usage not in keyspecs.info(spec).usages:
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")  # no period (AWS)
    if spec == "SM2":  # AWS offers SM2 only in its China Regions; elsewhere it answers this (floci's AWS-checked suite)
        raise UnsupportedOperationException("KeySpec SM2 is not supported in this Region")
    if not keyspecs.served(spec):
        reason = "its crypto library lacks it"
        raise UnsupportedOperationException(f"KeySpec {spec} is not supported by openkms ({reason}).")


def new_key_material(spec: str) -> bytes:
    """Fresh material for a key version: what the crypto layer stores for that spec, never returned."""
    if spec == keyspecs.SYMMETRIC_DEFAULT:
        return symmetric.generate_key_material()
    if spec in keyspecs.HMAC_KEY_BYTES:
        return random_bytes(keyspecs.HMAC_KEY_BYTES[spec])
    return keypairs.generate_private_key(spec)


@operation("CreateKey")
def create_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    spec = _requested_spec(params)
    usage = _requested_usage(spec, params)
    origin = params.get("Origin", "AWS_KMS")
    if params.get("CustomKeyStoreId") is not None:
        raise CustomKeyStoreNotFoundException("Custom key stores are not supported by openkms.")
    if params.get("XksKeyId") is not None or origin in ("AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"):
        raise UnsupportedOperationException(f"Origin {origin} is not supported by openkms.")
    external = origin == keystates.EXTERNAL  # no material until ImportKeyMaterial (operations/key_import.py)
    _checked_spec_and_usage(spec, usage)
    if params.get("MultiRegion"):
        raise UnsupportedOperationException("Multi-Region keys are not supported by openkms.")
    tags = validate_new_tags(params.get("Tags", []))
    key_id = ids.new_key_id()
    arn = ids.key_arn(ctx.region, ctx.principal.account_id, key_id)
    with svc.storage.read() as tx:  # before the policy is read: a caller without rights gets no work done
        authorization.authorize_account(tx, ctx)
        if tags:  # tagging on creation also needs kms:TagResource (AWS)
            authorization.authorize_account(tx, ctx, action="kms:TagResource")
    if params.get("Policy") is None:
        policy = default_key_policy(ctx.principal.account_id)
    else:
        policy = checked_key_policy(ctx, params["Policy"], arn, bool(params.get("BypassPolicyLockoutSafetyCheck")))

    version_id = None if external else random_bytes(16).hex()
    key = KeyRecord(
        key_id=key_id,
        account_id=ctx.principal.account_id,
        region=ctx.region,
        arn=arn,
        description=params.get("Description", ""),
        key_usage=usage,
        key_spec=spec,
        origin=origin,
        key_manager="CUSTOMER",
        key_state=keystates.PENDING_IMPORT if external else keystates.ENABLED,
        creation_date=ctx.now,
        multi_region=False,
        policy=policy,
        current_version_id=version_id,
    )
    wrapped = None if version_id is None else svc.materials.wrap_new(key, version_id, new_key_material(spec))
    result = {"KeyMetadata": metadata.key_metadata(key)}
    ctx.audit.add_key(arn, spec)
    ctx.audit.result = result
    with svc.storage.transaction() as tx:
        tx.insert_key(principal_ids.bound_key(tx, key))  # the users its policy names, by unique id
        if version_id is not None and wrapped is not None:
            tx.insert_version(KeyVersionRecord(key_id, version_id, ctx.now, wrapped))
        if tags:
            tx.put_tags(key_id, tags)
    return result


@operation("DescribeKey")
def describe_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=True)
        imported = tx.get_imported_material(key.key_id) if key.origin == keystates.EXTERNAL else None
    return {"KeyMetadata": metadata.key_metadata(key, imported)}


@operation("ListKeys")
def list_keys(svc: Services, ctx: RequestContext, params: Params) -> Result:
    limit: int = params.get("Limit", 100)
    after = paging.decode_marker("keys", params.get("Marker"))
    with svc.storage.read() as tx:
        authorization.authorize_account(tx, ctx)
        found = tx.list_keys(ctx.principal.account_id, ctx.region, after, limit + 1)
    page, page_fields = paging.page_result(found, limit, "keys", lambda k: k.key_id)
    return {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in page], **page_fields}


def _change_key(svc: Services, ctx: RequestContext, key_ref: str, change: Any) -> KeyRecord:
    """Read-modify-write one key in a single transaction; ``change`` returns the new record or None."""
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, key_ref, allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        updated: KeyRecord | None = change(key)
        if updated is not None and updated != key:
            tx.update_key(updated)
            return updated
    return key


def _set_state(svc: Services, ctx: RequestContext, key_ref: str, state: str) -> None:
    """Enable or disable; only an Enabled or Disabled key can switch (AWS's key-state table)."""

    def change(key: KeyRecord) -> KeyRecord:
        if key.key_state not in (keystates.ENABLED, keystates.DISABLED):
            raise KMSInvalidStateException(keystates.state_message(key))
        return replace(key, key_state=state)

    _change_key(svc, ctx, key_ref, change)


@operation("EnableKey")
def enable_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _set_state(svc, ctx, params["KeyId"], keystates.ENABLED)
    return {}


@operation("DisableKey")
def disable_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _set_state(svc, ctx, params["KeyId"], keystates.DISABLED)
    return {}


@operation("ScheduleKeyDeletion")
def schedule_key_deletion(svc: Services, ctx: RequestContext, params: Params) -> Result:
    days: int = params.get("PendingWindowInDays", DEFAULT_PENDING_WINDOW_DAYS)
    if not MIN_PENDING_WINDOW_DAYS <= days <= MAX_PENDING_WINDOW_DAYS:
        bound = "greater" if days < MIN_PENDING_WINDOW_DAYS else "less"
        limit = MIN_PENDING_WINDOW_DAYS if days < MIN_PENDING_WINDOW_DAYS else MAX_PENDING_WINDOW_DAYS
        raise ValidationException(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy "
            f"constraint: Member must have value {bound} than or equal to {limit}"
        )

    def change(key: KeyRecord) -> KeyRecord:
        if key.key_state == keystates.PENDING_DELETION:
            raise KMSInvalidStateException(keystates.state_message(key))
        return replace(
            key,
            key_state=keystates.PENDING_DELETION,
            deletion_date=ctx.now + days * SECONDS_PER_DAY,
            pending_window_days=days,
        )

    key = _change_key(svc, ctx, params["KeyId"], change)
    return {
        "KeyId": key.arn,
        "DeletionDate": key.deletion_date,
        "KeyState": key.key_state,
        "PendingWindowInDays": key.pending_window_days,
    }


@operation("CancelKeyDeletion")
def cancel_key_deletion(svc: Services, ctx: RequestContext, params: Params) -> Result:
    def change(key: KeyRecord) -> KeyRecord:
        if key.key_state != keystates.PENDING_DELETION:
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        return replace(key, key_state=keystates.DISABLED, deletion_date=None, pending_window_days=None)

    key = _change_key(svc, ctx, params["KeyId"], change)
    return {"KeyId": key.arn}


@operation("UpdateKeyDescription")
def update_key_description(svc: Services, ctx: RequestContext, params: Params) -> Result:
    def change(key: KeyRecord) -> KeyRecord:
        keystates.require_not_pending_deletion(key)
        return replace(key, description=params["Description"])

    _change_key(svc, ctx, params["KeyId"], change)
    return {}
