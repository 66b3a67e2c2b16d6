"""The keys page (filter by alias, tag, state and spec) and the create-key form.

The list is what an API client would see: ListKeys, then DescribeKey and ListResourceTags for each key and
ListAliases once, each call authorised and recorded. A page holds at least ``PAGE_MATCHES`` matching keys
when there are that many: ListKeys pages are read until it does, and "Next" continues from ListKeys' marker.
"""

from __future__ import annotations

from typing import Any

from openkms import apimodel
from openkms.console import web
from openkms.console.app import PREFIX, Page
from openkms.console.client import OperationFailed
from openkms.server.app import HTTPResponse

PAGE_MATCHES = 50
LIST_BATCH = 100
KEY_SPECS = tuple(apimodel.shape("KeySpec")["enum"])
KEY_USAGES = tuple(apimodel.shape("KeyUsageType")["enum"])
KEY_STATES = ("Enabled", "Disabled", "PendingDeletion", "PendingImport", "Unavailable")
MAX_TAG_ROWS = 5
MAX_MARKER_CHARS = 1024  # ListKeys' Marker


async def list_keys(page: Page) -> HTTPResponse:
    filters = {name: page.query.get(name, "").strip() for name in ("alias", "tag", "state", "spec")}
    problems = _filter_problems(filters)
    marker = page.query.get("marker") or None
    if marker is not None and len(marker) > MAX_MARKER_CHARS:
        problems.append("The page marker is not one this console made. Start again from the first page.")
    if problems:
        return page.render("keys.html", status=400, keys=[], filters=filters, problems=problems, next_url="",
                           states=KEY_STATES, specs=KEY_SPECS, notice="")  # fmt: skip
    try:
        keys, marker = await _matching_keys(page, filters, marker)
    except OperationFailed as failed:
        return page.render("error.html", status=403 if failed.code == "AccessDeniedException" else 400,
                           error=failed)  # fmt: skip
    next_url = web.with_query(PREFIX + "/keys", {**filters, "marker": marker}) if marker else ""
    return page.render(
        "keys.html",
        keys=keys,
        filters=filters,
        problems=[],
        next_url=next_url,
        states=KEY_STATES,
        specs=KEY_SPECS,
        notice=_notice(page.query.get("done", "")),
    )


def _filter_problems(filters: dict[str, str]) -> list[str]:
    problems = []
    if filters["state"] and filters["state"] not in KEY_STATES:
        problems.append(f"State must be one of {', '.join(KEY_STATES)}.")
    if filters["spec"] and filters["spec"] not in KEY_SPECS:
        problems.append("Spec must be one of the key specs listed.")
    if len(filters["tag"]) > 385 or len(filters["alias"]) > 256:
        problems.append("A filter is too long.")
        filters["tag"], filters["alias"] = filters["tag"][:385], filters["alias"][:256]
    return problems


def _tag_matches(wanted: str, tags: list[dict[str, str]]) -> bool:
    """``key=value`` matches that tag exactly; ``key`` matches any value of that tag key."""
    if not wanted:
        return True
    name, sep, value = wanted.partition("=")
    return any(t["TagKey"] == name.strip() and (not sep or t["TagValue"] == value.strip()) for t in tags)


async def _matching_keys(
    page: Page, filters: dict[str, str], marker: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    aliases_by_key: dict[str, list[str]] = {}
    for alias in await page.client.pages("ListAliases", {"Limit": 100}, "Aliases"):
        if alias.get("TargetKeyId"):
            aliases_by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    found: list[dict[str, Any]] = []
    while len(found) < PAGE_MATCHES:
        listing = await page.client.call("ListKeys", {"Limit": LIST_BATCH, **({"Marker": marker} if marker else {})})
        key_ids = [k["KeyId"] for k in listing.get("Keys", [])]
        alias_text = filters["alias"].lower()
        candidates = [
            k for k in key_ids
            if not alias_text or any(alias_text in a.lower() for a in aliases_by_key.get(k, []))
        ]  # fmt: skip
        described = await page.client.attempt_all([("DescribeKey", {"KeyId": k}) for k in candidates])
        wanted = [
            outcome.result["KeyMetadata"]
            for outcome in described
            if outcome.result is not None
            and (not filters["state"] or outcome.result["KeyMetadata"]["KeyState"] == filters["state"])
            and (not filters["spec"] or outcome.result["KeyMetadata"]["KeySpec"] == filters["spec"])
        ]
        tagged = await page.client.attempt_all([("ListResourceTags", {"KeyId": m["KeyId"]}) for m in wanted])
        for metadata, tags in zip(wanted, tagged, strict=True):
            tag_list = tags.result.get("Tags", []) if tags.result is not None else []
            if _tag_matches(filters["tag"], tag_list):
                found.append({"meta": metadata, "aliases": aliases_by_key.get(metadata["KeyId"], []), "tags": tag_list})
        marker = listing.get("NextMarker") if listing.get("Truncated") else None
        if marker is None:
            break
    found.sort(key=lambda k: k["meta"].get("CreationDate", 0), reverse=True)
    return found, marker


_NOTICES = {"deleted": "Key deletion scheduled."}


def _notice(code: str) -> str:
    return _NOTICES.get(code, "")


# ---- create ------------------------------------------------------------------------------------------------


def _empty_form() -> dict[str, Any]:
    return {
        "spec": "SYMMETRIC_DEFAULT",
        "usage": "ENCRYPT_DECRYPT",
        "description": "",
        "alias": "",
        "tags": [("", "")] * MAX_TAG_ROWS,
    }


async def new_key_form(page: Page) -> HTTPResponse:
    return _render_form(page, _empty_form(), "", 200)


def _render_form(page: Page, values: dict[str, Any], error: str, status: int) -> HTTPResponse:
    return page.render("key_new.html", status=status, values=values, error=error, specs=KEY_SPECS, usages=KEY_USAGES)


async def create_key(page: Page) -> HTTPResponse:
    names = page.form.get("tag_key", [])
    tag_values = page.form.get("tag_value", [])
    rows = [(k.strip(), v.strip()) for k, v in zip(names, tag_values, strict=False)][:MAX_TAG_ROWS]
    values = {
        "spec": page.field("spec"),
        "usage": page.field("usage"),
        "description": page.field("description"),
        "alias": page.field("alias").strip(),
        "tags": rows + [("", "")] * (MAX_TAG_ROWS - len(rows)),
    }
    alias = page.field("alias").strip()
    if alias and not alias.startswith("alias/"):
        alias = "alias/" + alias
    params: dict[str, Any] = {"KeySpec": values["spec"], "KeyUsage": values["usage"]}
    if values["description"]:
        params["Description"] = values["description"]
    tags = [{"TagKey": k, "TagValue": v} for k, v in rows if k]
    if tags:
        params["Tags"] = tags
    if alias:  # refuse a taken or malformed alias before creating a key that would lack it
        taken = await page.client.attempt("DescribeKey", {"KeyId": alias})
        if taken.result is not None:
            return _render_form(page, values, f"The alias {alias} already exists.", 409)
    try:
        created = await page.client.call("CreateKey", params)
    except OperationFailed as failed:
        return _render_form(page, values, f"{failed.code}: {failed.message}", 400)
    key_id = created["KeyMetadata"]["KeyId"]
    if alias:
        try:
            await page.client.call("CreateAlias", {"AliasName": alias, "TargetKeyId": key_id})
        except OperationFailed as failed:  # the key exists: say so where the alias can be added again
            from openkms.console import key_detail

            page.params = {"key_id": key_id}
            message = f"The key was created, but not the alias {alias}: {failed.message}"
            return await key_detail.render_detail(page, errors={"alias": message}, status=400)
    return web.redirect(web.with_query(f"{PREFIX}/keys/{key_id}", {"done": "created"}))
