"""Key rotation over HTTP with boto3, on both engines (docs/tests.md L-4; the parts that need time to pass run with an
injected clock in tests/jobs/test_rotation.py and with a moved server clock in test_lifecycle_jobs.py).

Expectations are AWS's: API reference for EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand ("a maximum of 25 times per KMS key") and ListKeyRotations; the RotationsListEntry shape;
developer guide "Rotate AWS KMS keys" (what may rotate, what a rotation keeps).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from tests.e2e.kmsapi import (
    assert_close,
    expect_error,
    key_arn,
    message,
    new_key,
    raw_client,
    unique_alias,
    utcnow,
    walk_pages,
)
from tests.e2e.principals import allow, make_user
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

DAY = datetime.timedelta(days=1)
ATTEMPTS = 100
LIMIT = 25  # AWS: "You can perform on-demand key rotation a maximum of 25 times per KMS key."


@pytest.fixture
def raw(server: ServerProcess) -> Any:
    return raw_client(server)


def test_rotation_is_off_until_enabled_and_defaults_to_365_days(kms: Any, key_id: str) -> None:
    assert kms.get_key_rotation_status(KeyId=key_id) | {"ResponseMetadata": None} == {
        "KeyId": key_arn(key_id),
        "KeyRotationEnabled": False,
        "ResponseMetadata": None,
    }
    now = utcnow()
    assert kms.enable_key_rotation(KeyId=key_arn(key_id))["ResponseMetadata"]["HTTPStatusCode"] == 200
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 365
    assert_close(status["NextRotationDate"], now + 365 * DAY)
    assert "OnDemandRotationStartDate" not in status  # our on-demand rotations complete inside the call
    kms.disable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False
    assert "RotationPeriodInDays" not in status and "NextRotationDate" not in status


def test_rotation_period_is_90_to_2560_days(kms: Any, raw: Any, key_id: str) -> None:
    for days in (90, 2560, 400):
        now = utcnow()
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=days)
        status = kms.get_key_rotation_status(KeyId=key_id)
        assert status["RotationPeriodInDays"] == days
        assert_close(status["NextRotationDate"], now + days * DAY)
    for days in (89, 2561):
        exc = expect_error(raw.enable_key_rotation, "ValidationException", KeyId=key_id, RotationPeriodInDays=days)
        assert "rotationPeriodInDays" in message(exc)
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 400


def test_rotation_operations_take_key_ids_and_arns_not_aliases(kms: Any, key_id: str) -> None:
    alias = unique_alias("rotation")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    for call in (
        kms.enable_key_rotation,
        kms.disable_key_rotation,
        kms.get_key_rotation_status,
        kms.rotate_key_on_demand,
        kms.list_key_rotations,
    ):
        expect_error(call, "InvalidArnException", KeyId=alias)  # as AWS answers an alias here
        expect_error(call, "NotFoundException", KeyId="0c2d8c8a-48c3-4d2f-9c0a-0c0c0c0c0c0c")


def test_keys_that_cannot_rotate(kms: Any) -> None:
    """Asymmetric and HMAC keys: automatic and on-demand rotation are refused (UnsupportedOperationException without
    a message, as AWS answers); disabling rotation, which is off, succeeds; their status is false."""
    for spec, usage in (("ECC_NIST_P256", "SIGN_VERIFY"), ("HMAC_256", "GENERATE_VERIFY_MAC")):
        key_id = new_key(kms, KeySpec=spec, KeyUsage=usage)
        for call in (kms.enable_key_rotation, kms.rotate_key_on_demand, kms.list_key_rotations):
            # No message (tests/e2e/test_aws_recorded_errors.py checks the body).
            assert message(expect_error(call, "UnsupportedOperationException", KeyId=key_id)) == ""
        kms.disable_key_rotation(KeyId=key_id)
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_key_state_rules(kms: Any, key_id: str) -> None:
    """Key-state table: Disabled -> DisabledException; PendingDeletion -> KMSInvalidStateException. The status
    can always be read; a key pending deletion reports false until the deletion is cancelled."""
    kms.enable_key_rotation(KeyId=key_id)
    kms.disable_key(KeyId=key_id)
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.rotate_key_on_demand):
        assert message(expect_error(call, "DisabledException", KeyId=key_id)) == f"{key_arn(key_id)} is disabled."
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.rotate_key_on_demand):
        exc = expect_error(call, "KMSInvalidStateException", KeyId=key_id)
        assert message(exc) == f"{key_arn(key_id)} is pending deletion."
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_100_on_demand_rotations_the_26th_is_refused_and_every_version_decrypts(kms: Any) -> None:
    """docs/tests.md L-4 over HTTP: 100 attempts on one key; 25 succeed, then LimitExceededException every time.
    Ciphertexts made under every version still decrypt, each with its own material id; new encryptions use
    the newest version; ListKeyRotations agrees with DescribeKey; aliases, policy and grants are unchanged."""
    key_id = new_key(kms, "on-demand")
    alias = unique_alias("on-demand")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    grant_id = kms.create_grant(
        KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_ID}:user/admin", Operations=["Decrypt"]
    )["GrantId"]
    policy = kms.get_key_policy(KeyId=key_id)["Policy"]
    before = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    blobs = [(kms.encrypt(KeyId=alias, Plaintext=b"v0")["CiphertextBlob"], b"v0")]
    outcomes: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            assert kms.rotate_key_on_demand(KeyId=key_arn(key_id))["KeyId"] == key_arn(key_id)
            outcomes.append("ok")
            plaintext = f"v{attempt}".encode()
            blobs.append((kms.encrypt(KeyId=alias, Plaintext=plaintext)["CiphertextBlob"], plaintext))
        except kms.exceptions.LimitExceededException as exc:
            outcomes.append("limit")
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert outcomes == ["ok"] * LIMIT + ["limit"] * (ATTEMPTS - LIMIT)

    material_ids = [kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] for blob, _ in blobs]
    assert [kms.decrypt(CiphertextBlob=blob)["Plaintext"] for blob, _ in blobs] == [p for _, p in blobs]
    assert len(set(material_ids)) == LIMIT + 1, "each version has its own material"
    after = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert material_ids[0] == before["CurrentKeyMaterialId"]
    assert material_ids[-1] == after["CurrentKeyMaterialId"]
    fresh = kms.encrypt(KeyId=key_id, Plaintext=b"newest")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=fresh)["KeyMaterialId"] == after["CurrentKeyMaterialId"]

    pages = walk_pages(kms.list_key_rotations, "Rotations", 7, KeyId=key_id)
    rotations = [entry for page in pages for entry in page["Rotations"]]
    assert [r["KeyMaterialId"] for r in rotations] == material_ids[1:]
    assert {r["RotationType"] for r in rotations} == {"ON_DEMAND"}
    assert {r["KeyId"] for r in rotations} == {key_id}
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT"] * (LIMIT - 1) + ["CURRENT"]
    dates = [r["RotationDate"] for r in rotations]
    assert dates == sorted(dates)
    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=1000)
    first = everything["Rotations"][0]
    assert first["KeyMaterialId"] == material_ids[0] and "RotationDate" not in first and "RotationType" not in first
    assert len(everything["Rotations"]) == LIMIT + 1

    assert {**after, "CurrentKeyMaterialId": None} == {**before, "CurrentKeyMaterialId": None}
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == policy
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]] == [grant_id]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key_id


def test_list_key_rotations_refuses_a_foreign_marker(kms: Any, raw: Any, key_id: str) -> None:
    kms.rotate_key_on_demand(KeyId=key_id)
    kms.rotate_key_on_demand(KeyId=key_id)
    marker = kms.list_key_rotations(KeyId=key_id, Limit=1)["NextMarker"]
    other = new_key(kms, "other")
    expect_error(kms.list_key_rotations, "InvalidMarkerException", KeyId=other, Marker=marker)
    expect_error(kms.list_keys, "InvalidMarkerException", Marker=marker)
    expect_error(raw.list_key_rotations, "ValidationException", KeyId=key_id, Limit=0)


def test_every_rotation_operation_is_authorised_as_its_own_action(server: ServerProcess, kms: Any) -> None:
    key_id = new_key(kms, "authorised")
    nobody = make_user(server, "rot-nobody")
    calls = {
        "EnableKeyRotation": nobody.kms.enable_key_rotation,
        "DisableKeyRotation": nobody.kms.disable_key_rotation,
        "GetKeyRotationStatus": nobody.kms.get_key_rotation_status,
        "RotateKeyOnDemand": nobody.kms.rotate_key_on_demand,
        "ListKeyRotations": nobody.kms.list_key_rotations,
    }
    for action, call in calls.items():
        exc = expect_error(call, "AccessDeniedException", KeyId=key_id)
        assert f"kms:{action}" in message(exc)
    only_status = make_user(server, "rot-status", policy=allow("kms:GetKeyRotationStatus"))
    assert only_status.kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    expect_error(only_status.kms.enable_key_rotation, "AccessDeniedException", KeyId=key_id)


def test_the_rotation_period_condition_key_reaches_the_key_policy(kms: Any) -> None:
    """kms:RotationPeriodInDays ("further constrain the values that principals can specify in the
    RotationPeriodInDays parameter"): a key policy denying periods over 180 days."""
    root = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    deny = {
        "Sid": "ShortPeriodsOnly",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:EnableKeyRotation",
        "Resource": "*",
        "Condition": {"NumericGreaterThan": {"kms:RotationPeriodInDays": "180"}},
    }
    policy = json.dumps({"Version": "2012-10-17", "Statement": [root, deny]})
    key_id = new_key(kms, "condition", Policy=policy)
    exc = expect_error(kms.enable_key_rotation, "AccessDeniedException", KeyId=key_id, RotationPeriodInDays=181)
    assert "explicit deny" in message(exc)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 180
