"""Requests per key and day, and the month's cost estimate, for the console's usage page.

An admin operation (registry.py) named as Cost Explorer's: authorised as ``ce:GetCostAndUsage`` by the
caller's identity policies, recorded in the trail, and confined to the caller's account. The numbers are
those of ``openkms usage`` (openkms/usage_report.py), counted by the roll-up the Services carry.
"""

from __future__ import annotations

import datetime

from openkms import usage_report
from openkms.context import RequestContext
from openkms.errors import ValidationException
from openkms.operations import authorization
from openkms.operations.registry import Params, Result, admin_operation
from openkms.operations.services import Services

EVENT_SOURCE = "ce.amazonaws.com"
ACTION = "ce:GetCostAndUsage"
DEFAULT_DAYS = 30
MAX_DAYS = 366


@admin_operation("GetCostAndUsage", EVENT_SOURCE)
def get_cost_and_usage(svc: Services, ctx: RequestContext, params: Params) -> Result:
    unknown = sorted(set(params) - {"Since", "Days"})
    if unknown:
        raise ValidationException(f"Unknown parameter: {unknown[0]}")
    today = usage_report.utc_date(ctx.now)
    days = params.get("Days")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise ValidationException(f"Days must be a whole number from 1 to {MAX_DAYS}.")
        since = today - datetime.timedelta(days=days - 1)
    else:
        since = _since(params.get("Since"), today)
    with svc.storage.read() as tx:
        authorization.authorize_account(tx, ctx, action=ACTION)
    report = usage_report.build_usage_report(
        svc.storage,
        since=since,
        today=today,
        key_id=None,
        account_id=ctx.principal.account_id,
        regions=[ctx.region],
        prices=usage_report.price_list(),
        roll_up=svc.roll_up_usage,
    )
    return report.as_json()


def _since(value: object, today: datetime.date) -> datetime.date:
    if value is None or value == "":
        return today - datetime.timedelta(days=DEFAULT_DAYS - 1)
    try:
        since = datetime.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        since = None
    if since is None:
        raise ValidationException("Since must be a date such as 2026-11-01.")
    if since > today or (today - since).days >= MAX_DAYS:
        raise ValidationException(f"Since must be within the last {MAX_DAYS} days.")
    return since
