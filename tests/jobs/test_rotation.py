"""Rotation rules with an injected clock (docs/tests.md L-4, the parts that need time to pass), on both engines.

Sources: AWS API reference (EnableKeyRotation, RotateKeyOnDemand, GetKeyRotationStatus, ListKeyRotations) and
the developer guide's "Rotate AWS KMS keys": rotation happens RotationPeriodInDays (90-2560, default 365) after
it is enabled and every period after that; disabled and pending-deletion keys are not rotated, and one whose
date passed rotates at once when it is enabled again; on-demand rotations leave the schedule alone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from openkms.errors import (
    DisabledException,
    KMSInvalidStateException,
    LimitExceededException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.jobs.rotation import rotate_due_keys
from openkms.operations.rotation import rotate_if_due
from tests.byok import wrap
from tests.jobs.conftest import ACCOUNT_ID, DAY, REGION, START, Lifecycle, run_concurrently


def _rotations(lc: Lifecycle, key_id: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = lc.call("ListKeyRotations", KeyId=key_id, **params)["Rotations"]
    return entries


def _run_job(lc: Lifecycle) -> None:
    rotate_due_keys(lc.svc, lc.clock.now())


@pytest.mark.parametrize("period", [90, 2560])
def test_automatic_rotation_happens_exactly_at_the_period(lifecycle: Lifecycle, period: int) -> None:
    key_id = lifecycle.new_key()
    blob = lifecycle.call("Encrypt", KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=period)
    status = lifecycle.call("GetKeyRotationStatus", KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == period
    assert status["NextRotationDate"] == START + period * DAY

    lifecycle.clock.set(START + period * DAY - 1)
    _run_job(lifecycle)
    assert _rotations(lifecycle, key_id) == []

    lifecycle.clock.set(START + period * DAY)
    _run_job(lifecycle)
    _run_job(lifecycle)  # a second run at the same time changes nothing
    (rotation,) = _rotations(lifecycle, key_id)
    assert rotation["RotationType"] == "AUTOMATIC"
    assert rotation["RotationDate"] == START + period * DAY
    assert rotation["KeyMaterialState"] == "CURRENT"
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["NextRotationDate"] == START + 2 * period * DAY

    decrypted = lifecycle.call("Decrypt", CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"before"
    assert decrypted["KeyMaterialId"] != rotation["KeyMaterialId"]
    fresh = lifecycle.call("Encrypt", KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert lifecycle.call("Decrypt", CiphertextBlob=fresh)["KeyMaterialId"] == rotation["KeyMaterialId"]


@pytest.mark.parametrize("period", [89, 2561, 0, -1])
def test_rotation_period_outside_90_to_2560_is_refused(lifecycle: Lifecycle, period: int) -> None:
    key_id = lifecycle.new_key()
    with pytest.raises(ValidationException):
        lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=period)
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is False


def test_default_period_is_365_days(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id)
    status = lifecycle.call("GetKeyRotationStatus", KeyId=key_id)
    assert (status["RotationPeriodInDays"], status["NextRotationDate"]) == (365, START + 365 * DAY)


def test_a_key_due_three_periods_ago_rotates_once_and_counts_from_now(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    now = START + 4 * 90 * DAY + 1234
    lifecycle.clock.set(now)
    for _ in range(3):
        _run_job(lifecycle)
    assert [r["RotationDate"] for r in _rotations(lifecycle, key_id)] == [now]
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["NextRotationDate"] == now + 90 * DAY


def test_a_disabled_key_is_not_rotated_until_enabled_again(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    lifecycle.call("DisableKey", KeyId=key_id)
    lifecycle.clock.set(START + 100 * DAY)
    _run_job(lifecycle)
    assert _rotations(lifecycle, key_id) == []
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is True  # unchanged
    lifecycle.call("EnableKey", KeyId=key_id)
    _run_job(lifecycle)
    assert len(_rotations(lifecycle, key_id)) == 1


def test_pending_deletion_shows_false_and_cancelling_restores_the_status(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    lifecycle.clock.set(START + 85 * DAY)
    lifecycle.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=30)
    lifecycle.clock.set(START + 95 * DAY)
    _run_job(lifecycle)
    assert _rotations(lifecycle, key_id) == []
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id) == {
        "KeyId": f"arn:aws:kms:us-east-1:111122223333:key/{key_id}",
        "KeyRotationEnabled": False,
    }
    for operation in ("EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"):
        with pytest.raises(KMSInvalidStateException, match="is pending deletion"):
            lifecycle.call(operation, KeyId=key_id)
    lifecycle.call("CancelKeyDeletion", KeyId=key_id)
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is True
    lifecycle.call("EnableKey", KeyId=key_id)
    _run_job(lifecycle)
    assert len(_rotations(lifecycle, key_id)) == 1


def test_disabled_keys_refuse_rotation_changes_but_report_their_status(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("DisableKey", KeyId=key_id)
    for operation in ("EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"):
        with pytest.raises(DisabledException, match="is disabled"):
            lifecycle.call(operation, KeyId=key_id)
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is False
    assert _rotations(lifecycle, key_id) == []


def test_on_demand_rotation_leaves_the_automatic_schedule_alone(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    lifecycle.clock.set(START + 10 * DAY)
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}"
    assert lifecycle.call("RotateKeyOnDemand", KeyId=key_id) == {"KeyId": arn}  # the ARN, as AWS answers
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["NextRotationDate"] == START + 90 * DAY
    lifecycle.clock.set(START + 90 * DAY)
    _run_job(lifecycle)
    assert [(r["RotationType"], r["RotationDate"]) for r in _rotations(lifecycle, key_id)] == [
        ("ON_DEMAND", START + 10 * DAY),
        ("AUTOMATIC", START + 90 * DAY),
    ]


def test_the_on_demand_limit_is_a_setting(lifecycle: Lifecycle) -> None:
    limited = lifecycle.with_settings(on_demand_rotation_limit=3)
    key_id = limited.new_key()
    for _ in range(3):
        limited.call("RotateKeyOnDemand", KeyId=key_id)
    with pytest.raises(LimitExceededException):
        limited.call("RotateKeyOnDemand", KeyId=key_id)
    assert len(_rotations(limited, key_id)) == 3


def test_disabling_rotation_stops_the_job(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    lifecycle.call("DisableKeyRotation", KeyId=key_id)
    assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is False
    lifecycle.clock.set(START + 1000 * DAY)
    _run_job(lifecycle)
    assert _rotations(lifecycle, key_id) == []


def test_keys_that_cannot_rotate_are_refused(lifecycle: Lifecycle) -> None:
    for spec, usage in (
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ):
        key_id = lifecycle.new_key(KeySpec=spec, KeyUsage=usage)
        for operation in ("EnableKeyRotation", "RotateKeyOnDemand", "ListKeyRotations"):
            with pytest.raises(UnsupportedOperationException) as refused:  # AWS's answer has no message (issue 18)
                lifecycle.call(operation, KeyId=key_id)
            assert refused.value.message == ""
        assert lifecycle.call("DisableKeyRotation", KeyId=key_id) == {}  # off already: AWS answers success
        assert lifecycle.call("GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is False


def test_rotation_changes_only_the_backing_material(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key(Description="keep", Tags=[{"TagKey": "team", "TagValue": "a"}])
    lifecycle.call("CreateAlias", AliasName="alias/rotating", TargetKeyId=key_id)
    grant = lifecycle.call(
        "CreateGrant", KeyId=key_id, GranteePrincipal=lifecycle.principal.arn, Operations=["Decrypt"]
    )
    before = lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]
    policy = lifecycle.call("GetKeyPolicy", KeyId=key_id)["Policy"]
    lifecycle.call("RotateKeyOnDemand", KeyId=key_id)
    after = lifecycle.call("DescribeKey", KeyId="alias/rotating")["KeyMetadata"]
    assert after["CurrentKeyMaterialId"] != before["CurrentKeyMaterialId"]
    assert {**after, "CurrentKeyMaterialId": None} == {**before, "CurrentKeyMaterialId": None}
    assert lifecycle.call("GetKeyPolicy", KeyId=key_id)["Policy"] == policy
    grants = lifecycle.call("ListGrants", KeyId=key_id)["Grants"]
    assert [g["GrantId"] for g in grants] == [grant["GrantId"]]
    assert lifecycle.call("ListResourceTags", KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]


def test_list_key_rotations_pages_and_includes_the_first_material_on_request(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    first = lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    for day in range(1, 8):
        lifecycle.clock.set(START + day * DAY)
        lifecycle.call("RotateKeyOnDemand", KeyId=key_id)
    pages: list[list[dict[str, Any]]] = []
    marker: str | None = None
    while True:
        response = lifecycle.call("ListKeyRotations", KeyId=key_id, Limit=3, **({"Marker": marker} if marker else {}))
        pages.append(response["Rotations"])
        if not response["Truncated"]:
            assert "NextMarker" not in response
            break
        marker = response["NextMarker"]
    assert [len(p) for p in pages] == [3, 3, 1]
    listed = [entry for page in pages for entry in page]
    assert [e["RotationDate"] for e in listed] == [START + d * DAY for d in range(1, 8)]
    assert [e["KeyMaterialState"] for e in listed] == ["NON_CURRENT"] * 6 + ["CURRENT"]
    current = lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert listed[-1]["KeyMaterialId"] == current
    everything = _rotations(lifecycle, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert everything[0] == {"KeyId": key_id, "KeyMaterialId": first, "KeyMaterialState": "NON_CURRENT"}
    assert everything[1:] == listed


def test_concurrent_runs_of_one_step_rotate_once(lifecycle: Lifecycle) -> None:
    """Two workers whose leases overlapped run the same step at the same moment: the row lock and the re-check
    let exactly one of them rotate."""
    key_ids = [lifecycle.new_key() for _ in range(5)]
    for key_id in key_ids:
        lifecycle.call("EnableKeyRotation", KeyId=key_id, RotationPeriodInDays=90)
    now = START + 90 * DAY
    results = run_concurrently(lambda key_id: rotate_if_due(lifecycle.svc, key_id, now), key_ids)
    assert results.count(True) == len(key_ids)
    lifecycle.clock.set(now)
    for key_id in key_ids:
        assert len(_rotations(lifecycle, key_id)) == 1


def test_the_on_demand_limit_counts_completed_rotations_of_imported_material(lifecycle: Lifecycle) -> None:
    """Staged (PENDING_ROTATION) material is not a rotation; each RotateKeyOnDemand into one is."""
    limited = lifecycle.with_settings(on_demand_rotation_limit=1)
    key_id = limited.call("CreateKey", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]

    def import_material(**params: Any) -> None:
        got = limited.call(
            "GetParametersForImport", KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
        )
        encrypted = wrap(got["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
        limited.call("ImportKeyMaterial", KeyId=key_id, ImportToken=got["ImportToken"], EncryptedKeyMaterial=encrypted,
                     ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE", **params)  # fmt: skip

    import_material()
    import_material(ImportType="NEW_KEY_MATERIAL")
    import_material(ImportType="NEW_KEY_MATERIAL")
    limited.call("RotateKeyOnDemand", KeyId=key_id)
    with pytest.raises(LimitExceededException):
        limited.call("RotateKeyOnDemand", KeyId=key_id)
    assert [r["RotationType"] for r in _rotations(limited, key_id)] == ["ON_DEMAND"]
