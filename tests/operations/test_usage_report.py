"""``build_usage_report``: the usage report's numbers, without the CLI (the web console calls it directly).

The workload of tests/usage_workload.py runs on an in-process openkms with a frozen clock (conftest ``kms``,
on each storage engine), so requests can land on chosen UTC days; the report's counts are exactly the calls
made on each key. Prices of 10,000 per 10,000 requests ($1 a request) keep the estimate in whole dollars.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from openkms.audit.usage import roll_up
from openkms.jobs.deletion import destroy_if_due
from openkms.usage_report import (
    DEFAULT_PRICES,
    FAMILIES,
    FAMILY_COLUMNS,
    PriceList,
    PriceListError,
    UsageReport,
    build_usage_report,
    price_list,
    utc_date,
)
from tests.inprocess import ACCOUNT_ID
from tests.operations.conftest import DAY, KMS, T0
from tests.usage_workload import EXPECTED, PLAINTEXT, call, create_key, run_workload

DAY0 = utc_date(T0)
DAY1 = DAY0 + datetime.timedelta(days=1)
DOLLAR_A_REQUEST = {"per_10k_requests": dict.fromkeys(FAMILIES, 10_000)}


def report(
    kms: KMS,
    *,
    since: datetime.date = DAY0,
    today: datetime.date = DAY0,
    key_id: str | None = None,
    account_id: str | None = None,
    prices: PriceList | None = None,
) -> UsageReport:
    return build_usage_report(
        kms.storage,
        since=since,
        today=today,
        key_id=key_id,
        account_id=account_id,
        regions=None,
        prices=prices or price_list(),
        roll_up=roll_up,
    )


def columns(counts: dict[str, int]) -> dict[str, int]:
    """A usage row's counts (without KeyId and Day) from counts by family."""
    return {**{FAMILY_COLUMNS[f]: counts.get(f, 0) for f in FAMILIES}, "Requests": sum(counts.values())}


def test_counts_per_key_day_and_family(kms: KMS) -> None:
    keys = run_workload(kms.inner)
    kms.clock.advance(DAY)
    for _ in range(2):
        call(kms.inner, "Encrypt", {"KeyId": keys["sym"], "Plaintext": PLAINTEXT})
    call(kms.inner, "Sign", {"KeyId": keys["ecc"], "Message": PLAINTEXT, "SigningAlgorithm": "ECDSA_SHA_256"})

    result = report(kms, today=DAY1)
    rows = {(row.pop("KeyId"), row.pop("Day")): row for row in map(dict, result.usage)}
    expected = {(keys[label], DAY0.isoformat()): columns(counts) for label, counts in EXPECTED.items()}
    expected[(keys["sym"], DAY1.isoformat())] = columns({"symmetric": 2})
    expected[(keys["ecc"], DAY1.isoformat())] = columns({"asymmetric": 1})
    assert rows == expected
    assert [(row["KeyId"], row["Day"]) for row in result.usage] == sorted(expected)  # by key, then day
    assert result.window == {"Since": DAY0.isoformat(), "Until": DAY1.isoformat(), "CoveredFrom": DAY0.isoformat(),
                             "Days": 2, "MonthDays": 30}  # fmt: skip
    [account] = result.estimates
    # Two days of use, scaled to a 30-day month.
    assert account["MonthlyRequests"] == {"symmetric": 8 * 15, "rsa_2048": 3 * 15, "asymmetric": 3 * 15,
                                          "generate_data_key_pair": 1 * 15}  # fmt: skip

    assert {(row["KeyId"], row["Day"]) for row in report(kms, since=DAY1, today=DAY1).usage} == {
        (keys["sym"], DAY1.isoformat()),
        (keys["ecc"], DAY1.isoformat()),
    }
    # A day after ``today`` is left out (a window that ends before the trail does).
    assert {row["Day"] for row in report(kms, today=DAY0).usage} == {DAY0.isoformat()}


def test_as_json_is_the_cli_object(kms: KMS) -> None:
    run_workload(kms.inner)
    result = report(kms)
    assert result.as_json() == {
        "Window": result.window,
        "Prices": DEFAULT_PRICES,
        "Usage": result.usage,
        "Estimate": result.estimates,
        "Total": result.total,
    }
    assert list(result.as_json()) == ["Window", "Prices", "Usage", "Estimate", "Total"]
    assert result.total == sum(e["Total"] for e in result.estimates)


def test_the_free_tier_covers_symmetric_requests_only(kms: KMS) -> None:
    run_workload(kms.inner)  # a month of it: 180 symmetric, 90 RSA 2048, 60 asymmetric, 30 GenerateDataKeyPair

    def request_cost(**overrides: Any) -> float:
        [account] = report(kms, prices=price_list({**DOLLAR_A_REQUEST, **overrides})).estimates
        return float(account["RequestCost"])

    assert request_cost() == 90 + 60 + 30  # the 20,000 free requests are not spent on the other families
    assert request_cost(free_requests_per_month=100) == 90 + 60 + 30 + (180 - 100)
    assert request_cost(free_tier_families=list(FAMILIES)) == 0
    assert request_cost(free_tier_families=[]) == 180 + 90 + 60 + 30


def test_rotations_are_billed_up_to_billed_rotations(kms: KMS) -> None:
    key_id = create_key(kms.inner)
    for _ in range(3):
        call(kms.inner, "RotateKeyOnDemand", {"KeyId": key_id})

    def key_costs(**overrides: Any) -> tuple[int, float]:
        [account] = report(kms, key_id=key_id, prices=price_list(overrides)).estimates
        return account["Rotations"], account["KeyCost"]

    assert key_costs() == (2, 3.0)  # AWS's default: rotations after the second are free
    assert key_costs(billed_rotations=5) == (3, 4.0)
    assert key_costs(billed_rotations=0, key_month=2) == (0, 2.0)


def test_a_deleted_keys_requests_stay_with_its_account(kms: KMS) -> None:
    kept = create_key(kms.inner)
    gone = create_key(kms.inner)
    call(kms.inner, "Encrypt", {"KeyId": gone, "Plaintext": PLAINTEXT})
    call(kms.inner, "ScheduleKeyDeletion", {"KeyId": gone, "PendingWindowInDays": 7})
    kms.clock.advance(7 * DAY)
    assert destroy_if_due(kms.inner.services, gone, kms.clock.now())
    with kms.storage.read() as tx:
        assert tx.get_key(gone) is None
    today = DAY0 + datetime.timedelta(days=7)

    result = report(kms, today=today, prices=price_list(DOLLAR_A_REQUEST))
    assert {row["KeyId"]: row["Requests"] for row in result.usage} == {kept: 1, gone: 3}
    [account] = result.estimates
    assert account["Account"] == ACCOUNT_ID  # from the trail's records, not "unknown"
    assert account["Keys"] == 1  # the deleted key no longer costs a key-month
    # Its requests still count toward the account's free tier; 4 symmetric requests in 8 days.
    assert account["MonthlyRequests"]["symmetric"] == round(4 * 30 / 8) and account["RequestCost"] == 0

    assert report(kms, today=today, account_id=ACCOUNT_ID).usage == result.usage
    elsewhere = report(kms, today=today, account_id="999999999999")
    assert elsewhere.usage == [] and elsewhere.estimates == [] and elsewhere.total == 0


def test_one_key_only(kms: KMS) -> None:
    keys = run_workload(kms.inner)
    one = report(kms, key_id=keys["rsa"])
    assert [(row["KeyId"], row["RSA2048"]) for row in one.usage] == [(keys["rsa"], 3)]
    [account] = one.estimates
    assert account["Keys"] == 1 and account["MonthlyRequests"]["rsa_2048"] == 3 * 30
    assert account["MonthlyRequests"]["symmetric"] == 0

    # Without a key: every key costs a key-month, used in the window or not.
    assert report(kms, since=DAY1, today=DAY1).estimates[0]["Keys"] == 4
    nothing = report(kms, key_id="00000000-0000-0000-0000-000000000000")
    assert nothing.usage == [] and nothing.estimates == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key_monthh": 1}, "unknown entry 'key_monthh' (known: billed_rotations, currency, "),
        ({"per_10k_requests": {"quantum": 1}}, "unknown family 'quantum' (known: symmetric, rsa_2048, "),
        ({"per_10k_requests": 0.03}, "per_10k_requests must be an object of family -> price"),
        ({"key_month": -1}, "key_month must be a number of at least 0"),
        ({"per_10k_requests": {"symmetric": True}}, "per_10k_requests.symmetric must be a number of at least 0"),
        ({"billed_rotations": 1.5}, "billed_rotations must be a whole number"),
        ({"free_tier_families": ["nope"]}, "free_tier_families must be a list of symmetric, rsa_2048, "),
        ({"currency": 978}, "currency must be text"),
    ],
)
def test_a_price_list_refuses_what_it_cannot_use(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(PriceListError) as caught:
        price_list(overrides)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_overrides_keep_the_other_defaults_and_name_their_source() -> None:
    prices = price_list({"per_10k_requests": {"symmetric": 0.035}}, source="eu.json over the defaults")
    assert prices.per_10k_requests == {**DEFAULT_PRICES["per_10k_requests"], "symmetric": 0.035}
    assert prices.source == "eu.json over the defaults" and prices.key_month == 1.0
    assert price_list(source="unused").source == DEFAULT_PRICES["source"]  # no overrides: the defaults' source
    assert price_list({"source": "mine"}, source="eu.json").source == "mine"
