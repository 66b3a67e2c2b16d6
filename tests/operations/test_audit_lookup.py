"""LookupEvents, the console's audit query: filters, newest first, paging, confinement to the caller's account,
authorisation as ``cloudtrail:LookupEvents``, and its own record (operations/audit_lookup.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from openkms import identity, ids
from openkms.context import Principal
from openkms.server.operation_runner import Caller, Outcome
from tests.inprocess import ACCOUNT_ID, InProcessKMS

OTHER_ACCOUNT = "444455556666"
VIA = Caller("192.0.2.7", "openkms-console (test)", False)


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[InProcessKMS]:
    made = InProcessKMS(tmp_path)
    yield made
    made.close()


def _user(kms: InProcessKMS, account: str, name: str, policy: dict[str, Any] | None) -> tuple[Principal, Credentials]:
    identity.ensure_account(kms.storage, account, kms.clock)
    user = identity.create_user(kms.storage, account, name, kms.clock)
    if policy is not None:
        identity.put_user_policy(kms.storage, account, name, "p", json.dumps(policy))
    made = identity.create_access_key(kms.storage, kms.services.keyring.root_key(), account, name, kms.clock)
    principal = Principal(account, ids.user_arn(account, name), name, made.access_key_id, user.user_id)
    return principal, Credentials(made.access_key_id, made.secret_access_key)


def _admin(kms: InProcessKMS) -> Principal:
    return Principal(ACCOUNT_ID, ids.user_arn(ACCOUNT_ID, "admin"), "admin", kms.credentials.access_key)


def lookup(kms: InProcessKMS, principal: Principal | None = None, **params: Any) -> Outcome[dict[str, Any]]:
    return kms.invoke(principal or _admin(kms), "LookupEvents", params, VIA)


def events_of(invocation: Outcome[dict[str, Any]]) -> list[dict[str, Any]]:
    assert invocation.error is None, invocation.error
    assert invocation.result is not None
    found: list[dict[str, Any]] = invocation.result["Events"]
    return found


def _encrypt(kms: InProcessKMS, key: str, credentials: Credentials | None = None) -> str:
    status, body = kms.call("Encrypt", {"KeyId": key, "Plaintext": base64.b64encode(b"p").decode()},
                            credentials=credentials)  # fmt: skip
    assert status == 200, body
    return str(body["CiphertextBlob"])


def test_filters_match_key_alias_operation_outcome_and_principal(kms: InProcessKMS) -> None:
    key = kms.call("CreateKey", {})[1]["KeyMetadata"]["KeyId"]
    kms.call("CreateAlias", {"AliasName": "alias/lookup", "TargetKeyId": key})
    _encrypt(kms, key)
    _encrypt(kms, "alias/lookup")
    mac = {"KeyId": key, "Message": base64.b64encode(b"m").decode(), "MacAlgorithm": "HMAC_SHA_256"}
    assert kms.call("GenerateMac", mac)[0] == 400  # refused after the key was resolved: the record names it
    encrypts = events_of(lookup(kms, KeyId="alias/lookup", Operation="encrypt"))
    assert [e["EventName"] for e in encrypts] == ["Encrypt", "Encrypt"]
    assert encrypts[0]["Seq"] > encrypts[1]["Seq"]  # newest first
    assert all(e["KeyId"] == key and e["Username"] == ids.user_arn(ACCOUNT_ID, "admin") for e in encrypts)
    failed = events_of(lookup(kms, KeyId=key, Outcome="failure"))
    assert [(e["EventName"], e["ErrorCode"]) for e in failed] == [("GenerateMac", "InvalidKeyUsageException")]
    by_name = events_of(lookup(kms, Principal="admin", Operation="CreateAlias"))
    assert len(by_name) == 1 and json.loads(by_name[0]["CloudTrailEvent"])["requestID"] == by_name[0]["RequestId"]
    assert events_of(lookup(kms, SourceIp="198.51.100.1")) == []


def test_pages_continue_below_the_last_seq_without_repeats(kms: InProcessKMS) -> None:
    key = kms.call("CreateKey", {})[1]["KeyMetadata"]["KeyId"]
    for _ in range(5):
        _encrypt(kms, key)
    seen: list[int] = []
    before = None
    while True:
        page = lookup(kms, KeyId=key, Operation="Encrypt", MaxResults=2, **({"BeforeSeq": before} if before else {}))
        seen.extend(e["Seq"] for e in events_of(page))
        assert page.result is not None
        before = page.result.get("NextBeforeSeq")
        if before is None:
            break
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)


def test_a_caller_sees_only_its_own_accounts_records(kms: InProcessKMS) -> None:
    admin_policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    own_key = kms.call("CreateKey", {})[1]["KeyMetadata"]["KeyId"]
    other, credentials = _user(kms, OTHER_ACCOUNT, "bob", admin_policy)
    theirs = kms.call("CreateKey", {}, credentials=credentials)[1]["KeyMetadata"]["KeyId"]
    _encrypt(kms, theirs, credentials)
    mine = events_of(lookup(kms, MaxResults=200))
    assert mine and all(json.loads(e["CloudTrailEvent"])["recipientAccountId"] == ACCOUNT_ID for e in mine)
    assert theirs not in json.dumps(mine) and own_key in json.dumps(mine)
    assert events_of(lookup(kms, KeyId=f"arn:aws:kms:us-east-1:{OTHER_ACCOUNT}:key/{theirs}")) == []
    own = events_of(lookup(kms, other, KeyId=theirs))
    assert {e["EventName"] for e in own} == {"CreateKey", "Encrypt"}


def test_the_caller_needs_cloudtrail_lookup_events(kms: InProcessKMS) -> None:
    kms_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    reader, _ = _user(kms, ACCOUNT_ID, "reader", kms_only)
    denied = lookup(kms, reader)
    assert denied.error is not None and denied.error.code == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in denied.error.message
    assert kms.record_of(denied.request_id)["eventSource"] == "cloudtrail.amazonaws.com"
    auditor, _ = _user(kms, ACCOUNT_ID, "auditor", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}]})  # fmt: skip
    allowed = lookup(kms, auditor)
    assert allowed.error is None
    record = kms.record_of(allowed.request_id)
    assert record["eventName"] == "LookupEvents" and "errorCode" not in record


@pytest.mark.parametrize(
    "params",
    [
        {"Nonsense": 1},
        {"MaxResults": 0},
        {"MaxResults": 201},
        {"MaxResults": True},
        {"Operation": "NoSuchThing"},
        {"Outcome": "maybe?"},
        {"KeyId": "not a key"},
        {"KeyId": "alias/missing"},
        {"StartTime": "yesterday"},
        {"SourceIp": "<script>"},
        {"Principal": "bad name with spaces"},
    ],
)
def test_bad_parameters_are_a_validation_exception(kms: InProcessKMS, params: dict[str, Any]) -> None:
    refused = lookup(kms, **params)
    assert refused.error is not None and refused.error.code == "ValidationException"
