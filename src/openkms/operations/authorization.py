"""Authorising one request: the key policy, the caller's identity policies and the key's grants.

Everything is read from storage inside the request's own transaction (policies, group memberships, principal
tags, grants): no cache may outlive a revocation (issue 4). Only the *parsing* of policy texts is cached, keyed
by the text itself, so a changed policy is a different cache entry.

The condition keys of a request come from three places: the caller (``aws:*`` globals and principal tags), the
key (``kms:KeySpec``, ``aws:ResourceTag/*``, ...) and the request's parameters (``kms:EncryptionContext:*``,
``kms:SigningAlgorithm``, ...). The expensive ones (resource tags, aliases) are read only when some policy that
applies to the request mentions them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from openkms import ids, opfacts
from openkms.context import IAM_USER, RequestContext
from openkms.errors import AccessDeniedException
from openkms.lru import LRUCache
from openkms.policy import evaluate as policy_evaluate
from openkms.policy import principals
from openkms.policy.document import PolicyDocument, PolicyKind, parse_policy
from openkms.policy.request import AuthorizationRequest, ContextValue, folded_pairs, principal_type_of
from openkms.storage.ports import Transaction
from openkms.storage.records import GrantRecord, KeyRecord, PrincipalAuthorization

_ALGORITHM_KEYS = {
    "EncryptionAlgorithm": "kms:EncryptionAlgorithm",
    "SigningAlgorithm": "kms:SigningAlgorithm",
    "MacAlgorithm": "kms:MacAlgorithm",
    "KeyAgreementAlgorithm": "kms:KeyAgreementAlgorithm",
    "MessageType": "kms:MessageType",
    "KeyPairSpec": "kms:DataKeyPairSpec",
    "GranteePrincipal": "kms:GranteePrincipal",
    "RetiringPrincipal": "kms:RetiringPrincipal",
    "PendingWindowInDays": "kms:ScheduleKeyDeletionPendingWindowInDays",
    "RotationPeriodInDays": "kms:RotationPeriodInDays",
    "BypassPolicyLockoutSafetyCheck": "kms:BypassPolicyLockoutSafetyCheck",
    # GetParametersForImport and ImportKeyMaterial; present only when the request has the parameter (AWS's Null
    # example), kms:ValidTo in Unix time (a number as text, for the Numeric and Date operators).
    "WrappingAlgorithm": "kms:WrappingAlgorithm",
    "WrappingKeySpec": "kms:WrappingKeySpec",
    "ExpirationModel": "kms:ExpirationModel",
    "ValidTo": "kms:ValidTo",
}
# Grant operations that take an encryption context (the only ones a grant constraint can restrict).
CONTEXT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    }
)


@lru_cache(maxsize=2048)
def _parse_stored(text: str, kind: PolicyKind) -> PolicyDocument:
    """Parsing is pure and a document immutable, so cached by (text, kind): bounded, safe across threads."""
    return parse_policy(text, kind, max_size=1 << 20)  # stored policies were checked when written


class _ParsedPolicies:
    """``PARSED.get(text, kind)``: the parsed document of a stored policy text."""

    get = staticmethod(_parse_stored)


PARSED = _ParsedPolicies()


@lru_cache(maxsize=256)
def _account_delegation(account_id: str) -> str:
    """A key policy that hands every decision to identity policies: how actions that name no key are judged
    (KMS account-level actions, and the other services' actions the console calls)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": ids.root_arn(account_id)}, "Action": "*", "Resource": "*"}
            ],
        }
    )


def _caller(tx: Transaction, ctx: RequestContext) -> PrincipalAuthorization:
    if ctx.principal.kind != IAM_USER:  # the CLI's operator acts on identities only, never through key policies
        raise AccessDeniedException(f"User: {ctx.principal.arn} is not authorized to perform: kms:{ctx.operation}")
    found = tx.principal_authorization(ctx.principal.account_id, ctx.principal.user_name)
    if found is None:  # the user was deleted after its access key was read: nothing is allowed
        raise AccessDeniedException(
            f"User: {ctx.principal.arn} is not authorized to perform: kms:{ctx.operation} because it no longer exists"
        )
    return found


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


_KEY_NAME_RE = re.compile(r"(?:aws|kms):[a-z0-9_:/.+=@-]+")


class _Same:
    """A document as a dictionary key by identity: hashing a parsed policy deeply would cost more than the
    evaluation it saves. The memo below holds the document, so its id cannot be reused while it is a key."""

    __slots__ = ("document",)

    def __init__(self, document: PolicyDocument) -> None:
        self.document = document

    def __hash__(self) -> int:
        return id(self.document)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.document is self.document


_DECISIONS: LRUCache[tuple[Any, ...], policy_evaluate.AuthorizationResult] = LRUCache(4096)


def _evaluate(
    key_policy: PolicyDocument, identity: list[PolicyDocument], request: AuthorizationRequest
) -> policy_evaluate.AuthorizationResult:
    """:func:`policy_evaluate.evaluate`, memoised on everything it reads: the documents just read from storage
    (so a changed policy is a different key, and no decision outlives a revocation), the request and its whole
    condition context. Callers that repeat a request (same caller, key, context, within the same second for
    time conditions) skip the evaluation."""
    context = tuple(  # the type too: True == 1 in Python, not in a condition
        sorted(
            (name, type(value).__name__, tuple(value) if isinstance(value, list) else value)
            for name, value in request.context.items()
        )
    )
    memo_key = (
        _Same(key_policy),
        tuple(_Same(document) for document in identity),
        request.principal_arn,
        request.principal_id,
        request.principal_account,
        request.principal_type,
        request.action,
        request.resource_arn,
        request.resource_account,
        context,
    )
    return _DECISIONS.get_or_compute(memo_key, policy_evaluate.evaluate, key_policy, identity, request)


# Bounded small: keys hold policy texts (up to 32 KB each).
@lru_cache(maxsize=1024)
def _about(text: str, kind: PolicyKind, action: str, principal_ids: str | None = None) -> PolicyDocument:
    """The policy cut down to the statements whose Action covers ``action``: the others cannot apply to this
    request, so evaluating the cut-down document decides the same, without matching them on every request.
    A key policy's user ARNs are bound to the unique ids stored with it (``principal_ids``, JSON; see
    operations/principal_ids.py), so that they name the users that existed when it was stored."""
    document = PARSED.get(text, kind)
    if kind == "key":
        document = principals.bind(document, json.loads(principal_ids or "{}"))
    return replace(
        document, statements=tuple(s for s in document.statements if policy_evaluate.action_matches(s, action))
    )


@lru_cache(maxsize=1024)
def _mentioned(key_policy: str | None, identity_policies: tuple[str, ...], action: str) -> frozenset[str]:
    """The condition keys that statements about ``action`` mention (lower-cased, in conditions or as policy
    variables), plus each family name (``aws:resourcetag``, ``kms:encryptioncontext``). A key no such
    statement mentions cannot change the decision, so only these go into the request context: most policies
    mention none, and a statement about other actions does not make every request read the key's tags."""
    documents = [PARSED.get(text, "identity") for text in identity_policies]
    if key_policy is not None:
        documents.append(PARSED.get(key_policy, "key"))
    relevant = [s for doc in documents for s in doc.statements if policy_evaluate.action_matches(s, action)]
    names: set[str] = set()
    for name in _KEY_NAME_RE.findall("\n".join(map(repr, relevant)).lower()):
        names.add(name)
        names.add(name.split("/", 1)[0])
        names.add(":".join(name.split(":", 2)[:2]))
    return frozenset(names)


def _global_keys(
    ctx: RequestContext, caller: PrincipalAuthorization, mentioned: frozenset[str]
) -> dict[str, ContextValue]:
    keys: dict[str, ContextValue] = {
        "aws:SourceIp": ctx.source_ip or None,
        "aws:UserAgent": ctx.user_agent,
        "aws:CurrentTime": _iso(ctx.now) if "aws:currenttime" in mentioned else None,
        "aws:EpochTime": str(int(ctx.now)),
        "aws:SecureTransport": ctx.secure_transport,
        "aws:RequestedRegion": ctx.region,
        "aws:userid": caller.user.user_id,
        "aws:PrincipalIsAWSService": False,
        "kms:GrantIsForAWSResource": False,
    }
    keys.update(folded_pairs("aws:PrincipalTag/", caller.tags.items()))
    return keys


def _parameter_keys(ctx: RequestContext, action: str) -> dict[str, ContextValue]:
    params = ctx.params
    keys: dict[str, ContextValue] = {}
    # Where the action finds the encryption context its conditions test (ReEncrypt's two: openkms/opfacts.py).
    context: Mapping[str, str] = params.get(opfacts.of(ctx.operation).context_parameter(action)) or {}
    keys.update(folded_pairs("kms:EncryptionContext:", context.items()))
    if context:
        keys["kms:EncryptionContextKeys"] = sorted(context)
    for parameter, key in _ALGORITHM_KEYS.items():
        if parameter in params:
            value = params[parameter]
            keys[key] = value if isinstance(value, bool | str) else str(value)
    if "Operations" in params:
        keys["kms:GrantOperations"] = list(params["Operations"])
    constraints = params.get("Constraints")
    if constraints:
        keys["kms:GrantConstraintType"] = sorted(constraints)
    tags = params.get("Tags")
    if tags:
        keys.update(folded_pairs("aws:RequestTag/", ((tag["TagKey"], tag["TagValue"]) for tag in tags)))
        keys["aws:TagKeys"] = [tag["TagKey"] for tag in tags]
    elif "TagKeys" in params:
        keys["aws:TagKeys"] = list(params["TagKeys"])
    return keys


def _key_keys(
    tx: Transaction, key: KeyRecord, mentioned: frozenset[str], request_alias: str | None
) -> dict[str, ContextValue]:
    keys: dict[str, ContextValue] = {
        "kms:KeySpec": key.key_spec,
        "kms:CustomerMasterKeySpec": key.key_spec,
        "kms:KeyUsage": key.key_usage,
        "kms:KeyOrigin": key.origin,
        "kms:KeyManager": key.key_manager,
        "kms:MultiRegion": key.multi_region,
    }
    if request_alias is not None:
        keys["kms:RequestAlias"] = request_alias
    if "aws:resourcetag" in mentioned:
        tags = tx.list_tags(key.key_id, None, 1000)
        keys.update(folded_pairs("aws:ResourceTag/", ((tag.tag_key, tag.tag_value) for tag in tags)))
    if "kms:resourcealiases" in mentioned:
        aliases = tx.list_aliases(key.account_id, key.region, key.key_id, None, 1000)
        keys["kms:ResourceAliases"] = [alias.alias_name for alias in aliases]
    return keys


def _grant_allows(
    tx: Transaction, ctx: RequestContext, key: KeyRecord, action: str, request: AuthorizationRequest
) -> bool:
    operation = action.removeprefix("kms:")
    for grant in tx.grants_for(key.key_id, ctx.principal.arn):
        named = principals.grant_names(
            grant.grantee_principal, grant.grantee_principal_id, request.principal_arn, request.principal_id
        )
        if named and grant_covers(grant, operation, ctx):
            return True
    return False


def grant_covers(grant: GrantRecord, operation: str, ctx: RequestContext) -> bool:
    """Whether ``grant`` allows ``operation`` for this request: listed, and its constraints hold."""
    if operation not in grant.operations:
        return False
    constraints: dict[str, Any] = json.loads(grant.constraints) if grant.constraints is not None else {}
    if operation == "CreateGrant":
        # A grantee may pass on no more than it holds (AWS: a subset of operations, constraints as strict).
        wanted = set(ctx.params.get("Operations", ()))
        if not wanted <= set(grant.operations) or not _as_strict(ctx.params.get("Constraints") or {}, constraints):
            return False
    if not constraints:
        return True
    if "SourceArn" in constraints and operation != "RetireGrant":
        return False  # no request here is made on behalf of an AWS resource, so aws:SourceArn never matches
    if operation not in CONTEXT_OPERATIONS:
        return True  # AWS: context constraints do not apply to operations without an encryption context
    action = f"kms:{operation}"
    # In a grant constraint the context *keys* are case-insensitive and the values case-sensitive (AWS).
    context = _folded(ctx.params.get(opfacts.of(ctx.operation).context_parameter(action)) or {})
    equals = constraints.get("EncryptionContextEquals")
    if equals is not None and (context is None or context != _folded(equals)):
        return False
    subset = constraints.get("EncryptionContextSubset")
    if subset is None:
        return True
    wanted_pairs = _folded(subset)
    return context is not None and wanted_pairs is not None and wanted_pairs.items() <= context.items()


def _folded(context: Mapping[str, str]) -> dict[str, str] | None:
    """An encryption context or constraint with its keys lower-cased, as grant constraints compare them; None
    when two keys differ only in case (AWS: "do not use" them), which then satisfies no constraint at all
    instead of whichever spelling came last."""
    folded = {name.lower(): value for name, value in context.items()}
    return folded if len(folded) == len(context) else None


def _as_strict(child: Mapping[str, Any], parent: Mapping[str, Any]) -> bool:
    """Whether a grant with ``child``'s constraints allows no request that ``parent``'s would refuse (AWS: a grant
    made under a grant's CreateGrant has "an equally strict or stricter encryption context constraint").

    Parent EncryptionContextEquals E: the child has EncryptionContextEquals E (keys case-insensitive).
    Parent EncryptionContextSubset S: the child has EncryptionContextSubset or EncryptionContextEquals holding
    every pair of S. A parent's SourceArn is kept the same. A parent without constraints allows any child."""
    if "SourceArn" in parent and child.get("SourceArn") != parent["SourceArn"]:
        return False
    child_equals = _folded(child["EncryptionContextEquals"]) if "EncryptionContextEquals" in child else None
    child_subset = _folded(child["EncryptionContextSubset"]) if "EncryptionContextSubset" in child else None
    if "EncryptionContextEquals" in parent:
        equals = _folded(parent["EncryptionContextEquals"])
        return equals is not None and child_equals == equals
    if "EncryptionContextSubset" in parent:
        subset = _folded(parent["EncryptionContextSubset"])
        if subset is None:
            return False
        return any(held is not None and subset.items() <= held.items() for held in (child_equals, child_subset))
    return True


def authorize_key(
    tx: Transaction,
    ctx: RequestContext,
    key: KeyRecord,
    action: str | None = None,
    *,
    request_alias: str | None = None,
) -> None:
    """Allow ``action`` (default ``kms:<operation>``) on ``key``, or raise AWS's AccessDeniedException."""
    action = action or f"kms:{ctx.operation}"
    caller = _caller(tx, ctx)
    mentioned = _mentioned(key.policy, caller.policies, action)
    context: dict[str, ContextValue] = {}
    if mentioned:  # the default key policy and AdministratorAccess mention no condition key at all
        context = {
            **_global_keys(ctx, caller, mentioned),
            **_key_keys(tx, key, mentioned, request_alias),
            **_parameter_keys(ctx, action),
        }
    _decide(tx, ctx, caller, key.policy, action, key.arn, key.account_id, _only(context, mentioned), key)


def authorize_account(tx: Transaction, ctx: RequestContext, resource_arn: str = "*", action: str | None = None) -> None:
    """Allow an action that names no key (CreateKey, ListKeys, ListAliases, GenerateRandom): identity policies
    alone decide, as at AWS."""
    action = action or f"kms:{ctx.operation}"
    caller = _caller(tx, ctx)
    mentioned = _mentioned(None, caller.policies, action)
    context: dict[str, ContextValue] = {}
    if mentioned:
        context = _only({**_global_keys(ctx, caller, mentioned), **_parameter_keys(ctx, action)}, mentioned)
    account = ctx.principal.account_id
    _decide(tx, ctx, caller, _account_delegation(account), action, resource_arn, account, context, None)


_FAMILIES = ("aws:principaltag", "aws:resourcetag", "aws:requesttag", "kms:encryptioncontext")


_FAMILY_PREFIXES = tuple(family + separator for family in _FAMILIES for separator in "/:")


def _family(name: str) -> str | None:
    """The family of a key with a caller-chosen suffix (a tag key may hold characters the scan above stops at)."""
    if not name.startswith(_FAMILY_PREFIXES):
        return None
    return next(family for family in _FAMILIES if name.startswith(family))


def _only(context: Mapping[str, ContextValue], mentioned: frozenset[str]) -> dict[str, ContextValue]:
    """The keys some policy mentions, lower-cased. Condition key names are case-insensitive; tags and context
    pairs whose keys differ only in case were already folded into one ``Conflicting`` key (policy/request.py)."""
    result: dict[str, ContextValue] = {}
    families = not mentioned.isdisjoint(_FAMILIES)
    for name, value in context.items():
        lowered = name.lower()
        if value is not None and (lowered in mentioned or (families and _family(lowered) in mentioned)):
            result.setdefault(lowered, value)
    return result


def _decide(
    tx: Transaction,
    ctx: RequestContext,
    caller: PrincipalAuthorization,
    key_policy_text: str,
    action: str,
    resource_arn: str,
    resource_account: str,
    context: dict[str, Any],
    key: KeyRecord | None,
) -> None:
    request = AuthorizationRequest(
        principal_arn=ctx.principal.arn,
        principal_account=ctx.principal.account_id,
        principal_type=principal_type_of(ctx.principal.arn),
        action=action,
        resource_arn=resource_arn,
        resource_account=resource_account,
        context=context,
        principal_id=caller.user.user_id,
    )
    key_policy = _about(key_policy_text, "key", action, key.policy_principal_ids if key is not None else None)
    identity = [_about(text, "identity", action) for text in caller.policies]
    result = _evaluate(key_policy, identity, request)
    if result.decision is policy_evaluate.Decision.IMPLICIT_DENY and key is not None:
        if _grant_allows(tx, ctx, key, action, request):
            result = policy_evaluate.evaluate(key_policy, identity, request, grant_allows=True)
    if not result.allowed:
        raise AccessDeniedException(result.denial_message(request))
