"""The policy lockout safety check of ``CreateKey`` and ``PutKeyPolicy``.

AWS refuses a key policy that would not let the principal making the request call ``PutKeyPolicy`` later
(unless ``BypassPolicyLockoutSafetyCheck`` is set), answering ``MalformedPolicyDocumentException`` with
:data:`LOCKOUT_MESSAGE`. The check looks at the key policy alone: the caller counts as allowed if a
statement allows it ``kms:PutKeyPolicy`` directly or through its account (identity policies are not
consulted: delegation to the account is enough, as in AWS).

The future request's context is unknown, so an Allow with conditions counts as allowing (it may hold),
and only an unconditional Deny counts as denying. Without ``key_arn`` (``CreateKey``: the ARN does not
exist yet) any resource is assumed to match.
"""

from __future__ import annotations

from openkms import ids
from openkms.errors import MalformedPolicyDocumentException
from openkms.policy.document import Effect, PolicyDocument, Statement
from openkms.policy.evaluate import action_matches, resource_matches
from openkms.policy.principals import PrincipalMatch, allow_match, deny_covers
from openkms.policy.request import AuthorizationRequest, principal_type_of

LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."
_ACTION = "kms:PutKeyPolicy"


def _resource_may_match(statement: Statement, request: AuthorizationRequest, known: bool, variables: bool) -> bool:
    if known:
        return resource_matches(statement, request, variables)
    return statement.resources is not None or "*" not in (statement.not_resources or ())


def would_lock_out(
    document: PolicyDocument, caller_arn: str, caller_account: str, *, key_arn: str | None = None
) -> bool:
    """True when ``document`` would not allow ``caller_arn`` to call ``kms:PutKeyPolicy`` on the key."""
    request = AuthorizationRequest(
        principal_arn=caller_arn,
        principal_account=caller_account,
        principal_type=principal_type_of(caller_arn),
        action=_ACTION,
        resource_arn=key_arn or ids.key_arn("*", caller_account, "*"),
        resource_account=caller_account,
    )
    relevant = [
        s
        for s in document.statements
        if action_matches(s, _ACTION) and _resource_may_match(s, request, key_arn is not None, document.variables)
    ]
    if any(s.effect is Effect.DENY and not s.conditions and deny_covers(s, request) for s in relevant):
        return True
    return not any(s.effect is Effect.ALLOW and allow_match(s, request) is not PrincipalMatch.NONE for s in relevant)


def ensure_no_lockout(
    document: PolicyDocument, caller_arn: str, caller_account: str, *, key_arn: str | None = None
) -> None:
    """Raise ``MalformedPolicyDocumentException`` with AWS's message when :func:`would_lock_out`."""
    if would_lock_out(document, caller_arn, caller_account, key_arn=key_arn):
        raise MalformedPolicyDocumentException(LOCKOUT_MESSAGE)
