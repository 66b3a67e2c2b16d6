"""Binding the users a key policy or a grant names to their unique ids, and showing them back (issue 15).

AWS binds a user ARN in a key policy's ``Principal`` (CreateKey, PutKeyPolicy) or in a grant's grantee or
retiring principal (CreateGrant) to that user's unique id (``AIDA...``) when it is stored. A user deleted and
created again under the same name is a new principal: the old statements and grants do not apply to it. Once
the user is gone, GetKeyPolicy and ListGrants show its unique id where its ARN was ("If the principal is
deleted ... the key policy shows the principal's unique ID"), and a policy that still holds such an orphaned
id is refused when put back (MalformedPolicyDocumentException, invalid principals).

The binding is stored with the key (``KeyRecord.policy_principal_ids``) and the grant (``GrantRecord``'s
``*_principal_id``), read in the same row as today, and compared with the caller's unique id, which its
authentication already read: no request pays an extra query for it. Account principals (``...:root``, a bare
account id) and service principals are not users and stay as they are.
"""

from __future__ import annotations

import json
from dataclasses import replace

from openkms.errors import MalformedPolicyDocumentException
from openkms.operations.authorization import PARSED
from openkms.policy import principals
from openkms.storage.ports import Transaction
from openkms.storage.records import GrantRecord, KeyRecord

_INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


def bound_key(tx: Transaction, key: KeyRecord) -> KeyRecord:
    """``key`` with its policy's user ARNs bound to the users that exist now; a unique id that no user has
    any more (what GetKeyPolicy shows for a deleted user) is refused, as AWS refuses it."""
    named = principals.named_aws(PARSED.get(key.policy, "key"))
    unique_ids = {value for value in named if not value.startswith("arn:")}  # the parser took only ARNs and ids
    if unique_ids and tx.existing_user_ids(unique_ids) != unique_ids:
        raise MalformedPolicyDocumentException(_INVALID_PRINCIPALS)
    bound: dict[str, str] = {}
    for value in sorted(named):
        user_ref = principals.user_of(value)
        user = tx.get_user(*user_ref) if user_ref is not None else None
        if user is not None:
            bound[value] = user.user_id
    return replace(key, policy_principal_ids=json.dumps(bound, sort_keys=True, separators=(",", ":")))


def shown_policy(tx: Transaction, key: KeyRecord) -> str:
    """The key policy as GetKeyPolicy returns it: as written, but with the unique id in place of the ARN of
    every bound user that no longer exists."""
    bound: dict[str, str] = json.loads(key.policy_principal_ids or "{}")
    if not bound:
        return key.policy
    alive = tx.existing_user_ids(set(bound.values()))
    gone = {arn: user_id for arn, user_id in bound.items() if user_id not in alive}
    return principals.with_unique_ids(key.policy, gone) if gone else key.policy


def principal_id(tx: Transaction, principal: str | None) -> str | None:
    """The binding of a grant's principal: the unique id of the user it names now, ``""`` for a user ARN that
    names no user (it will match nobody, not a user created later), None for a principal that is no user."""
    user_ref = principals.user_of(principal)
    if user_ref is None:
        return None
    user = tx.get_user(*user_ref)
    return "" if user is None else user.user_id


def shown_grants(tx: Transaction, grants: list[GrantRecord]) -> list[GrantRecord]:
    """``grants`` as ListGrants shows them: a bound user principal that no longer exists by its unique id."""
    bound = {g.grantee_principal_id for g in grants} | {g.retiring_principal_id for g in grants}
    wanted = {user_id for user_id in bound if user_id}
    if not wanted:
        return grants
    alive = tx.existing_user_ids(wanted)

    def shown(principal: str | None, user_id: str | None) -> str | None:
        return user_id if user_id and user_id not in alive else principal

    return [
        replace(
            g,
            grantee_principal=shown(g.grantee_principal, g.grantee_principal_id) or g.grantee_principal,
            retiring_principal=shown(g.retiring_principal, g.retiring_principal_id),
        )
        for g in grants
    ]
