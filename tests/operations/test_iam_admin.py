"""IAM changes as operations (operations/iam_admin.py), through the one operation runner.

- Only the account's operator (its root, run from the command line) may change identities: an IAM user, even
  one whose policy allows ``"*"``, is refused with IAM's AccessDenied wording, changes nothing, and the refusal
  is recorded (errorCode, its own identity, ``iam.amazonaws.com``).
- The operator acts in its own account only: another account's access key is as if it did not exist.
- The record is IAM's: ``Root`` with the operator's name, ``us-east-1``, readOnly false, responseElements read
  in the change's transaction; CreateAccessKey's secret is in the result and never in the record.

On both engines (the ``kms`` fixture of tests/operations/conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

from openkms import identity, ids
from openkms.context import Principal
from openkms.operations import iam_admin
from openkms.seal import keyfile
from openkms.seal.root_key import initialize_with_keyfile
from openkms.server.operation_runner import Caller, Outcome
from tests.inprocess import ACCOUNT_ID
from tests.operations.conftest import KMS

VIA = Caller("operator-host", "openkms-cli/test", False)
VIA_FIELDS = ("us-east-1", "operator-host", "openkms-cli/test")
OTHER = "444455556666"


def _admin(kms: KMS) -> Principal:
    """The in-process administrator: an IAM user whose policy allows every action."""
    return Principal(ACCOUNT_ID, ids.user_arn(ACCOUNT_ID, "admin"), "admin", kms.inner.credentials.access_key)


def _run(kms: KMS, principal: Principal, operation: str, params: dict[str, Any]) -> Outcome[dict[str, Any]]:
    return kms.inner.run(kms.inner.app.runner.run_as(principal, operation, params, VIA, "us-east-1"))


def _users(kms: KMS) -> list[str]:
    with kms.storage.read() as tx:
        return [user.user_name for user in tx.list_users(ACCOUNT_ID)]


def test_an_iam_user_may_not_run_iam_operations_and_its_attempt_is_recorded(kms: KMS) -> None:
    for operation, params in (
        ("CreateUser", {"userName": "mallory"}),
        ("PutUserPolicy", {"userName": "admin", "policyName": "p", "policyDocument": identity.ADMINISTRATOR_POLICY}),
        ("CreateAccessKey", {"userName": "admin"}),
        ("CreateAccount", {}),
    ):
        outcome = _run(kms, _admin(kms), operation, params)
        assert outcome.error is not None and outcome.error.code == "AccessDeniedException", operation
        assert outcome.error.message.startswith(
            f"User: arn:aws:iam::{ACCOUNT_ID}:user/admin is not authorized to perform: iam:{operation} on resource: "
        )
        record = kms.inner.record_of(outcome.request_id)
        assert (record["eventSource"], record["eventName"], record["errorCode"]) == (
            "iam.amazonaws.com",
            operation,
            "AccessDeniedException",
        )
        assert record["userIdentity"]["type"] == "IAMUser" and record["userIdentity"]["userName"] == "admin"
        assert record["requestParameters"] == params and record["responseElements"] is None
    assert _users(kms) == ["admin"]
    with kms.storage.read() as tx:
        assert len(tx.list_access_keys(ACCOUNT_ID, "admin")) == 1
        assert list(tx.list_user_policies(ACCOUNT_ID, "admin")) == [identity.ADMINISTRATOR_POLICY_NAME]


def test_the_refusal_names_the_resource_only_when_well_formed(kms: KMS) -> None:
    named = _run(kms, _admin(kms), "CreateUser", {"userName": "mallory"})
    assert named.error is not None and named.error.message.endswith(
        f"on resource: arn:aws:iam::{ACCOUNT_ID}:user/mallory because no identity-based policy allows the "
        "iam:CreateUser action"
    )
    garbage = _run(kms, _admin(kms), "CreateUser", {"userName": "<script>" * 100})
    assert garbage.error is not None and "<script>" not in garbage.error.message
    assert f"on resource: arn:aws:iam::{ACCOUNT_ID}:root " in garbage.error.message


def test_a_root_named_by_hand_is_not_the_operator(kms: KMS) -> None:
    """The root's ARN on an IAM user principal is not enough: the operator is a kind of principal of its own."""
    forged = Principal(ACCOUNT_ID, ids.root_arn(ACCOUNT_ID), "admin", kms.inner.credentials.access_key)
    outcome = _run(kms, forged, "CreateUser", {"userName": "mallory"})
    assert outcome.error is not None and outcome.error.code == "AccessDeniedException"
    assert _users(kms) == ["admin"]


def test_the_operator_changes_identities_and_the_record_is_iams(kms: KMS) -> None:
    operator = iam_admin.operator(ACCOUNT_ID, "ops")
    outcome = _run(kms, operator, "CreateUser", {"userName": "carol"})
    assert outcome.error is None and outcome.result is not None
    user = outcome.result["User"]
    assert user["UserName"] == "carol" and user["Arn"] == ids.user_arn(ACCOUNT_ID, "carol")
    record = kms.inner.record_of(outcome.request_id)
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT_ID,
        "arn": ids.root_arn(ACCOUNT_ID),
        "accountId": ACCOUNT_ID,
        "userName": "ops",
    }
    assert (record["awsRegion"], record["sourceIPAddress"], record["userAgent"]) == VIA_FIELDS
    assert record["readOnly"] is False and "errorCode" not in record
    assert record["responseElements"]["user"]["userId"] == user["UserId"]
    assert _users(kms) == ["admin", "carol"]


def test_create_access_key_answers_the_secret_and_records_only_the_id(kms: KMS) -> None:
    initialize_with_keyfile(kms.storage, kms.inner.services.settings.data_dir / keyfile.KEYFILE_NAME, kms.clock)
    outcome = _run(kms, iam_admin.operator(ACCOUNT_ID, "ops"), "CreateAccessKey", {"userName": "admin"})
    assert outcome.error is None and outcome.result is not None
    key = outcome.result["AccessKey"]
    secret = key["SecretAccessKey"]
    assert len(secret) == 40
    with kms.storage.read() as tx:
        rows = tx.audit_by_request(outcome.request_id)
    assert len(rows) == 1 and secret not in rows[0].event
    assert json.loads(rows[0].event)["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]


def test_the_operator_of_another_account_cannot_touch_this_ones_access_keys(kms: KMS) -> None:
    identity.ensure_account(kms.storage, OTHER, kms.clock)
    key_id = kms.inner.credentials.access_key
    for operation, params in (
        ("UpdateAccessKey", {"accessKeyId": key_id, "status": "Inactive"}),
        ("DeleteAccessKey", {"accessKeyId": key_id}),
    ):
        outcome = _run(kms, iam_admin.operator(OTHER, "ops"), operation, params)
        assert outcome.error is not None and outcome.error.code == "NotFoundException", operation
    with kms.storage.read() as tx:
        found = tx.get_access_key(key_id)
    assert found is not None and found.status == identity.ACTIVE


def test_parameters_are_validated(kms: KMS) -> None:
    operator = iam_admin.operator(ACCOUNT_ID, "ops")
    for operation, params, code in (
        ("CreateUser", {}, "ValidationException"),
        ("CreateUser", {"userName": "x", "path": "/"}, "ValidationException"),
        ("CreateUser", {"userName": 7}, "ValidationException"),
        ("CreateUser", {"userName": "no spaces"}, "ValidationException"),
        ("CreateUser", {"userName": "admin"}, "AlreadyExistsException"),
        ("DeleteUser", {"userName": "nobody"}, "NotFoundException"),
        ("TagUser", {"userName": "admin", "tags": [{"key": "a"}, {"key": "a"}]}, "ValidationException"),
        ("UntagUser", {"userName": "admin", "tagKeys": "a"}, "ValidationException"),
        ("CreateAccount", {"accountId": OTHER}, "ValidationException"),
    ):
        outcome = _run(kms, operator, operation, params)
        assert outcome.error is not None and outcome.error.code == code, (operation, params, outcome.error)
    assert _users(kms) == ["admin"]


def test_the_operator_acts_on_identities_only_never_on_keys(kms: KMS) -> None:
    """The operator principal is no IAM user: no key policy or identity policy speaks for it, even where an IAM
    user of the same name ("admin") is allowed everything."""
    key_id = _run(kms, _admin(kms), "CreateKey", {})
    assert key_id.result is not None
    operator = iam_admin.operator(ACCOUNT_ID, "admin")
    for operation, params in (
        ("DescribeKey", {"KeyId": key_id.result["KeyMetadata"]["KeyId"]}),
        ("CreateKey", {}),
        ("ListKeys", {}),
    ):
        outcome = _run(kms, operator, operation, params)
        assert outcome.error is not None and outcome.error.code == "AccessDeniedException", operation
