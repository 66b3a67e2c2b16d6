"""GetKeyPolicy, PutKeyPolicy, ListKeyPolicies: every key has exactly one policy, named ``default``.

A new policy is parsed with the full policy language (MalformedPolicyDocumentException says what is wrong) and,
unless BypassPolicyLockoutSafetyCheck is set, must still let the caller call PutKeyPolicy. It takes effect for
the very next request on every worker and node: policies are read from storage on every request.

The users a policy names are bound to their unique ids when it is stored, and GetKeyPolicy shows a deleted
user's unique id in place of its ARN (operations/principal_ids.py). Putting a policy again, even the same
text, binds its ARNs to the users that exist now.
"""

from __future__ import annotations

from dataclasses import replace

from openkms.context import RequestContext
from openkms.errors import NotFoundException
from openkms.operations import keyrefs, keystates, principal_ids
from openkms.operations.keys import checked_key_policy
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services

POLICY_NAME = "default"


def _checked_name(params: Params) -> str:
    name: str = params.get("PolicyName") or POLICY_NAME
    if name != POLICY_NAME:
        raise NotFoundException(f"The key policy {name} does not exist; the only policy name is {POLICY_NAME}.")
    return name


@operation("GetKeyPolicy")
def get_key_policy(svc: Services, ctx: RequestContext, params: Params) -> Result:
    name = _checked_name(params)
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        policy = principal_ids.shown_policy(tx, key)
    return {"Policy": policy, "PolicyName": name}


@operation("ListKeyPolicies")
def list_key_policies(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.read() as tx:
        keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
    return {"PolicyNames": [POLICY_NAME], "Truncated": False}


@operation("PutKeyPolicy")
def put_key_policy(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _checked_name(params)
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        keystates.require_not_pending_deletion(key)
        policy = checked_key_policy(ctx, params["Policy"], key.arn, bool(params.get("BypassPolicyLockoutSafetyCheck")))
        updated = principal_ids.bound_key(tx, replace(key, policy=policy))
        if updated != key:
            tx.update_key(updated)
    return {}
