"""Deletion after the waiting period, with an injected clock (docs/tests.md L-1), on both engines.

Sources: AWS API reference ScheduleKeyDeletion ("a waiting period of 7-30 days ... After the waiting period
ends, KMS deletes the KMS key, its key material, and all KMS data associated with it, including all aliases")
and CancelKeyDeletion ("the key state of the KMS key is Disabled"); the key-state table (cryptographic
operations on a key pending deletion fail with KMSInvalidStateException).
"""

from __future__ import annotations

from typing import Any

import pytest

from openkms.errors import KMSInvalidStateException, NotFoundException, ValidationException
from openkms.jobs.deletion import delete_due_keys, destroy_if_due
from tests.jobs.conftest import DAY, START, Lifecycle, run_concurrently


def _schedule(lc: Lifecycle, key_id: str, days: int = 7) -> float:
    deletion_date: float = lc.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=days)["DeletionDate"]
    return deletion_date


@pytest.mark.parametrize("days", [6, 31])
def test_a_window_outside_7_to_30_days_is_refused(lifecycle: Lifecycle, days: int) -> None:
    key_id = lifecycle.new_key()
    with pytest.raises(ValidationException, match="pendingWindowInDays"):
        lifecycle.call("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=days)
    assert lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_every_cryptographic_operation_on_a_key_pending_deletion_is_an_invalid_state(lifecycle: Lifecycle) -> None:
    symmetric = lifecycle.new_key()
    other = lifecycle.new_key()
    blob = lifecycle.call("Encrypt", KeyId=symmetric, Plaintext=b"doomed")["CiphertextBlob"]
    rsa = lifecycle.new_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    signature = lifecycle.call("Sign", KeyId=rsa, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    hmac = lifecycle.new_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    mac = lifecycle.call("GenerateMac", KeyId=hmac, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    for key_id in (symmetric, rsa, hmac):
        _schedule(lifecycle, key_id)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("Encrypt", {"KeyId": symmetric, "Plaintext": b"x"}),
        ("Decrypt", {"CiphertextBlob": blob}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": other}),
        ("GenerateDataKey", {"KeyId": symmetric, "KeySpec": "AES_256"}),
        ("GenerateDataKeyWithoutPlaintext", {"KeyId": symmetric, "NumberOfBytes": 32}),
        ("GenerateDataKeyPair", {"KeyId": symmetric, "KeyPairSpec": "ECC_NIST_P256"}),
        ("GenerateDataKeyPairWithoutPlaintext", {"KeyId": symmetric, "KeyPairSpec": "ECC_NIST_P256"}),
        ("Sign", {"KeyId": rsa, "Message": b"m", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        ("Verify", {"KeyId": rsa, "Message": b"m", "Signature": signature, "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        ("GetPublicKey", {"KeyId": rsa}),
        ("GenerateMac", {"KeyId": hmac, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}),
        ("VerifyMac", {"KeyId": hmac, "Message": b"m", "Mac": mac, "MacAlgorithm": "HMAC_SHA_256"}),
        ("RotateKeyOnDemand", {"KeyId": symmetric}),
    ]
    for operation, params in calls:
        with pytest.raises(KMSInvalidStateException, match="is pending deletion"):
            lifecycle.call(operation, **params)


def test_cancellable_until_the_last_second_then_destroyed_at_the_window(lifecycle: Lifecycle) -> None:
    key_id = lifecycle.new_key()
    blob = lifecycle.call("Encrypt", KeyId=key_id, Plaintext=b"gone soon")["CiphertextBlob"]
    lifecycle.call("RotateKeyOnDemand", KeyId=key_id)
    lifecycle.call("CreateAlias", AliasName="alias/doomed", TargetKeyId=key_id)
    lifecycle.call("TagResource", KeyId=key_id, Tags=[{"TagKey": "t", "TagValue": "v"}])
    lifecycle.call("CreateGrant", KeyId=key_id, GranteePrincipal=lifecycle.principal.arn, Operations=["Decrypt"])
    deletion_date = _schedule(lifecycle, key_id)
    assert deletion_date == START + 7 * DAY

    lifecycle.clock.set(deletion_date - 1)
    delete_due_keys(lifecycle.svc, lifecycle.clock.now())
    assert lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    lifecycle.call("CancelKeyDeletion", KeyId=key_id)
    assert lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    lifecycle.call("EnableKey", KeyId=key_id)
    assert lifecycle.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"gone soon"

    deletion_date = _schedule(lifecycle, key_id)
    lifecycle.clock.set(deletion_date - 1)
    delete_due_keys(lifecycle.svc, lifecycle.clock.now())
    assert lifecycle.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    lifecycle.clock.set(deletion_date)
    delete_due_keys(lifecycle.svc, lifecycle.clock.now())

    with pytest.raises(NotFoundException):
        lifecycle.call("DescribeKey", KeyId=key_id)
    with pytest.raises(NotFoundException):
        lifecycle.call("DescribeKey", KeyId="alias/doomed")
    with pytest.raises(NotFoundException):
        lifecycle.call("CancelKeyDeletion", KeyId=key_id)
    assert lifecycle.call("ListAliases")["Aliases"] == []
    with lifecycle.storage.read() as tx:
        assert tx.get_key(key_id) is None
        assert tx.list_versions(key_id) == []
        assert tx.list_tags(key_id, None, 10) == []
        assert tx.list_grants(key_id, None, 10) == []


def test_keys_not_due_or_not_pending_are_left_alone(lifecycle: Lifecycle) -> None:
    later = lifecycle.new_key()
    _schedule(lifecycle, later, 30)
    sooner = lifecycle.new_key()
    _schedule(lifecycle, sooner, 7)
    kept = lifecycle.new_key()
    lifecycle.clock.set(START + 8 * DAY)
    delete_due_keys(lifecycle.svc, lifecycle.clock.now())
    assert lifecycle.call("DescribeKey", KeyId=later)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert lifecycle.call("DescribeKey", KeyId=kept)["KeyMetadata"]["KeyState"] == "Enabled"
    with pytest.raises(NotFoundException):
        lifecycle.call("DescribeKey", KeyId=sooner)
    assert not destroy_if_due(lifecycle.svc, kept, START + 1000 * DAY)  # never scheduled


def test_concurrent_runs_destroy_each_key_once(lifecycle: Lifecycle) -> None:
    key_ids = [lifecycle.new_key() for _ in range(5)]
    for key_id in key_ids:
        _schedule(lifecycle, key_id)
    now = START + 7 * DAY
    results = run_concurrently(lambda key_id: destroy_if_due(lifecycle.svc, key_id, now), key_ids)
    assert results.count(True) == len(key_ids)
