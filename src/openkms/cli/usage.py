"""``openkms usage``: requests per key and day by pricing family, and what the same use would cost at AWS.

The numbers come from openkms/usage_report.py (shared with the web console); this module parses the
arguments, reads a ``--prices`` file and prints. docs/audit.md ("Operating the trail") names the source of
the default prices and the date they were read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import textwrap
import time
from pathlib import Path

from openkms.audit.usage import roll_up
from openkms.cli.audit import key_filter
from openkms.cli.common import (
    HELP_WIDTH,
    CliValidationError,
    add_storage_arguments,
    emit,
    open_existing,
    parse_time,
    resolve_paths,
)
from openkms.settings import DEFAULT_REGION
from openkms.storage.ports import Storage
from openkms.usage_report import (
    DEFAULT_PRICES,
    FAMILIES,
    FAMILY_COLUMNS,
    AccountUsage,
    PriceList,
    PriceListError,
    UsageReport,
    build_usage_report,
    price_list,
    utc_date,
)
from openkms.usage_report import estimate as estimate  # re-exported: its home before the move

_Account = AccountUsage  # its name here before the move (tests/cli/test_usage_cli.py)
DEFAULT_WINDOW_DAYS = 30


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
    try:
        return price_list(overrides, source=f"{path} over the defaults")
    except PriceListError as exc:
        raise CliValidationError(f"--prices: {exc}") from None


# ---- parser --------------------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = json.dumps(DEFAULT_PRICES, indent=2).replace("%", "%%")
    parser = subparsers.add_parser(
        "usage",
        help="requests per key and day, with a monthly cost estimate at AWS prices",
        description=textwrap.fill(
            "Requests per key and UTC day by pricing family (symmetric, RSA 2048, other asymmetric, "
            "GenerateDataKeyPair), from the audit trail's daily counts, and what a month of the same use would cost "
            "at a price list: each customer-managed key not pending deletion costs a key-month (plus one per "
            "rotation, up to billed_rotations), requests cost per 10,000 by family after each account's monthly "
            "free tier. The month is scaled from the days of the window (--since to today) the trail covers.",
            width=HELP_WIDTH,
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


def _since_day(text: str | None, today: datetime.date) -> datetime.date:
    if text is None:
        return today - datetime.timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    return utc_date(parse_time(text, time.time()))


def run(args: argparse.Namespace) -> int:
    prices = _load_prices(args.prices)
    _, url = resolve_paths(args)
    storage = open_existing(url)
    try:
        return _report(args, storage, prices)
    finally:
        storage.close()


def _report(args: argparse.Namespace, storage: Storage, prices: PriceList) -> int:
    today = utc_date(time.time())
    since = _since_day(args.since, today)
    if since > today:
        raise CliValidationError(f"--since {since.isoformat()} is in the future")
    key_id = key_filter(storage, args.key_id, args.account_id, DEFAULT_REGION) if args.key_id else None
    report = build_usage_report(
        storage,
        since=since,
        today=today,
        key_id=key_id,
        account_id=args.account_id,
        regions=args.region,
        prices=prices,
        roll_up=roll_up,
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
        return 0
    _print_tables(report)
    return 0


def _print_tables(report: UsageReport) -> None:
    emit(report.usage, ["KeyId", "Day", *FAMILY_COLUMNS.values(), "Requests"], False)
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
        for e in report.estimates
    ]
    if len(money) > 1:
        money.append({"Account": "all", "Total": f"{report.total:.2f}"})
    emit(money, ["Account", "Keys", "Rotations", *(c + "/mo" for c in FAMILY_COLUMNS.values()), "KeyCost",
                 "RequestCost", "Total"], False)  # fmt: skip
    print()
    window = report.window
    print(
        f"Monthly estimate in {report.prices.currency}: {window['MonthDays']} days at the rate of "
        f"{window['Days']} day(s) of counted use ({window['CoveredFrom']}..{window['Until']}, UTC); "
        "keys as they are now."
    )
    print(f"Prices: {report.prices.source}; --prices FILE to use others.")
