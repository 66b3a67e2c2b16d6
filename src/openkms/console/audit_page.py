"""The audit explorer: who used which key when, newest first, paged (CloudTrail's LookupEvents)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from openkms.console import web
from openkms.console.app import PREFIX, Page
from openkms.server.app import HTTPResponse

FILTERS = ("key", "principal", "operation", "outcome", "since", "until", "source_ip")
PAGE_SIZE = 50
# The longest text each filter can usefully hold (an ARN, an error code, an IPv6 address, an ISO time); a
# longer one is refused before anything runs, and is not echoed back into the form.
MAX_CHARS = {"key": 2048, "principal": 2048, "operation": 128, "outcome": 128, "since": 64, "until": 64,
             "source_ip": 45}  # fmt: skip
MAX_SEQ = 2**63 - 1  # LookupEvents' BeforeSeq


async def explore(page: Page) -> HTTPResponse:
    filters = {name: page.query.get(name, "").strip() for name in FILTERS}
    problems: list[str] = []
    for name in FILTERS:
        if len(filters[name]) > MAX_CHARS[name]:
            problems.append(f"{_label(name)} is too long (at most {MAX_CHARS[name]} characters).")
            filters[name] = ""
    params: dict[str, Any] = {"MaxResults": PAGE_SIZE}
    for name, member in (
        ("key", "KeyId"),
        ("principal", "Principal"),
        ("operation", "Operation"),
        ("outcome", "Outcome"),
        ("source_ip", "SourceIp"),
    ):
        if filters[name]:
            params[member] = filters[name]
    for name, member in (("since", "StartTime"), ("until", "EndTime")):
        if filters[name]:
            parsed = _time(filters[name])
            if parsed is None:
                problems.append(f"{_label(name)} must be a date and time such as 2026-11-28T10:00 (UTC).")
            else:
                params[member] = parsed
    before = page.query.get("before", "")
    if before:
        seq = web.whole_number(before, MAX_SEQ)
        if seq is None or seq < 1:
            problems.append(f"Before must be a record number: digits only, from 1 to {MAX_SEQ}.")
        else:
            params["BeforeSeq"] = seq
    events: list[dict[str, Any]] = []
    next_url = ""
    status = 400 if problems else 200
    if not problems:
        outcome = await page.client.attempt("LookupEvents", params)
        if outcome.error is not None:
            problems.append(f"{outcome.error.code}: {outcome.error.message}")
            status = 403 if outcome.error.code == "AccessDeniedException" else 400
        else:
            found = outcome.value()
            events = [{**e, "Event": json.loads(e["CloudTrailEvent"])} for e in found.get("Events", [])]
            if found.get("NextBeforeSeq"):
                next_url = web.with_query(PREFIX + "/audit", {**filters, "before": str(found["NextBeforeSeq"])})
    return page.render(
        "audit.html",
        status=status,
        filters=filters,
        events=events,
        problems=problems,
        next_url=next_url,
        first_url=web.with_query(PREFIX + "/audit", filters) if before else "",
    )


def _label(name: str) -> str:
    return {"source_ip": "Source IP", "since": "From", "until": "Until"}.get(name, name.title())


def _time(text: str) -> float | None:
    """``datetime-local`` input (``2026-11-28T10:00``) or ISO-8601, UTC unless it names an offset."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()
