"""Identity changes as operations of IAM's API (``iam.amazonaws.com``): what ``openkms iam`` runs, through the
same runner, validation, authorisation and audit record as every call.

Admin operations (registry.py), not reachable over the KMS wire. Parameters are named as CloudTrail records
IAM's (``userName``, ``policyDocument``, ``tags: [{"key", "value"}]``), and recorded as given: none is secret.

Only the account's operator may run them: the principal :func:`operator` makes, the account's ``Root`` as
operated by an operating-system user at the command line, which proved it holds the root key (cli/iam.py).
Anyone else, an IAM user signed in to the console with ``"Action": "*"`` say, is refused with IAM's
AccessDenied wording: no identity policy grants an IAM action here. Every change acts in the caller's own
account, so Root of one account cannot touch another's identities.

Each change takes one write transaction (a function of openkms.identity), and its record joins it
(audit/scope.py). What IAM's record answers (the new user's unique id, the access key's id but never its
secret) is read inside that transaction by ``ctx.audit.respond``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from openkms import identity, ids
from openkms.context import ROOT, Principal, RequestContext
from openkms.errors import (
    AccessDeniedException,
    AlreadyExistsException,
    KMSError,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.eventnames import IAM_EVENT_NAMES
from openkms.operations.registry import Params, Result, admin_operation
from openkms.operations.services import Services
from openkms.seal.root_key import seal_kind
from openkms.storage.ports import Transaction
from openkms.storage.records import GroupRecord, UserRecord

EVENT_SOURCE = "iam.amazonaws.com"
REGION = "us-east-1"  # IAM is global: CloudTrail records its events in us-east-1

Change = Callable[[Services, RequestContext, Params], Result]
_CHANGES: dict[str, Change] = {}


def operator(account_id: str, os_user: str) -> Principal:
    """The account's root, operated by ``os_user`` (recorded as ``userName``): the one principal these
    operations accept. It has no access key and no policies, and no KMS operation accepts it."""
    return Principal(account_id, ids.root_arn(account_id), os_user, "", user_id=account_id, kind=ROOT)


def _change(name: str, *required: str, optional: tuple[str, ...] = ()) -> Callable[[Change], Change]:
    """Register ``name``: authorise, refuse unknown or missing parameters, and turn identity's refusals into
    AWS errors, around the change itself."""
    known = frozenset(required) | frozenset(optional)

    def register(change: Change) -> Change:
        def run(svc: Services, ctx: RequestContext, params: Params) -> Result:
            _authorize(ctx, params)
            unknown = sorted(set(params) - known)
            if unknown:
                raise ValidationException(f"Unknown parameter: {unknown[0]}")
            for member in required:
                if member not in params:
                    raise ValidationException(f"Missing required parameter: {member}")
            try:
                return change(svc, ctx, params)
            except identity.IdentityError as exc:
                raise _refusal(str(exc)) from None

        _CHANGES[name] = run
        admin_operation(name, EVENT_SOURCE)(run)
        return change

    return register


def _authorize(ctx: RequestContext, params: Params) -> None:
    principal = ctx.principal
    if principal.kind == ROOT and principal.arn == ids.root_arn(principal.account_id):
        return
    account = principal.account_id
    resource = ids.root_arn(account)
    for member, arn_of in (("userName", ids.user_arn), ("groupName", identity.group_arn)):
        name = params.get(member)
        if isinstance(name, str):
            try:
                identity.validate_user_name(name)  # only a well-formed name is quoted back (groups' rule too)
            except identity.IdentityError:
                break
            resource = arn_of(account, name)
            break
    action = f"iam:{ctx.operation}"
    raise AccessDeniedException(
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


# What identity's refusals mean, by the words IAM's errors use (checked in order; else a refused value).
_REFUSALS: tuple[tuple[Callable[[str], bool], type[KMSError]], ...] = (
    (lambda text: "already exists" in text, AlreadyExistsException),
    (lambda text: text.startswith("no ") or " is not in group " in text, NotFoundException),
    (lambda text: "; the limit is " in text, LimitExceededException),
)


def _refusal(message: str) -> KMSError:
    for matches, error in _REFUSALS:
        if matches(message):
            return error(message)
    return ValidationException(message)


def _text(params: Params, name: str) -> str:
    value = params[name]
    if not isinstance(value, str):
        raise ValidationException(f"{name} must be a string.")
    return value


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


# ---- accounts and users ------------------------------------------------------------------------------------


@_change("CreateAccount", optional=("accountId",))
def create_account(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """Create the caller's own account (the operator names it; ``accountId`` if given must be that one)."""
    account = ctx.principal.account_id
    if "accountId" in params and _text(params, "accountId") != account:
        raise ValidationException("accountId must be the account of the caller.")
    ctx.audit.result = {"accountId": account}
    identity.ensure_account(svc.storage, account, svc.clock)
    return {"AccountId": account}


def _shown(kind: str, name: str, unique_id: str, arn: str, created_at: float) -> dict[str, Any]:
    """A user or group as IAM's record shows it (``{kind}Name``, ``{kind}Id``, ...)."""
    return {"path": "/", f"{kind}Name": name, f"{kind}Id": unique_id, "arn": arn, "createDate": _iso(created_at)}


def _answered(shown: dict[str, Any]) -> dict[str, Any]:
    """The same, as IAM's API answers it (upper camel member names)."""
    return {name[:1].upper() + name[1:]: value for name, value in shown.items()}


def _user(user: UserRecord) -> dict[str, Any]:
    return _shown("user", user.user_name, user.user_id, user.arn, user.created_at)


def _group(group: GroupRecord) -> dict[str, Any]:
    return _shown("group", group.group_name, group.group_id, group.arn, group.created_at)


@_change("CreateUser", "userName")
def create_user(svc: Services, ctx: RequestContext, params: Params) -> Result:
    account, name = ctx.principal.account_id, _text(params, "userName")

    def respond(tx: Transaction) -> dict[str, Any] | None:
        user = tx.get_user(account, name)  # as stored: its unique id is made inside the change
        return None if user is None else {"user": _user(user)}

    ctx.audit.respond = respond
    return {"User": _answered(_user(identity.create_user(svc.storage, account, name, svc.clock)))}


# ---- access keys -------------------------------------------------------------------------------------------


@_change("CreateAccessKey", "userName")
def create_access_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    """A new key pair; the secret is in the result only (for the caller to show once), never in the record."""
    account, user = ctx.principal.account_id, _text(params, "userName")
    if seal_kind(svc.storage) is None:  # no root key exists yet: the secret could not be wrapped under it
        raise ValidationException("this database is not initialised: run `openkms init` or `openkms serve --dev`")
    key_id = identity._new_access_key_id()  # chosen here so that the record can name it

    def respond(tx: Transaction) -> dict[str, Any] | None:
        key = tx.get_access_key(key_id)
        if key is None:
            return None
        shown = {"accessKeyId": key.access_key_id, "status": key.status, "userName": key.user_name}
        return {"accessKey": {**shown, "createDate": _iso(key.created_at)}}

    ctx.audit.respond = respond
    new = identity.create_access_key(
        svc.storage, svc.keyring.root_key(), account, user, svc.clock, access_key_id=key_id
    )
    return {"AccessKey": {"UserName": new.user_name, "AccessKeyId": new.access_key_id, "Status": identity.ACTIVE,
                          "SecretAccessKey": new.secret_access_key}}  # fmt: skip


def _own_access_key(svc: Services, ctx: RequestContext, params: Params) -> str:
    """``accessKeyId``, if it belongs to the caller's account (else as if it did not exist)."""
    key_id = _text(params, "accessKeyId")
    with svc.storage.read() as tx:
        key = tx.get_access_key(key_id)
    if key is None or key.account_id != ctx.principal.account_id:
        raise NotFoundException(f"no access key {key_id}")
    return key_id


@_change("UpdateAccessKey", "accessKeyId", "status")
def update_access_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    identity.set_access_key_status(svc.storage, _own_access_key(svc, ctx, params), _text(params, "status"))
    return {}


@_change("DeleteAccessKey", "accessKeyId")
def delete_access_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    identity.delete_access_key(svc.storage, _own_access_key(svc, ctx, params))
    return {}


# ---- groups ------------------------------------------------------------------------------------------------


@_change("CreateGroup", "groupName")
def create_group(svc: Services, ctx: RequestContext, params: Params) -> Result:
    account, name = ctx.principal.account_id, _text(params, "groupName")

    def respond(tx: Transaction) -> dict[str, Any] | None:
        group = tx.get_group(account, name)
        return None if group is None else {"group": _group(group)}

    ctx.audit.respond = respond
    return {"Group": _answered(_group(identity.create_group(svc.storage, account, name, svc.clock)))}


# ---- tags of users -----------------------------------------------------------------------------------------


def _tag(item: Any) -> tuple[str, str]:
    if isinstance(item, Mapping) and set(item) <= {"key", "value"}:
        key, value = item.get("key"), item.get("value", "")
        if isinstance(key, str) and isinstance(value, str):
            return key, value
    raise ValidationException('tags must be a list of {"key": ..., "value": ...} objects.')


def _tags(value: Any) -> dict[str, str]:
    if not isinstance(value, list):
        raise ValidationException('tags must be a list of {"key": ..., "value": ...} objects.')
    pairs = [_tag(item) for item in value]
    if len(dict(pairs)) != len(pairs):
        raise ValidationException("a tag key is given more than once")
    return dict(pairs)


@_change("TagUser", "userName", "tags")
def tag_user(svc: Services, ctx: RequestContext, params: Params) -> Result:
    tags = _tags(params["tags"])
    identity.tag_user(svc.storage, ctx.principal.account_id, _text(params, "userName"), tags)
    return {}


@_change("UntagUser", "userName", "tagKeys")
def untag_user(svc: Services, ctx: RequestContext, params: Params) -> Result:
    keys = params["tagKeys"]
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ValidationException("tagKeys must be a list of strings.")
    identity.untag_user(svc.storage, ctx.principal.account_id, _text(params, "userName"), keys)
    return {}


# ---- the changes that take names and answer nothing: identity's function, on the caller's account -----------

_PLAIN: dict[str, tuple[Callable[..., object], tuple[str, ...]]] = {
    "DeleteUser": (identity.delete_user, ("userName",)),
    "PutUserPolicy": (identity.put_user_policy, ("userName", "policyName", "policyDocument")),
    "DeleteUserPolicy": (identity.delete_user_policy, ("userName", "policyName")),
    "DeleteGroup": (identity.delete_group, ("groupName",)),
    "AddUserToGroup": (identity.add_user_to_group, ("userName", "groupName")),
    "RemoveUserFromGroup": (identity.remove_user_from_group, ("userName", "groupName")),
    "PutGroupPolicy": (identity.put_group_policy, ("groupName", "policyName", "policyDocument")),
    "DeleteGroupPolicy": (identity.delete_group_policy, ("groupName", "policyName")),
}


def _plain(function: Callable[..., object], members: tuple[str, ...]) -> Change:
    def change(svc: Services, ctx: RequestContext, params: Params) -> Result:
        function(svc.storage, ctx.principal.account_id, *(_text(params, member) for member in members))
        return {}

    return change


for _name, (_function, _members) in _PLAIN.items():
    _change(_name, *_members)(_plain(_function, _members))


if frozenset(_CHANGES) != IAM_EVENT_NAMES:  # the trail's list of IAM names and this module agree
    raise RuntimeError(f"IAM operations differ from eventnames: {sorted(frozenset(_CHANGES) ^ IAM_EVENT_NAMES)}")
