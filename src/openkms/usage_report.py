"""The usage report: requests per key and UTC day by pricing family, and what the same use would cost at AWS.

Shared by ``openkms usage`` and the web console, so both show the same numbers; no argument parsing or
printing here. The counts come from ``key_usage_daily`` (requests per key, UTC day and family, counted from
the audit trail; the families are those AWS prices apart: audit/events.py ``usage_family``). The estimate
prices a month of them with a price list (default: AWS KMS's public list prices): each customer-managed key
that is not pending deletion costs a key-month, plus a key-month for each of its first rotations, and requests
cost per 10,000 by family, after the monthly free tier of each account. docs/audit.md ("Operating the trail")
names the source of the default prices and the date they were read.

A module of its own, beside the layers rather than inside one: it is pricing, not an API operation, and it reads
only storage. Counting the trail is the audit layer's (audit/usage.py ``roll_up``), so callers pass it in: the
CLI its own import, the GetCostAndUsage operation the one its Services carry (operations never import audit).
"""

from __future__ import annotations

import datetime
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openkms.settings import DEFAULT_REGION
from openkms.storage.audit import AuditFilter, UsageRow
from openkms.storage.ports import Storage, iterate_all_keys
from openkms.storage.records import KeyRecord

FAMILIES = ("symmetric", "rsa_2048", "asymmetric", "generate_data_key_pair")
FAMILY_COLUMNS = {
    "symmetric": "Symmetric",
    "rsa_2048": "RSA2048",
    "asymmetric": "Asymmetric",
    "generate_data_key_pair": "DataKeyPair",
}
DAYS_PER_MONTH = 30
PENDING_DELETION = "PendingDeletion"  # the KeyRecord.key_state of a key scheduled for deletion (no key-month)

# AWS KMS list prices, us-east-1, from https://aws.amazon.com/kms/pricing/ (read 2026-11-28; docs/audit.md):
# $1/month per key, $1/month more for each newly generated backing key (rotation; AWS announced in April 2024
# that rotations after the second are no longer charged, which billed_rotations = 2 encodes: the page read
# did not restate that cap). Per 10,000 requests: $0.03 symmetric, $0.03 involving RSA 2048 keys, $0.15
# other asymmetric, $0.10 ECC GenerateDataKeyPair ($12.00 for RSA pairs: the family does not tell the two
# apart, so the default takes the ECC price). 20,000 free requests per month, symmetric only (requests on
# asymmetric keys and GenerateDataKeyPair are outside the free tier).
DEFAULT_PRICES: dict[str, Any] = {
    "source": "AWS KMS list prices, us-east-1, https://aws.amazon.com/kms/pricing/ (read 2026-11-28)",
    "currency": "USD",
    "key_month": 1.00,
    "rotation_month": 1.00,
    "billed_rotations": 2,
    "per_10k_requests": {"symmetric": 0.03, "rsa_2048": 0.03, "asymmetric": 0.15, "generate_data_key_pair": 0.10},
    "free_requests_per_month": 20_000,
    "free_tier_families": ["symmetric"],
}


class PriceListError(ValueError):
    """A price list override that cannot be used; the message names the entry (the caller adds where it came
    from, e.g. the CLI's ``--prices: ``)."""


@dataclass(frozen=True, slots=True)
class PriceList:
    source: str
    currency: str
    key_month: float
    rotation_month: float
    billed_rotations: int
    per_10k_requests: Mapping[str, float]
    free_requests_per_month: int
    free_tier_families: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The shape of ``DEFAULT_PRICES``, so a report shows the prices it used as a price file would hold them."""
        return {
            "source": self.source,
            "currency": self.currency,
            "key_month": self.key_month,
            "rotation_month": self.rotation_month,
            "billed_rotations": self.billed_rotations,
            "per_10k_requests": dict(self.per_10k_requests),
            "free_requests_per_month": self.free_requests_per_month,
            "free_tier_families": list(self.free_tier_families),
        }


def _number(where: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PriceListError(f"{where} must be a number of at least 0")
    if integer and value != int(value):
        raise PriceListError(f"{where} must be a whole number")
    return float(value)


def price_list(overrides: Mapping[str, Any] | None = None, source: str | None = None) -> PriceList:
    """The default prices with ``overrides`` (a price file's object) applied; unknown names are refused, so a
    typo cannot silently leave a default price in place. ``source`` names the overrides unless they do."""
    merged = dict(DEFAULT_PRICES)
    merged["per_10k_requests"] = dict(DEFAULT_PRICES["per_10k_requests"])
    for name, value in (overrides or {}).items():
        if name not in DEFAULT_PRICES:
            raise PriceListError(f"unknown entry {name!r} (known: {', '.join(sorted(DEFAULT_PRICES))})")
        if name == "per_10k_requests":
            if not isinstance(value, dict):
                raise PriceListError("per_10k_requests must be an object of family -> price")
            for family, price in value.items():
                if family not in FAMILIES:
                    raise PriceListError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
                merged["per_10k_requests"][family] = _number(f"per_10k_requests.{family}", price)
        elif name == "free_tier_families":
            if not isinstance(value, list) or not all(f in FAMILIES for f in value):
                raise PriceListError(f"free_tier_families must be a list of {', '.join(FAMILIES)}")
            merged[name] = value
        elif name in ("source", "currency"):
            if not isinstance(value, str):
                raise PriceListError(f"{name} must be text")
            merged[name] = value
        else:
            merged[name] = _number(name, value, integer=name in ("billed_rotations", "free_requests_per_month"))
    if overrides and "source" not in overrides and source is not None:
        merged["source"] = source
    return PriceList(
        source=str(merged["source"]),
        currency=str(merged["currency"]),
        key_month=float(merged["key_month"]),
        rotation_month=float(merged["rotation_month"]),
        billed_rotations=int(merged["billed_rotations"]),
        per_10k_requests=dict(merged["per_10k_requests"]),
        free_requests_per_month=int(merged["free_requests_per_month"]),
        free_tier_families=tuple(merged["free_tier_families"]),
    )


# ---- the estimate --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class AccountUsage:
    """What one account is billed on: the free tier is per account, so requests are summed per account."""

    keys: int = 0
    rotations: int = 0
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))


def estimate(account: AccountUsage, scale: float, prices: PriceList) -> dict[str, Any]:
    """One account's month: key-months, and requests scaled to a month, priced after the free tier."""
    monthly = {family: account.requests[family] * scale for family in FAMILIES}
    free_left = float(prices.free_requests_per_month)
    request_cost = 0.0
    for family in FAMILIES:
        billed = monthly[family]
        if family in prices.free_tier_families:
            covered = min(free_left, billed)
            free_left -= covered
            billed -= covered
        request_cost += billed / 10_000 * prices.per_10k_requests[family]
    key_cost = account.keys * prices.key_month + account.rotations * prices.rotation_month
    return {
        "Keys": account.keys,
        "Rotations": account.rotations,
        "MonthlyRequests": {family: round(monthly[family]) for family in FAMILIES},
        "KeyCost": round(key_cost, 4),
        "RequestCost": round(request_cost, 4),
        "Total": round(key_cost + request_cost, 4),
    }


# ---- the report ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageReport:
    """``window``: Since, Until, CoveredFrom (the later of Since and the trail's first day), Days (counted, at
    least 1) and MonthDays. ``usage``: one row per key and day (KeyId, Day, a column per family in
    FAMILY_COLUMNS, Requests). ``estimates``: one per account (Account, then ``estimate``'s fields)."""

    window: dict[str, Any]
    prices: PriceList
    usage: list[dict[str, Any]]
    estimates: list[dict[str, Any]]
    total: float

    def as_json(self) -> dict[str, Any]:
        """The object ``openkms usage --json`` prints."""
        return {
            "Window": self.window,
            "Prices": self.prices.as_dict(),
            "Usage": self.usage,
            "Estimate": self.estimates,
            "Total": self.total,
        }


def utc_date(epoch: float) -> datetime.date:
    """The UTC day of ``epoch``: usage is counted per UTC day, whatever the local zone."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).date()


def build_usage_report(
    storage: Storage,
    *,
    since: datetime.date,
    today: datetime.date,
    key_id: str | None,
    account_id: str | None,
    regions: Sequence[str] | None,
    prices: PriceList,
    roll_up: Callable[[Storage], object],
) -> UsageReport:
    """Counts and estimate for the days ``since``..``today``. ``key_id`` is a key id (callers resolve aliases
    and ARNs); ``account_id`` keeps that account's requests and keys only; ``regions`` are those whose keys cost
    a key-month (None or empty: DEFAULT_REGION and every region of a used key). Counts what the trail holds
    first (``roll_up``: audit/usage.py's), so the report includes requests up to now; the month is scaled from the
    days the trail covers."""
    roll_up(storage)  # count what the trail holds that the service has not counted yet
    with storage.read() as tx:
        rows: list[UsageRow] = tx.list_key_usage(key_id, since.isoformat())
        trail_start = tx.audit_head().started_at
        used = {k: tx.get_key(k) for k in sorted({row.key_id for row in rows})}
    covered_from = max(since, utc_date(trail_start)) if trail_start else today
    days = max(1, (today - covered_from).days + 1)
    scale = DAYS_PER_MONTH / days

    accounts: dict[str, AccountUsage] = defaultdict(AccountUsage)
    account_of: dict[str, str] = {}
    for used_id, record in used.items():
        account_of[used_id] = record.account_id if record else _account_of_deleted_key(storage, used_id)
    per_day: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        if row.day > today.isoformat():
            continue
        account = account_of[row.key_id]
        if account_id and account != account_id:
            continue
        counts = per_day.setdefault((row.key_id, row.day), dict.fromkeys(FAMILIES, 0))
        counts[row.family] = counts.get(row.family, 0) + row.requests
        if row.family in FAMILIES:
            accounts[account].requests[row.family] += row.requests

    for key in _keys(storage, key_id, account_id, regions, used):
        if _billable(key):
            accounts[key.account_id].keys += 1
            with storage.read() as tx:
                rotations = max(0, len(tx.list_versions(key.key_id)) - 1)
            accounts[key.account_id].rotations += min(rotations, prices.billed_rotations)

    usage_rows = [
        {
            "KeyId": k,
            "Day": d,
            **{FAMILY_COLUMNS[f]: counts.get(f, 0) for f in FAMILIES},
            "Requests": sum(counts.values()),
        }
        for (k, d), counts in sorted(per_day.items())
    ]
    estimates = [{"Account": name, **estimate(accounts[name], scale, prices)} for name in sorted(accounts)]
    window = {"Since": since.isoformat(), "Until": today.isoformat(), "CoveredFrom": covered_from.isoformat(),
              "Days": days, "MonthDays": DAYS_PER_MONTH}  # fmt: skip
    total = round(sum(e["Total"] for e in estimates), 4)
    return UsageReport(window=window, prices=prices, usage=usage_rows, estimates=estimates, total=total)


def _account_of_deleted_key(storage: Storage, key_id: str) -> str:
    """A key that no longer exists: its account from the newest record that names it (its requests still
    count toward that account's free tier and bill)."""
    with storage.read() as tx:
        rows = tx.query_audit(AuditFilter(key_id=key_id), 1)
    if rows:
        for resource in json.loads(rows[0].event).get("resources", []):
            arn = str(resource.get("ARN", ""))
            if arn.endswith("/" + key_id):
                return arn.split(":")[4]
    return "unknown"


def _billable(key: KeyRecord) -> bool:
    """AWS charges no key-month for AWS-managed keys nor for keys pending deletion."""
    return key.key_manager == "CUSTOMER" and key.key_state != PENDING_DELETION


def _keys(
    storage: Storage,
    key_id: str | None,
    account_id: str | None,
    regions: Sequence[str] | None,
    used: Mapping[str, KeyRecord | None],
) -> list[KeyRecord]:
    """The keys that cost a key-month: the one asked for, or every key of the accounts and regions in view
    (idle keys cost a key-month too, so this is not just the keys with requests)."""
    if key_id is not None:
        with storage.read() as tx:
            key = tx.get_key(key_id)
        return [key] if key is not None else []
    if account_id:
        accounts = [account_id]
    else:
        with storage.read() as tx:
            accounts = tx.list_accounts()
    regions = regions or sorted({DEFAULT_REGION} | {k.region for k in used.values() if k is not None})
    return [key for account in accounts for region in regions for key in iterate_all_keys(storage, account, region)]
