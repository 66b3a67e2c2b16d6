"""The audit explorer: who used which key when, newest first, paged (CloudTrail's LookupEvents)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from openkms.console import web
from openkms.console.app import PREFIX, Page
from openkms.server.app import HttpResponse

FILTERS = ("key", "principal", "operation", "outcome", "since", "until", "source_ip")
PAGE_SIZE = 50


async def explore(page: Page) -> HttpResponse:
    filters = {name: page.query.get(name, "").strip() for name in FILTERS}
    problems: list[str] = []
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
                problems.append(f"{name.title()} must be a date and time such as 2026-11-28T10:00 (UTC).")
            else:
                params[member] = parsed
    before = page.query.get("before", "")
    if before.isdigit():
        params["BeforeSeq"] = int(before)
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


def _time(text: str) -> float | None:
    """``datetime-local`` input (``2026-11-28T10:00``) or ISO-8601, UTC unless it names an offset."""
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()
