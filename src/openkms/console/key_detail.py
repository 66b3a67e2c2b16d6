"""One key: metadata, aliases, tags, policy editor, grants, rotation, and the actions on it.

Each action is one form posting to ``/console/keys/<id>/<action>`` and one API operation (two for the
policy: none is made when the text is not JSON, the editor says where). Success redirects back with a
notice (Post/Redirect/Get); a refused action re-renders the page with the error next to its form.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.console import web
from openkms.console.app import PREFIX, Page
from openkms.console.client import OperationFailed
from openkms.server.app import HTTPResponse

DEFAULT_WAITING_DAYS = 30
POLICY_NAME = "default"
MAX_DAYS = 999_999_999  # nine digits: the operation refuses what is out of its range, with its own message

_NOTICES = {
    "created": "Key created.",
    "enabled": "Key enabled.",
    "disabled": "Key disabled: every cryptographic operation with it is refused until it is enabled again.",
    "deletion-scheduled": "Key deletion scheduled.",
    "deletion-cancelled": "Key deletion cancelled. The key is disabled; enable it to use it again.",
    "policy-saved": "Key policy saved.",
    "rotation-enabled": "Automatic rotation enabled.",
    "rotation-disabled": "Automatic rotation disabled.",
    "rotated": "The key was rotated: new encryption uses new key material; older material still decrypts.",
    "tagged": "Tag saved.",
    "untagged": "Tag removed.",
    "alias-created": "Alias created.",
    "alias-deleted": "Alias deleted.",
    "described": "Description saved.",
    "grant-revoked": "Grant revoked.",
}


async def show(page: Page) -> HTTPResponse:
    return await render_detail(page, notice=_NOTICES.get(page.query.get("done", ""), ""))


async def render_detail(
    page: Page,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    policy_text: str | None = None,
    status: int = 200,
) -> HTTPResponse:
    key_id = page.params["key_id"]
    described = await page.client.attempt("DescribeKey", {"KeyId": key_id})
    if described.error is not None:
        not_found = described.error.code == "NotFoundException"
        return page.render("error.html", status=404 if not_found else 403, error=described.error)
    meta = described.value()["KeyMetadata"]
    aliases, tags, policy, grants, rotation, rotations = await page.client.attempt_all(
        [
            ("ListAliases", {"KeyId": key_id, "Limit": 100}),
            ("ListResourceTags", {"KeyId": key_id, "Limit": 50}),
            ("GetKeyPolicy", {"KeyId": key_id, "PolicyName": POLICY_NAME}),
            ("ListGrants", {"KeyId": key_id, "Limit": 100}),
            ("GetKeyRotationStatus", {"KeyId": key_id}),
            ("ListKeyRotations", {"KeyId": key_id, "Limit": 100}),
        ]
    )
    stored_policy = policy.result.get("Policy", "") if policy.result is not None else ""
    return page.render(
        "key_detail.html",
        status=status,
        meta=meta,
        aliases=aliases,
        tags=tags,
        policy=policy,
        policy_text=policy_text if policy_text is not None else _pretty(stored_policy),
        grants=grants,
        rotation=rotation,
        rotations=rotations,
        notice=notice,
        errors=errors or {},
        waiting_days=DEFAULT_WAITING_DAYS,
        customer_managed=meta.get("KeyManager") == "CUSTOMER",
    )


def _pretty(policy: str) -> str:
    try:
        return json.dumps(json.loads(policy), indent=2)
    except ValueError:
        return policy


# ---- actions -----------------------------------------------------------------------------------------------

Params = Callable[[Page, str], dict[str, Any]]  # the operation's request, from the form and the key id


class _Invalid(Exception):
    """A form value the console can refuse itself, as the API would (a number that is not one)."""


def _whole_number(text: str, name: str) -> int:
    """ASCII digits only: ``int()`` would take an Arabic-Indic seven as 7 and ``'1_0'`` as 10 (web.whole_number)."""
    value = web.whole_number(text, MAX_DAYS)
    if value is None:
        raise _Invalid(f"{name} must be a whole number (the digits 0-9 only).")
    return value


def _alias_name(page: Page) -> str:
    name = page.field("alias").strip()
    return name if not name or name.startswith("alias/") else "alias/" + name


def _rotation(page: Page, key_id: str) -> tuple[str, dict[str, Any], str]:
    """EnableKeyRotation (with the period, if given) or DisableKeyRotation, as the checkbox says."""
    if page.field("enabled") != "on":
        return "DisableKeyRotation", {"KeyId": key_id}, "rotation-disabled"
    params: dict[str, Any] = {"KeyId": key_id}
    if page.field("period"):
        params["RotationPeriodInDays"] = _whole_number(page.field("period"), "RotationPeriodInDays")
    return "EnableKeyRotation", params, "rotation-enabled"


@dataclass(frozen=True, slots=True)
class Action:
    operation: str
    params: Params
    done: str  # the notice shown on success (_NOTICES)
    section: str  # the form its errors show beside


def _key(page: Page, key_id: str) -> dict[str, Any]:
    return {"KeyId": key_id}


def _tag(page: Page, key_id: str) -> dict[str, Any]:
    tag = {"TagKey": page.field("tag_key").strip(), "TagValue": page.field("tag_value").strip()}
    return {"KeyId": key_id, "Tags": [tag]}


def _waiting(page: Page, key_id: str) -> dict[str, Any]:
    return {"KeyId": key_id, "PendingWindowInDays": _whole_number(page.field("days"), "PendingWindowInDays")}


ACTIONS: dict[str, Action] = {
    "enable": Action("EnableKey", _key, "enabled", "state"),
    "disable": Action("DisableKey", _key, "disabled", "state"),
    "schedule-deletion": Action("ScheduleKeyDeletion", _waiting, "deletion-scheduled", "deletion"),
    "cancel-deletion": Action("CancelKeyDeletion", _key, "deletion-cancelled", "deletion"),
    "rotate-now": Action("RotateKeyOnDemand", _key, "rotated", "rotation"),
    "tag": Action("TagResource", _tag, "tagged", "tags"),
    "untag": Action("UntagResource", lambda p, k: {"KeyId": k, "TagKeys": [p.field("tag_key")]}, "untagged", "tags"),
    "create-alias": Action("CreateAlias", lambda p, k: {"AliasName": _alias_name(p), "TargetKeyId": k},
                           "alias-created", "alias"),
    "delete-alias": Action("DeleteAlias", lambda p, k: {"AliasName": p.field("alias")}, "alias-deleted", "alias"),
    "describe": Action("UpdateKeyDescription", lambda p, k: {"KeyId": k, "Description": p.field("description")},
                       "described", "description"),
    "revoke-grant": Action("RevokeGrant", lambda p, k: {"KeyId": k, "GrantId": p.field("grant_id")},
                           "grant-revoked", "grants"),
}  # fmt: skip


async def act(page: Page) -> HTTPResponse:
    key_id, name = page.params["key_id"], page.params["action"]
    if name == "policy":
        return await _save_policy(page, key_id)
    if name != "rotation" and name not in ACTIONS:
        return page.render("not_found.html", status=404, path=page.request.path)
    section = "rotation" if name == "rotation" else ACTIONS[name].section
    try:
        if name == "rotation":
            operation, params, done = _rotation(page, key_id)
        else:
            action = ACTIONS[name]
            operation, params, done = action.operation, action.params(page, key_id), action.done
        await page.client.call(operation, params)
    except (OperationFailed, _Invalid) as failed:
        message = f"{failed.code}: {failed.message}" if isinstance(failed, OperationFailed) else str(failed)
        return await render_detail(page, errors={section: message}, status=_status(failed))
    return web.redirect(web.with_query(f"{PREFIX}/keys/{key_id}", {"done": done}))


def _status(failed: Exception) -> int:
    if isinstance(failed, OperationFailed):
        return {"AccessDeniedException": 403, "NotFoundException": 404}.get(failed.code, 400)
    return 400


async def _save_policy(page: Page, key_id: str) -> HTTPResponse:
    """PutKeyPolicy with the editor's text. Text that is not JSON is pointed at (line and column) as well as
    refused by the operation, so the refusal is authorised and recorded like any other."""
    text = page.field("policy")
    hint = ""
    try:
        json.loads(text)
    except ValueError as exc:
        line, column = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        hint = f" Line {line}, column {column}: {getattr(exc, 'msg', 'invalid JSON')}." if line else ""
    try:
        await page.client.call("PutKeyPolicy", {"KeyId": key_id, "PolicyName": POLICY_NAME, "Policy": text})
    except OperationFailed as failed:
        error = f"{failed.code}: {failed.message}{hint}"
        return await render_detail(page, errors={"policy": error}, policy_text=text, status=_status(failed))
    return web.redirect(web.with_query(f"{PREFIX}/keys/{key_id}", {"done": "policy-saved"}))
