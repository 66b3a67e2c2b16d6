"""AWS's policy evaluation logic, as KMS applies it to one request on one key.

Order (IAM "Policy evaluation logic" and its cross-account page; KMS "Key policies"):

1. An explicit Deny in the key policy or in any identity policy of the caller wins over everything.
2. Same account as the key: allowed if the key policy names the caller directly (no identity policy
   needed), or delegates to the account (``arn:aws:iam::<account>:root``) and an identity policy allows.
3. Another account: the key policy must name the caller or its account, *and* the caller's identity
   policies must allow (the root user of the caller's account has all identity permissions).
4. Otherwise a grant that allows (decided by the caller of :func:`evaluate`) allows.
5. Otherwise implicit deny; the message names the policy type that is missing an allow.

A statement applies when its principal element covers the caller (key policy only), its action and
resource match, and every condition holds. In a key policy, ``"Resource": "*"`` means this key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from openkms.errors import AccessDeniedException
from openkms.policy import patterns
from openkms.policy.conditions import conditions_hold
from openkms.policy.document import Effect, PolicyDocument, Statement
from openkms.policy.principals import PrincipalMatch, allow_match, deny_covers
from openkms.policy.request import AuthorizationRequest


class Decision(Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


class PolicySource(Enum):
    """Which kind of policy decided; the value is AWS's wording in AccessDenied messages."""

    KEY_POLICY = "resource-based policy"
    IDENTITY_POLICY = "identity-based policy"
    GRANT = "grant"


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    """The decision, which policy type decided, and the statements that did (for the audit record)."""

    decision: Decision
    decided_by: PolicySource
    statements: tuple[Statement, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    def denial_message(self, request: AuthorizationRequest) -> str:
        """AWS's AccessDeniedException text for this denial."""
        head = (
            f"User: {request.principal_arn} is not authorized to perform: {request.action} "
            f"on resource: {request.resource_arn}"
        )
        if self.decision is Decision.EXPLICIT_DENY:
            return f"{head} with an explicit deny in a{_an(self.decided_by)} {self.decided_by.value}"
        return f"{head} because no {self.decided_by.value} allows the {request.action} action"


def _an(source: PolicySource) -> str:
    return "n" if source.value[0] in "aeiou" else ""


@lru_cache(maxsize=8192)
def _action_pattern_matches(pattern: str, action: str) -> bool:
    """Pure (actions take no variables), so cached: matching is on every request's hot path."""
    tokens = patterns.tokenize(pattern, {}, variables=False)
    return tokens is not None and patterns.tokens_match(tokens, action.lower())


def action_matches(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(_action_pattern_matches(p, action) for p in statement.actions)
    return not any(_action_pattern_matches(p, action) for p in statement.not_actions or ())


def resource_matches(statement: Statement, request: AuthorizationRequest, variables: bool) -> bool:
    """``"*"`` is the key itself; an unresolvable variable matches nothing, and voids a ``NotResource``."""

    def matches(pattern: str) -> bool | None:
        if pattern == "*":
            return True
        return patterns.wildcard_match(pattern, request.resource_arn, request.context, variables=variables)

    if statement.resources is not None:
        return any(matches(p) is True for p in statement.resources)
    results = [matches(p) for p in statement.not_resources or ()]
    return all(result is False for result in results)


def _applies(statement: Statement, request: AuthorizationRequest, variables: bool) -> bool:
    return (
        action_matches(statement, request.action)
        and resource_matches(statement, request, variables)
        and conditions_hold(
            statement.conditions, request.context, variables=variables, deny=statement.effect is Effect.DENY
        )
    )


def _check_kinds(key_policy: PolicyDocument, identity_policies: Sequence[PolicyDocument]) -> None:
    if key_policy.kind != "key" or any(doc.kind != "identity" for doc in identity_policies):
        raise ValueError("evaluate() takes one key policy and identity policies, parsed with those kinds")


def evaluate(
    key_policy: PolicyDocument,
    identity_policies: Sequence[PolicyDocument],
    request: AuthorizationRequest,
    *,
    grant_allows: bool = False,
) -> AuthorizationResult:
    """Decide ``request`` against the key policy, the caller's identity policies (its own and its groups')
    and ``grant_allows`` (whether a grant on the key allows this request; the caller evaluates grants)."""
    _check_kinds(key_policy, identity_policies)
    key_variables = key_policy.variables
    key_applicable = [s for s in key_policy.statements if _applies(s, request, key_variables)]
    identity_applicable = [
        s for doc in identity_policies for s in doc.statements if _applies(s, request, doc.variables)
    ]

    key_denies = tuple(s for s in key_applicable if s.effect is Effect.DENY and deny_covers(s, request))
    if key_denies:
        return AuthorizationResult(Decision.EXPLICIT_DENY, PolicySource.KEY_POLICY, key_denies)
    identity_denies = tuple(s for s in identity_applicable if s.effect is Effect.DENY)
    if identity_denies:
        return AuthorizationResult(Decision.EXPLICIT_DENY, PolicySource.IDENTITY_POLICY, identity_denies)

    key_allows = [(s, allow_match(s, request)) for s in key_applicable if s.effect is Effect.ALLOW]
    direct = tuple(s for s, match in key_allows if match is PrincipalMatch.DIRECT)
    delegated = tuple(s for s, match in key_allows if match is PrincipalMatch.ACCOUNT)
    identity_allows = tuple(s for s in identity_applicable if s.effect is Effect.ALLOW)
    identity_ok = bool(identity_allows) or request.is_root

    if not request.is_cross_account:
        if direct:
            return AuthorizationResult(Decision.ALLOW, PolicySource.KEY_POLICY, direct)
        if delegated and identity_ok:
            return AuthorizationResult(Decision.ALLOW, PolicySource.IDENTITY_POLICY, delegated + identity_allows)
    elif (direct or delegated) and identity_ok:
        return AuthorizationResult(Decision.ALLOW, PolicySource.KEY_POLICY, direct + delegated + identity_allows)
    if grant_allows:
        return AuthorizationResult(Decision.ALLOW, PolicySource.GRANT)
    if direct or delegated:
        return AuthorizationResult(Decision.IMPLICIT_DENY, PolicySource.IDENTITY_POLICY)
    return AuthorizationResult(Decision.IMPLICIT_DENY, PolicySource.KEY_POLICY)


def authorize(
    key_policy: PolicyDocument,
    identity_policies: Sequence[PolicyDocument],
    request: AuthorizationRequest,
    *,
    grant_allows: bool = False,
) -> AuthorizationResult:
    """:func:`evaluate`, raising ``AccessDeniedException`` (with AWS's message) unless allowed."""
    result = evaluate(key_policy, identity_policies, request, grant_allows=grant_allows)
    if not result.allowed:
        raise AccessDeniedException(result.denial_message(request))
    return result
