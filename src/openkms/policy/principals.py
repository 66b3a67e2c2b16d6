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
"""

from __future__ import annotations

from enum import Enum

from openkms import ids
from openkms.policy.document import Principals, Statement
from openkms.policy.request import AuthorizationRequest


class PrincipalMatch(Enum):
    NONE = "none"
    DIRECT = "direct"
    ACCOUNT = "account"  # delegated to the caller's account: identity policies must also allow


def _exempt(principals: Principals, request: AuthorizationRequest) -> bool:
    if principals.everyone:
        return True
    account_listed = ids.root_arn(request.principal_account) in principals.aws
    if request.is_root:
        return account_listed
    return account_listed and request.principal_arn in principals.aws


def allow_match(statement: Statement, request: AuthorizationRequest) -> PrincipalMatch:
    """How an Allow statement's principal element covers the caller."""
    if statement.not_principal is not None:
        return PrincipalMatch.NONE if _exempt(statement.not_principal, request) else PrincipalMatch.DIRECT
    principals = statement.principal
    if principals is None:
        return PrincipalMatch.NONE
    if principals.everyone or request.principal_arn in principals.aws:
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
        principals.everyone
        or request.principal_arn in principals.aws
        or ids.root_arn(request.principal_account) in principals.aws
    )
