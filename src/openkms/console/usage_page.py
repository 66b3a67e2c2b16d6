"""The usage page: requests per key per day as a chart, and the month's cost estimate."""

from __future__ import annotations

from openkms.console import chart
from openkms.console.app import Page
from openkms.server.app import HTTPResponse

WINDOWS = (7, 30, 90)


async def show(page: Page) -> HTTPResponse:
    days = int(page.query.get("days", "30")) if page.query.get("days", "") in {str(w) for w in WINDOWS} else 30
    outcome = await page.client.attempt("GetCostAndUsage", {"Days": days})
    if outcome.error is not None:
        return page.render("error.html", status=403, error=outcome.error)
    report = outcome.value()
    aliases = await page.client.attempt("ListAliases", {"Limit": 100})
    labels: dict[str, str] = {}
    for alias in (aliases.result or {}).get("Aliases", []):
        if alias.get("TargetKeyId") and not alias["AliasName"].startswith("alias/aws/"):
            labels.setdefault(alias["TargetKeyId"], alias["AliasName"])
    window = report["Window"]
    drawn = chart.build(report["Usage"], window["Since"], window["Until"], labels)
    per_key: dict[str, int] = {}
    for row in report["Usage"]:
        per_key[row["KeyId"]] = per_key.get(row["KeyId"], 0) + row["Requests"]
    ranked = sorted(per_key.items(), key=lambda item: -item[1])
    return page.render(
        "usage.html",
        report=report,
        chart=drawn,
        per_key=ranked,
        labels=labels,
        days=days,
        windows=WINDOWS,
    )
