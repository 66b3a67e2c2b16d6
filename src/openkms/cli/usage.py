"""``openkms usage``: requests per key and day by pricing family, and what the same use would cost at AWS.

The counts come from ``key_usage_daily`` (requests per key, UTC day and family, counted from the audit trail;
the families are those AWS prices apart: audit/events.py ``usage_family``). The estimate prices a month of
them with a price list (default: AWS KMS's public list prices; ``--prices FILE`` for others): each
customer-managed key that is not pending deletion costs a key-month, plus a key-month for each of its first
rotations, and requests cost per 10,000 by family, after the monthly free tier of each account.
docs/audit.md ("Operating the trail") names the source of the default prices and the date they were read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openkms.audit import usage
from openkms.cli.audit import key_filter
from openkms.cli.common import (
    CliValidationError,
    add_storage_arguments,
    emit,
    open_migrated,
    parse_time,
    resolve_paths,
)
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
DEFAULT_WINDOW_DAYS = 30
DAYS_PER_MONTH = 30
PENDING_DELETION = "PendingDeletion"

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
        raise CliValidationError(f"--prices: {where} must be a number of at least 0")
    if integer and value != int(value):
        raise CliValidationError(f"--prices: {where} must be a whole number")
    return float(value)


def price_list(overrides: Mapping[str, Any] | None = None, source: str | None = None) -> PriceList:
    """The default prices with ``overrides`` (a --prices file's object) applied; unknown names are refused."""
    merged = dict(DEFAULT_PRICES)
    merged["per_10k_requests"] = dict(DEFAULT_PRICES["per_10k_requests"])
    for name, value in (overrides or {}).items():
        if name not in DEFAULT_PRICES:
            raise CliValidationError(f"--prices: unknown entry {name!r} (known: {', '.join(sorted(DEFAULT_PRICES))})")
        if name == "per_10k_requests":
            if not isinstance(value, dict):
                raise CliValidationError("--prices: per_10k_requests must be an object of family -> price")
            for family, price in value.items():
                if family not in FAMILIES:
                    raise CliValidationError(f"--prices: unknown family {family!r} (known: {', '.join(FAMILIES)})")
                merged["per_10k_requests"][family] = _number(f"per_10k_requests.{family}", price)
        elif name == "free_tier_families":
            if not isinstance(value, list) or not all(f in FAMILIES for f in value):
                raise CliValidationError(f"--prices: free_tier_families must be a list of {', '.join(FAMILIES)}")
            merged[name] = value
        elif name in ("source", "currency"):
            if not isinstance(value, str):
                raise CliValidationError(f"--prices: {name} must be text")
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


def _load_prices(path: Path | None) -> PriceList:
    if path is None:
        return price_list()
    try:
        overrides = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise CliValidationError(f"--prices {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise CliValidationError(f"--prices {path}: not JSON ({exc})") from None
    if not isinstance(overrides, dict):
        raise CliValidationError(f"--prices {path}: must hold a JSON object like the defaults (see --help)")
    return price_list(overrides, source=f"{path} over the defaults")


# ---- parser --------------------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = json.dumps(DEFAULT_PRICES, indent=2).replace("%", "%%")
    parser = subparsers.add_parser(
        "usage",
        help="requests per key and day, with a monthly cost estimate at AWS prices",
        description=(
            "Requests per key and UTC day by pricing family (symmetric, RSA 2048, other asymmetric, "
            "GenerateDataKeyPair), from the audit trail's daily counts, and what a month of the same use would cost "
            "at a price list: each customer-managed key not pending deletion costs a key-month (plus one per "
            "rotation, up to billed_rotations), requests cost per 10,000 by family after each account's monthly "
            "free tier. The month is scaled from the days of the window (--since to today) the trail covers."
        ),
        epilog=(
            "examples:\n"
            "  openkms usage\n"
            "  openkms usage --since 2026-11-01 --key-id alias/payments\n"
            "  openkms usage --since 7d --prices eu-prices.json --json\n\n"
            "--prices FILE: a JSON object overriding any of the defaults, e.g. "
            '{"per_10k_requests": {"symmetric": 0.035}}.\nThe defaults:\n' + defaults
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_storage_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--since",
        default=None,
        help=f"first UTC day: YYYY-MM-DD or an age such as 7d (default: the last {DEFAULT_WINDOW_DAYS} days)",
    )
    parser.add_argument("--key-id", default=None, help="only this key: key id, key ARN, alias name or alias ARN")
    parser.add_argument("--account-id", default=None, help="only this account (and the account of alias names)")
    parser.add_argument(
        "--region",
        action="append",
        default=None,
        help=f"regions whose keys are counted (repeatable; default {DEFAULT_REGION} and every region of a used key)",
    )
    parser.add_argument("--prices", type=Path, default=None, help="a JSON price list overriding the defaults")


# ---- the report ----------------------------------------------------------------------------------------------


def _day(epoch: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).date()


def _since_day(text: str | None, today: datetime.date) -> datetime.date:
    if text is None:
        return today - datetime.timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    return _day(parse_time(text, time.time()))


@dataclass(slots=True)
class _Account:
    keys: int = 0
    rotations: int = 0
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))


def _account_of_deleted_key(storage: Storage, key_id: str) -> str:
    """A key that no longer exists: its account from the newest record that names it."""
    with storage.read() as tx:
        rows = tx.query_audit(AuditFilter(key_id=key_id), 1)
    if rows:
        for resource in json.loads(rows[0].event).get("resources", []):
            arn = str(resource.get("ARN", ""))
            if arn.endswith("/" + key_id):
                return arn.split(":")[4]
    return "unknown"


def _billable(key: KeyRecord) -> bool:
    return key.key_manager == "CUSTOMER" and key.key_state != PENDING_DELETION


def estimate(account: _Account, scale: float, prices: PriceList) -> dict[str, Any]:
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


def run(args: argparse.Namespace) -> int:
    prices = _load_prices(args.prices)
    data_dir, url = resolve_paths(args)
    storage = open_migrated(url, data_dir)
    try:
        return _report(args, storage, prices)
    finally:
        storage.close()


def _report(args: argparse.Namespace, storage: Storage, prices: PriceList) -> int:
    today = _day(time.time())
    since = _since_day(args.since, today)
    if since > today:
        raise CliValidationError(f"--since {since.isoformat()} is in the future")
    key_id = key_filter(storage, args.key_id, args.account_id, DEFAULT_REGION) if args.key_id else None
    usage.roll_up(storage)  # count what the trail holds that the service has not counted yet
    with storage.read() as tx:
        rows: list[UsageRow] = tx.list_key_usage(key_id, since.isoformat())
        trail_start = tx.audit_head().started_at
        used = {k: tx.get_key(k) for k in sorted({row.key_id for row in rows})}
    covered_from = max(since, _day(trail_start)) if trail_start else today
    days = max(1, (today - covered_from).days + 1)
    scale = DAYS_PER_MONTH / days

    accounts: dict[str, _Account] = defaultdict(_Account)
    account_of: dict[str, str] = {}
    for used_id, record in used.items():
        account_of[used_id] = record.account_id if record else _account_of_deleted_key(storage, used_id)
    per_day: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        if row.day > today.isoformat():
            continue
        account = account_of[row.key_id]
        if args.account_id and account != args.account_id:
            continue
        counts = per_day.setdefault((row.key_id, row.day), dict.fromkeys(FAMILIES, 0))
        counts[row.family] = counts.get(row.family, 0) + row.requests
        if row.family in FAMILIES:
            accounts[account].requests[row.family] += row.requests

    for key in _keys(storage, args, key_id, used):
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
    total = round(sum(e["Total"] for e in estimates), 4)
    window = {"Since": since.isoformat(), "Until": today.isoformat(), "CoveredFrom": covered_from.isoformat(),
              "Days": days, "MonthDays": DAYS_PER_MONTH}  # fmt: skip
    if args.json:
        result = {
            "Window": window,
            "Prices": prices.as_dict(),
            "Usage": usage_rows,
            "Estimate": estimates,
            "Total": total,
        }
        print(json.dumps(result, indent=2))
        return 0
    emit(usage_rows, ["KeyId", "Day", *FAMILY_COLUMNS.values(), "Requests"], False)
    print()
    money = [
        {
            "Account": e["Account"],
            "Keys": e["Keys"],
            "Rotations": e["Rotations"],
            **{FAMILY_COLUMNS[f] + "/mo": e["MonthlyRequests"][f] for f in FAMILIES},
            "KeyCost": f"{e['KeyCost']:.2f}",
            "RequestCost": f"{e['RequestCost']:.2f}",
            "Total": f"{e['Total']:.2f}",
        }
        for e in estimates
    ]
    if len(money) > 1:
        money.append({"Account": "all", "Total": f"{total:.2f}"})
    emit(money, ["Account", "Keys", "Rotations", *(c + "/mo" for c in FAMILY_COLUMNS.values()), "KeyCost",
                 "RequestCost", "Total"], False)  # fmt: skip
    print()
    print(
        f"Monthly estimate in {prices.currency}: {DAYS_PER_MONTH} days at the rate of {days} day(s) of counted use "
        f"({covered_from.isoformat()}..{today.isoformat()}, UTC); keys as they are now."
    )
    print(f"Prices: {prices.source}; --prices FILE to use others.")
    return 0


def _keys(
    storage: Storage, args: argparse.Namespace, key_id: str | None, used: Mapping[str, KeyRecord | None]
) -> list[KeyRecord]:
    """The keys that cost a key-month: the one asked for, or every key of the accounts and regions in view."""
    if key_id is not None:
        with storage.read() as tx:
            key = tx.get_key(key_id)
        return [key] if key is not None else []
    if args.account_id:
        accounts = [args.account_id]
    else:
        with storage.read() as tx:
            accounts = tx.list_accounts()
    regions = args.region or sorted({DEFAULT_REGION} | {k.region for k in used.values() if k is not None})
    return [key for account in accounts for region in regions for key in iterate_all_keys(storage, account, region)]
