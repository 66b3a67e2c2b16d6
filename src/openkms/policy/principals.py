"""Does a statement's ``Principal`` / ``NotPrincipal`` name the caller, and how?

A key policy names a principal in one of two ways (KMS developer guide, "Key policies"; IAM "AWS JSON
policy elements: Principal"):

- **directly**: ``"*"``, or the caller's exact ARN (case-sensitive). The key policy alone then allows
  (within the key's account);
- **by its account**: ``arn:aws:iam::<account>:root`` (or the bare account id). For an Allow this
  *delegates* to the account: the account's identity policies decide. The root user itself is named
  directly by it. For a Deny it covers every principal of the account.

``NotPrincipal`` follows AWS's documented behaviour: a caller is exempt only if it is named *together with
its account* (a user's ARN alone does not exempt the user, because the request is also made on behalf of
the account); the root user is exempt when its account is listed; ``"*"`` exempts everyone.

A user's ARN names the user that existed when the policy was stored, not whoever has the name later: AWS
binds it to the user's unique id (``AIDA...``), so a user deleted and created again gets nothing the old one
was given. :func:`bind` turns a stored key policy into that form with the ids recorded when it was stored
(a user ARN that named no user matches nobody), and a caller is named by its ARN or by its unique id
(:attr:`AuthorizationRequest.principal_id`). :func:`with_unique_ids` is how GetKeyPolicy shows a policy
whose users were deleted: each such ARN replaced by the unique id it was bound to, as AWS shows it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from enum import Enum
from typing import Any

from openkms import ids
from openkms.policy.document import PolicyDocument, Principals, Statement
from openkms.policy.request import AuthorizationRequest

_USER_ARN_RE = re.compile(r"arn:aws:iam::([0-9]{12}):user/([^*?\s]+)")  # linear: no nested repetition


class PrincipalMatch(Enum):
    NONE = "none"
    DIRECT = "direct"
    ACCOUNT = "account"  # delegated to the caller's account: identity policies must also allow


def user_of(principal: str | None) -> tuple[str, str] | None:
    """(account, user name) when ``principal`` is an IAM user's ARN, else None."""
    match = _USER_ARN_RE.fullmatch(principal) if principal is not None else None
    return None if match is None else (match[1], match[2])


def named_aws(document: PolicyDocument) -> set[str]:
    """Every ``AWS`` value of the document's ``Principal`` and ``NotPrincipal`` elements (ARNs, unique ids)."""
    return {
        value
        for statement in document.statements
        for principals in (statement.principal, statement.not_principal)
        if principals is not None
        for value in principals.aws
    }


def bind(document: PolicyDocument, principal_ids: Mapping[str, str]) -> PolicyDocument:
    """``document`` with each user ARN replaced by the unique id it was bound to; a user ARN without one
    (no such user existed when the policy was stored) is dropped, so it names nobody."""

    def bound(principals: Principals | None) -> Principals | None:
        if principals is None or not any(user_of(value) for value in principals.aws):
            return principals
        values = (principal_ids.get(value, "") if user_of(value) else value for value in principals.aws)
        return replace(principals, aws=tuple(value for value in values if value))

    statements = tuple(
        replace(s, principal=bound(s.principal), not_principal=bound(s.not_principal)) for s in document.statements
    )
    return replace(document, statements=statements)


def with_unique_ids(text: str, unique_ids: Mapping[str, str]) -> str:
    """The policy text with the ``AWS`` principals in ``unique_ids`` (ARN -> unique id) replaced by their
    ids; the rest as parsed (the text is re-serialised, as AWS's is)."""
    policy: dict[str, Any] = json.loads(text)
    statements = policy.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        for element in ("Principal", "NotPrincipal"):
            principals = statement.get(element) if isinstance(statement, dict) else None
            if isinstance(principals, dict) and "AWS" in principals:
                value = principals["AWS"]
                if isinstance(value, str):
                    principals["AWS"] = unique_ids.get(value, value)
                else:
                    principals["AWS"] = [unique_ids.get(item, item) for item in value]
    return json.dumps(policy)


def grant_names(principal: str | None, bound_id: str | None, caller_arn: str, caller_id: str) -> bool:
    """Whether a grant's grantee or retiring principal, with its binding (``GrantRecord``), names the caller:
    same ARN, and for a user the same unique id (``""``: the ARN named no user when the grant was made)."""
    if principal != caller_arn:
        return False
    return bound_id is None or (bound_id != "" and bound_id == caller_id)


def _names(principals: Principals, request: AuthorizationRequest) -> bool:
    """Whether ``principals`` lists the caller itself: its ARN, or its unique id (a bound policy)."""
    return request.principal_arn in principals.aws or (
        bool(request.principal_id) and request.principal_id in principals.aws
    )


def _exempt(principals: Principals, request: AuthorizationRequest) -> bool:
    if principals.everyone:
        return True
    account_listed = ids.root_arn(request.principal_account) in principals.aws
    if request.is_root:
        return account_listed
    return account_listed and _names(principals, request)


def allow_match(statement: Statement, request: AuthorizationRequest) -> PrincipalMatch:
    """How an Allow statement's principal element covers the caller."""
    if statement.not_principal is not None:
        return PrincipalMatch.NONE if _exempt(statement.not_principal, request) else PrincipalMatch.DIRECT
    principals = statement.principal
    if principals is None:
        return PrincipalMatch.NONE
    if principals.everyone or _names(principals, request):
        return PrincipalMatch.DIRECT
    if ids.root_arn(request.principal_account) in principals.aws:
        return PrincipalMatch.DIRECT if request.is_root else PrincipalMatch.ACCOUNT
    return PrincipalMatch.NONE


def deny_covers(statement: Statement, request: AuthorizationRequest) -> bool:
    """Whether a Deny statement's principal element covers the caller (an account covers all its principals)."""
    if statement.not_principal is not None:
        return not _exempt(statement.not_principal, request)
    principals = statement.principal
    if principals is None:
        return False
    return (
        principals.everyone or _names(principals, request) or ids.root_arn(request.principal_account) in principals.aws
    )
