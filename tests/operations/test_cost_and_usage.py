"""GetCostAndUsage, the console's usage page: authorised as ``ce:GetCostAndUsage``, confined to the caller's
account, the numbers of ``openkms usage`` (operations/cost_and_usage.py over usage_report.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess import InProcessKMS
from tests.operations.test_audit_lookup import OTHER_ACCOUNT, VIA, _admin, _encrypt, _user

ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[InProcessKMS]:
    made = InProcessKMS(tmp_path)
    yield made
    made.close()


def test_the_report_counts_the_callers_account_only(kms: InProcessKMS) -> None:
    mine = kms.call("CreateKey", {})[1]["KeyMetadata"]["KeyId"]
    for _ in range(3):
        _encrypt(kms, mine)
    bob, credentials = _user(kms, OTHER_ACCOUNT, "bob", ADMIN)
    theirs = kms.call("CreateKey", {}, credentials=credentials)[1]["KeyMetadata"]["KeyId"]
    _encrypt(kms, theirs, credentials)
    invocation = kms.invoke(_admin(kms), "GetCostAndUsage", {"Days": 7}, VIA)
    assert invocation.error is None and invocation.result is not None
    report: dict[str, Any] = invocation.result
    assert {row["KeyId"] for row in report["Usage"]} == {mine}
    assert sum(row["Symmetric"] for row in report["Usage"]) == 4  # CreateKey and three Encrypts name the key
    assert [e["Account"] for e in report["Estimate"]] == ["111122223333"] and report["Estimate"][0]["Keys"] == 1
    assert theirs not in json.dumps(report)
    other = kms.invoke(bob, "GetCostAndUsage", {}, VIA)
    assert other.result is not None and {row["KeyId"] for row in other.result["Usage"]} == {theirs}
    assert kms.record_of(invocation.request_id)["eventSource"] == "ce.amazonaws.com"


def test_the_caller_needs_ce_get_cost_and_usage(kms: InProcessKMS) -> None:
    kms_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    reader, _ = _user(kms, "111122223333", "reader", kms_only)
    denied = kms.invoke(reader, "GetCostAndUsage", {}, VIA)
    assert denied.error is not None and denied.error.code == "AccessDeniedException"
    assert "ce:GetCostAndUsage" in denied.error.message


@pytest.mark.parametrize(
    "params",
    [{"Days": 0}, {"Days": 367}, {"Days": "7"}, {"Since": "yesterday"}, {"Since": "2999-01-01"}, {"Other": 1}],
)
def test_bad_windows_are_a_validation_exception(kms: InProcessKMS, params: dict[str, Any]) -> None:
    refused = kms.invoke(_admin(kms), "GetCostAndUsage", params, VIA)
    assert refused.error is not None and refused.error.code == "ValidationException"
