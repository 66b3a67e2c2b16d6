"""``openkms usage``: requests per key and day by pricing family, and the monthly estimate at a price list.

A workload with one key of each pricing family runs in this process (tests/inprocess.py); the counts the
command prints are exactly the workload's calls on each key (the trail counts every call that names a key,
CreateKey included). The estimate's arithmetic is checked on its own against AWS's published prices.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openkms.cli.usage import _Account
from openkms.usage_report import DEFAULT_PRICES, FAMILIES, estimate, price_list
from tests.cli.running import Run, openkms
from tests.inprocess import ACCOUNT_ID, InProcessKMS
from tests.usage_workload import EXPECTED, call, create_key, run_workload

FAMILY_COLUMNS = ["Symmetric", "RSA2048", "Asymmetric", "DataKeyPair"]


@dataclass
class Workload:
    data_dir: Path
    kms: InProcessKMS
    keys: dict[str, str]

    def usage(self, *args: str) -> Run:
        return openkms("usage", "--data-dir", str(self.data_dir), *args)


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    data_dir = tmp_path_factory.mktemp("usage") / "data"
    data_dir.mkdir(mode=0o700)
    kms = InProcessKMS(data_dir)
    yield Workload(data_dir, kms, run_workload(kms))
    kms.close()


def test_table_per_key_and_day_then_the_estimate(workload: Workload) -> None:
    run = workload.usage()
    assert run.code == 0 and run.err == "", run
    blocks = [block.splitlines() for block in run.out.strip().split("\n\n")]
    usage, money, notes = blocks
    assert usage[0].split() == ["KeyId", "Day", *FAMILY_COLUMNS, "Requests"]
    rows = {line.split()[0]: [int(n) for n in line.split()[2:]] for line in usage[1:]}
    for label, key_id in workload.keys.items():
        counts = [EXPECTED[label][family] for family in FAMILIES]
        assert rows[key_id] == [*counts, sum(counts)], label
    assert money[0].split() == ["Account", "Keys", "Rotations", *(c + "/mo" for c in FAMILY_COLUMNS), "KeyCost",
                                "RequestCost", "Total"]  # fmt: skip
    account = money[1].split()
    assert account[:3] == [ACCOUNT_ID, "4", "0"]
    assert account[-3] == "4.00"  # four keys at $1
    assert "Monthly estimate in USD" in notes[0] and "aws.amazon.com/kms/pricing" in notes[1]


def test_json_has_the_same_figures(workload: Workload) -> None:
    result = workload.usage("--json").json()
    assert set(result) == {"Window", "Prices", "Usage", "Estimate", "Total"}
    assert result["Prices"] == DEFAULT_PRICES
    assert result["Window"]["Days"] == 1 and result["Window"]["MonthDays"] == 30  # the trail began today
    by_key = {row["KeyId"]: row for row in result["Usage"]}
    assert by_key[workload.keys["rsa"]]["RSA2048"] == 3
    [account] = result["Estimate"]
    assert account["Account"] == ACCOUNT_ID and account["Keys"] == 4
    # One day of use, scaled to a 30-day month.
    assert account["MonthlyRequests"] == {"symmetric": 6 * 30, "rsa_2048": 3 * 30, "asymmetric": 2 * 30,
                                          "generate_data_key_pair": 1 * 30}  # fmt: skip
    expected_requests = (3 * 30 * 0.03 + 2 * 30 * 0.15 + 1 * 30 * 0.10) / 10_000  # symmetric is in the free tier
    assert account["RequestCost"] == pytest.approx(expected_requests, abs=1e-4)
    assert result["Total"] == pytest.approx(4 + expected_requests, abs=1e-4)


def test_one_key_by_any_name(workload: Workload) -> None:
    sym = workload.keys["sym"]
    for name in (sym, f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{sym}", "alias/usage-sym"):
        result = workload.usage("--key-id", name, "--json").json()
        assert [row["KeyId"] for row in result["Usage"]] == [sym]
        assert result["Estimate"][0]["Keys"] == 1


def test_keys_pending_deletion_cost_nothing(tmp_path: Path) -> None:
    kms = InProcessKMS(tmp_path)
    try:
        keep = create_key(kms)
        drop = create_key(kms)
        call(kms, "ScheduleKeyDeletion", {"KeyId": drop, "PendingWindowInDays": 7})
        [account] = openkms("usage", "--data-dir", str(tmp_path), "--json").json()["Estimate"]
        assert account["Keys"] == 1 and account["KeyCost"] == 1.0
        assert keep != drop
    finally:
        kms.close()


def test_since_and_a_price_file(workload: Workload, tmp_path: Path) -> None:
    assert workload.usage("--since", "2999-01-01").code == 2
    old = workload.usage("--since", "2000-01-01", "--json").json()
    assert old["Window"]["Since"] == "2000-01-01" and old["Window"]["Days"] == 1  # counted from the trail's start
    assert workload.usage("--since", "7d", "--json").json()["Usage"] == old["Usage"]
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"key_month": 2.5, "per_10k_requests": {"asymmetric": 10000}, "currency": "EUR"}))
    result = workload.usage("--prices", str(prices), "--json").json()
    [account] = result["Estimate"]
    assert account["KeyCost"] == 10.0
    assert account["RequestCost"] == pytest.approx(60 * 1.0 + (90 * 0.03 + 30 * 0.10) / 10_000, abs=1e-4)
    assert result["Prices"]["currency"] == "EUR" and str(prices) in result["Prices"]["source"]
    assert "Monthly estimate in EUR" in workload.usage("--prices", str(prices)).out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"key_monthh": 1}', "unknown entry 'key_monthh'"),
        ('{"per_10k_requests": {"quantum": 1}}', "unknown family 'quantum'"),
        ('{"key_month": -1}', "key_month must be a number of at least 0"),
        ('{"billed_rotations": 1.5}', "must be a whole number"),
        ('{"free_tier_families": ["nope"]}', "free_tier_families must be a list"),
    ],
)
def test_a_bad_price_file_is_exit_2(workload: Workload, tmp_path: Path, content: str, message: str) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(content)
    run = workload.usage("--prices", str(prices))
    assert run.code == 2 and run.out == "" and run.err.startswith("ValidationException: --prices"), run
    assert message in run.err


def test_help_explains_with_examples_and_the_defaults() -> None:
    run = openkms("usage", "--help")
    assert run.code == 0 and "examples:" in run.out and "openkms usage --since" in run.out
    assert '"per_10k_requests"' in run.out and "0.03" in run.out


# ---- the arithmetic -------------------------------------------------------------------------------------------


def test_estimate_applies_the_free_tier_to_symmetric_requests_only() -> None:
    prices = price_list()
    account = _Account(keys=10, rotations=3)
    account.requests.update(symmetric=1_000_000, rsa_2048=10_000, asymmetric=10_000, generate_data_key_pair=10_000)
    result = estimate(account, 1.0, prices)
    # AWS's example arithmetic: (1,000,000 - 20,000 free) / 10,000 x $0.03 = $2.94, the others pay from the first.
    assert result["RequestCost"] == pytest.approx(2.94 + 0.03 + 0.15 + 0.10)
    assert result["KeyCost"] == 13.0
    assert result["Total"] == pytest.approx(13 + 3.22)
    below = _Account()
    below.requests["symmetric"] = 19_999
    assert estimate(below, 1.0, prices)["RequestCost"] == 0.0


def test_estimate_scales_the_window_to_a_month() -> None:
    account = _Account(keys=1)
    account.requests["asymmetric"] = 100
    result = estimate(account, 30 / 7, price_list())  # a week of use
    assert result["MonthlyRequests"]["asymmetric"] == round(100 * 30 / 7)
    assert result["RequestCost"] == pytest.approx(100 * 30 / 7 / 10_000 * 0.15, abs=1e-4)


def test_the_default_prices_are_awss_list_prices() -> None:
    """us-east-1, https://aws.amazon.com/kms/pricing/ (read 2026-11-28)."""
    prices = price_list()
    assert (prices.key_month, prices.rotation_month, prices.billed_rotations) == (1.0, 1.0, 2)
    assert dict(prices.per_10k_requests) == {"symmetric": 0.03, "rsa_2048": 0.03, "asymmetric": 0.15,
                                             "generate_data_key_pair": 0.10}  # fmt: skip
    assert prices.free_requests_per_month == 20_000 and prices.free_tier_families == ("symmetric",)
