"""Key references and their authorisation: resolving the KeyId a request names to a key the caller may use.

:func:`resolve_key` is the only way an operation gets a key, and it returns one only if the caller may
use it (operations/authorization.py), so authorisation cannot be skipped. The key's current version (what new
outputs use) and the DryRun answer (given once every check, authorisation included, has passed) are here too.
"""

from __future__ import annotations

from typing import Any

from openkms import apimodel, ids
from openkms.context import RequestContext
from openkms.errors import (
    AccessDeniedException,
    DryRunOperationException,
    InvalidArnException,
    KMSInvalidStateException,
    NotFoundException,
)
from openkms.operations import authorization, keyspecs
from openkms.operations.keystates import effective_key, require_enabled, state_message
from openkms.operations.metadata import key_material_id
from openkms.storage.ports import Transaction
from openkms.storage.records import KeyRecord, KeyVersionRecord


def resolve_key(
    tx: Transaction,
    ctx: RequestContext,
    key_ref: str,
    *,
    allow_alias: bool,
    action: str | None = None,
) -> KeyRecord:
    """Find the key ``key_ref`` names and check that the caller may perform ``action`` (default
    ``kms:<operation>``) on it, or raise as AWS does.

    A key id or alias name means the caller's account; an ARN names the account (cross-account use needs a key
    policy that allows it) and must name the caller's region.
    """
    key, request_alias = _named_key(tx, ctx, key_ref, allow_alias=allow_alias)
    key = effective_key(tx, key, ctx.now)
    authorization.authorize_key(tx, ctx, key, action, request_alias=request_alias)
    return key


def named_key_id(tx: Transaction, ctx: RequestContext, key_ref: str, *, allow_alias: bool) -> str:
    """The id of the key ``key_ref`` names, found as :func:`resolve_key` finds it (with the same answers when
    there is none, and the record names it), without authorising the caller on it.

    Only for lookups whose result is authorised another way: ListAliases' KeyId filter (the account's identity
    policies allow ListAliases), RetireGrant's KeyId (the grant's own rule), Decrypt's KeyId (compared with the
    key the blob names, which is authorised). It returns an id, never a key record, so nothing can be done
    with the key without resolving it again, authorised.
    """
    key, _ = _named_key(tx, ctx, key_ref, allow_alias=allow_alias)
    return key.key_id


def _named_key(
    tx: Transaction, ctx: RequestContext, key_ref: str, *, allow_alias: bool
) -> tuple[KeyRecord, str | None]:
    """The stored key ``key_ref`` names (not yet authorised), and the alias name the request used, if any."""
    ref = ids.parse_key_reference(key_ref)
    if ref is not None and ref.is_alias and not allow_alias and _refuses_aliases_by_arn(ctx.operation):
        raise InvalidArnException("Key Aliases are not supported for this operation.")
    if ref is None and key_ref.startswith("arn:") and ":key/" in key_ref:
        # A key ARN whose key id is malformed: AWS names the id alone, unquoted (an AWS-checked emulator's suite).
        raise NotFoundException(f"Invalid keyId {key_ref.split(':key/', 1)[1]}")
    if ref is None or (ref.is_alias and not allow_alias):
        raise NotFoundException(f"Invalid keyId '{key_ref}'")  # quoted, as AWS answers
    if ref.region is not None and ref.region != ctx.region:
        raise NotFoundException(f"Invalid arn {ref.region}")
    account = ref.account or ctx.principal.account_id
    request_alias: str | None = None
    if ref.is_alias:
        assert ref.alias_name is not None
        request_alias = ref.alias_name
        alias = tx.get_alias(account, ctx.region, ref.alias_name)
        if alias is None:
            raise NotFoundException(f"Alias {ids.alias_arn(ctx.region, account, ref.alias_name)} is not found.")
        key_id = alias.target_key_id
    else:
        assert ref.key_id is not None
        key_id = ref.key_id
    key = tx.get_key(key_id)
    if key is None or key.account_id != account or key.region != ctx.region:
        raise NotFoundException(f"Key '{ids.key_arn(ctx.region, account, key_id)}' does not exist")
    ctx.audit.add_key(key.arn, key.key_spec)  # denied or not, the record names the key asked for
    return key, request_alias


def _refuses_aliases_by_arn(operation: str) -> bool:
    """AWS answers an alias given to a key-only operation (GetKeyPolicy, DisableKey, CreateGrant, ...) with
    InvalidArnException 'Key Aliases are not supported for this operation.', before looking it up; those are the
    key-only operations whose model lists InvalidArnException (issue 18 sweep)."""
    return "InvalidArnException" in apimodel.declared_errors(operation)


def require_customer_managed(key: KeyRecord, ctx: RequestContext) -> None:
    """Refuse to change an AWS managed key. Its key policy already denies every such action to everyone (so
    authorisation refuses first, with AWS's AccessDeniedException); this is the backstop, in AWS's words."""
    if key.key_manager != "CUSTOMER":
        raise AccessDeniedException(
            f"User: {ctx.principal.arn} is not authorized to perform: kms:{ctx.operation} on resource: {key.arn} "
            f"because no resource-based policy allows the kms:{ctx.operation} action"
        )


def require_key(
    tx: Transaction, ctx: RequestContext, key_ref: str, usage: str, operation: str, action: str | None = None
) -> KeyRecord:
    """The usual preamble of a cryptographic operation: resolve and authorise, the right KeyUsage, Enabled. AWS
    checks the usage before the state (a Disabled HMAC key given to Sign is InvalidKeyUsageException), and the state
    before the key spec and algorithm, which the operation checks next (an AWS-checked emulator's suite, floci's)."""
    key = resolve_key(tx, ctx, key_ref, allow_alias=True, action=action)
    keyspecs.require_usage(key, usage, operation)
    require_enabled(key)
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
