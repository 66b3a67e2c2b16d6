"""CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant: per-key delegations.

A grant lets its grantee principal call the listed operations on one key, optionally only with a matching
encryption context. Grants are read on every request (operations/authorization.py), so a grant works the
moment CreateGrant answers and stops the moment RetireGrant or RevokeGrant answers, on every worker and
node: grant tokens, which AWS needs to bridge its eventual consistency, are accepted but never needed.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from openkms import ids
from openkms.context import RequestContext
from openkms.errors import (
    AccessDeniedException,
    InvalidGrantTokenException,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.operations import authorization, keyrefs, keyspecs, keystates, paging, principal_ids
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.policy import principals
from openkms.storage.ports import Transaction
from openkms.storage.records import GrantRecord, KeyRecord

MAX_GRANTS_PER_KEY = 50_000
_ALWAYS = frozenset({"CreateGrant", "RetireGrant", "DescribeKey"})
_BY_USAGE: dict[str, frozenset[str]] = {
    keyspecs.ENCRYPT_DECRYPT: frozenset({"Decrypt", "Encrypt", "ReEncryptFrom", "ReEncryptTo"}),
    keyspecs.SIGN_VERIFY: frozenset({"Sign", "Verify", "GetPublicKey"}),
    keyspecs.GENERATE_VERIFY_MAC: frozenset({"GenerateMac", "VerifyMac"}),
    keyspecs.KEY_AGREEMENT: frozenset({"DeriveSharedSecret", "GetPublicKey"}),
    keyspecs.ENCAPSULATE_DECAPSULATE: frozenset({"Encapsulate", "Decapsulate", "GetPublicKey"}),
}
_SYMMETRIC_ONLY = frozenset(
    {"GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}
)
_PRINCIPAL_RE = re.compile(r"arn:aws:(iam|sts)::[0-9]{12}:[\w+=,.@:/-]+|[0-9]{12}|\*")


def _allowed_operations(key: KeyRecord) -> frozenset[str]:
    allowed = _ALWAYS | _BY_USAGE.get(key.key_usage, frozenset())
    if key.key_spec == keyspecs.SYMMETRIC_DEFAULT:
        allowed |= _SYMMETRIC_ONLY
    elif key.key_usage == keyspecs.ENCRYPT_DECRYPT:
        allowed |= {"GetPublicKey"}
    return allowed


def _checked_principal(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not _PRINCIPAL_RE.fullmatch(value):
        raise ValidationException(f"{name} {value} is not a valid principal: use an IAM or STS ARN.")
    return ids.root_arn(value) if value.isdigit() else value


def _checked_constraints(params: Params) -> str | None:
    """Stored as given; encryption-context constraints simply do not apply to operations without a context."""
    constraints: Mapping[str, Any] | None = params.get("Constraints")
    if not constraints:
        return None
    if "EncryptionContextEquals" in constraints and "EncryptionContextSubset" in constraints:
        raise ValidationException("A grant can have EncryptionContextEquals or EncryptionContextSubset, not both.")
    return json.dumps(dict(constraints), sort_keys=True)


def grant_entry(grant: GrantRecord, key_arn: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "KeyId": key_arn,
        "GrantId": grant.grant_id,
        "CreationDate": grant.creation_date,
        "GranteePrincipal": grant.grantee_principal,
        "IssuingAccount": ids.root_arn(grant.account_id),
        "Operations": list(grant.operations),
    }
    if grant.name is not None:
        entry["Name"] = grant.name
    if grant.retiring_principal is not None:
        entry["RetiringPrincipal"] = grant.retiring_principal
    if grant.constraints is not None:
        entry["Constraints"] = json.loads(grant.constraints)
    return entry


def _same_grant(grant: GrantRecord, candidate: GrantRecord) -> bool:
    fields = ("grantee_principal", "retiring_principal", "constraints", "grantee_principal_id", "retiring_principal_id")
    same_fields = all(getattr(grant, f) == getattr(candidate, f) for f in fields)
    return same_fields and sorted(grant.operations) == sorted(candidate.operations)


@operation("CreateGrant")
def create_grant(svc: Services, ctx: RequestContext, params: Params) -> Result:
    operations: list[str] = list(dict.fromkeys(params["Operations"]))
    if not operations:
        raise ValidationException("A grant must allow at least one operation.")
    grantee = _checked_principal(params.get("GranteePrincipal"), "GranteePrincipal")
    if grantee is None:
        grantee = params.get("GranteeServicePrincipal")
    if grantee is None:
        raise ValidationException("GranteePrincipal is required.")
    retiring = _checked_principal(params.get("RetiringPrincipal"), "RetiringPrincipal") or params.get(
        "RetiringServicePrincipal"
    )
    constraints = _checked_constraints(params)
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        keystates.require_not_pending_deletion(key)
        wrong = [op for op in operations if op not in _allowed_operations(key)]
        if wrong:
            raise ValidationException(
                f"Grant operations {', '.join(wrong)} are not valid for a {key.key_spec} {key.key_usage} key."
            )
        keyrefs.check_dry_run(params)
        candidate = GrantRecord(
            key_id=key.key_id,
            grant_id=secrets.token_hex(32),
            account_id=key.account_id,
            name=params.get("Name"),
            grantee_principal=grantee,
            retiring_principal=retiring,
            operations=tuple(operations),
            constraints=constraints,
            issuing_principal=ctx.principal.arn,
            creation_date=ctx.now,
            grant_token=secrets.token_urlsafe(48),
            grantee_principal_id=principal_ids.principal_id(tx, grantee),  # a user by its unique id
            retiring_principal_id=principal_ids.principal_id(tx, retiring),
        )
        if candidate.name is not None:
            for existing in tx.find_grant_by_name(key.key_id, candidate.name):
                if _same_grant(existing, candidate):  # Name makes CreateGrant idempotent (AWS)
                    ctx.audit.result = {"GrantId": existing.grant_id}  # the token is the grantee's, not the log's
                    return {"GrantToken": existing.grant_token, "GrantId": existing.grant_id}
        if tx.count_grants(key.key_id) >= MAX_GRANTS_PER_KEY:
            raise LimitExceededException(f"A KMS key can have at most {MAX_GRANTS_PER_KEY} grants.")
        ctx.audit.result = {"GrantId": candidate.grant_id}
        tx.insert_grant(candidate)
    return {"GrantToken": candidate.grant_token, "GrantId": candidate.grant_id}


def _account_of(principal: str) -> str | None:
    """The account of an IAM or STS principal ARN, or None for anything else (a service principal, ``*``)."""
    if not _PRINCIPAL_RE.fullmatch(principal) or not principal.startswith("arn:"):
        return None
    return principal.split(":", 5)[4]


def _page_limit(params: Params) -> int:
    return min(int(params.get("Limit", 50)), 100)


@operation("ListGrants")
def list_grants(svc: Services, ctx: RequestContext, params: Params) -> Result:
    limit = _page_limit(params)
    after = paging.decode_marker("grants", params.get("Marker"))
    grantee = params.get("GranteePrincipal") or params.get("GranteeServicePrincipal")
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        found = tx.list_grants(key.key_id, after, limit + 1, grant_id=params.get("GrantId"), grantee_principal=grantee)
        found = principal_ids.shown_grants(tx, found)  # a deleted user by its unique id, as AWS shows it
    page, page_fields = paging.page_result(found, limit, "grants", lambda g: g.grant_id)
    return {"Grants": [grant_entry(g, key.arn) for g in page], **page_fields}


@operation("ListRetirableGrants")
def list_retirable_grants(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """AWS: the retiring principal must be in the caller's account, and is the resource authorised; the grants
    listed may be on any account's keys. A service principal never calls here, so none may be named."""
    retiring = params.get("RetiringPrincipal") or params.get("RetiringServicePrincipal")
    if retiring is None:
        raise ValidationException("RetiringPrincipal is required.")
    retiring = ids.root_arn(retiring) if retiring.isdigit() else retiring
    limit = _page_limit(params)
    after = paging.decode_marker("retirable", params.get("Marker"))
    entries: list[dict[str, Any]] = []
    with svc.storage.read() as tx:
        if _account_of(retiring) != ctx.principal.account_id:
            raise AccessDeniedException(
                f"User: {ctx.principal.arn} is not authorized to perform: kms:ListRetirableGrants on resource: "
                f"{retiring} because the retiring principal is not in the caller's account"
            )
        authorization.authorize_account(tx, ctx, retiring)
        found = tx.list_retirable_grants(retiring, after, limit + 1)
        page, page_fields = paging.page_result(found, limit, "retirable", lambda g: g.grant_id)
        for grant in principal_ids.shown_grants(tx, page):  # a deleted user by its unique id, as ListGrants
            key = tx.get_key(grant.key_id)
            if key is not None:
                entries.append(grant_entry(grant, key.arn))
    return {"Grants": entries, **page_fields}


def _grant_to_retire(tx: Transaction, ctx: RequestContext, params: Params) -> tuple[KeyRecord, GrantRecord]:
    token, key_ref, grant_id = params.get("GrantToken"), params.get("KeyId"), params.get("GrantId")
    if token is not None:
        grant = tx.get_grant_by_token(token)
        if grant is None:
            raise InvalidGrantTokenException("The grant token is invalid or its grant no longer exists.")
    elif key_ref is not None and grant_id is not None:
        grant = tx.get_grant(keyrefs.named_key_id(tx, ctx, key_ref, allow_alias=False), grant_id)
        if grant is None:
            raise NotFoundException(f"Grant ID {grant_id} not found")
    else:
        raise ValidationException("Specify either GrantToken, or both KeyId and GrantId.")
    key = tx.get_key(grant.key_id)
    if key is None:
        raise NotFoundException(f"Grant ID {grant.grant_id} not found")
    return key, grant


@operation("RetireGrant")
def retire_grant(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """AWS's rule: the retiring principal may retire a grant, and so may its grantee if the grant lists
    RetireGrant; besides them, the key's account, and the principals it delegates kms:RetireGrant to through its
    policies (the key policy and IAM, evaluated as for any key operation), may too (issue 18 item 5; developer
    guide, "Retiring and revoking grants")."""
    with svc.storage.transaction() as tx:
        key, grant = _grant_to_retire(tx, ctx, params)
        caller, caller_id = ctx.principal.arn, ctx.principal.user_id
        may = principals.grant_names(grant.retiring_principal, grant.retiring_principal_id, caller, caller_id) or (
            principals.grant_names(grant.grantee_principal, grant.grantee_principal_id, caller, caller_id)
            and "RetireGrant" in grant.operations
        )
        if not may and ctx.principal.account_id == key.account_id:
            authorization.authorize_key(tx, ctx, key, "kms:RetireGrant")  # AWS's AccessDeniedException if not
            may = True
        if not may:
            raise AccessDeniedException(
                f"User: {caller} is not authorized to perform: kms:RetireGrant on resource: {key.arn} "
                "because it is neither the grant's retiring principal nor a grantee allowed to retire it"
            )
        keyrefs.check_dry_run(params)
        tx.delete_grant(key.key_id, grant.grant_id)
    return {}


@operation("RevokeGrant")
def revoke_grant(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        if tx.get_grant(key.key_id, params["GrantId"]) is None:
            raise NotFoundException(f"Grant ID {params['GrantId']} not found")
        keyrefs.check_dry_run(params)
        tx.delete_grant(key.key_id, params["GrantId"])
    return {}
