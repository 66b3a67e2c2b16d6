"""AWS-managed keys (operations/managed_keys.py): created on first use of ``alias/aws/<service>``, KeyManager AWS,
rotated yearly, and refused every change (AWS developer guide, "AWS managed keys")."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from openkms.jobs.rotation import rotate_due_keys
from tests.operations.conftest import DAY, KMS, T0, counting_write_transactions


def _managed_keys(kms: KMS) -> list[str]:
    keys = kms.ok("ListKeys")["Keys"]
    return [k["KeyId"] for k in keys if kms.describe(k["KeyId"])["KeyManager"] == "AWS"]


def test_first_use_creates_one_key_and_alias_and_later_uses_reuse_it(kms: KMS) -> None:
    assert all(a["AliasName"] != "alias/aws/s3" for a in kms.ok("ListAliases")["Aliases"])
    with counting_write_transactions(kms.storage) as opened:
        meta = kms.describe("alias/aws/s3")
    assert opened == []  # the creation is the service's, not the call's
    assert meta["KeyManager"] == "AWS"
    assert meta["KeyState"] == "Enabled"
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["Description"] == "Default key that protects my S3 resources when no other key is defined"

    blob = kms.encrypt("alias/aws/s3", b"hello")
    assert kms.decrypt(blob) == b"hello"
    assert kms.describe("alias/aws/s3")["KeyId"] == meta["KeyId"]
    assert _managed_keys(kms) == [meta["KeyId"]]
    (alias,) = [a for a in kms.ok("ListAliases")["Aliases"] if a["AliasName"] == "alias/aws/s3"]
    assert alias["TargetKeyId"] == meta["KeyId"]

    status = kms.ok("GetKeyRotationStatus", KeyId=meta["KeyId"])
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 365
    assert status["NextRotationDate"] == T0 + 365 * DAY

    policy = json.loads(kms.ok("GetKeyPolicy", KeyId=meta["KeyId"])["Policy"])
    use, metadata = policy["Statement"]
    assert use["Principal"] == {"AWS": "*"}
    assert use["Condition"] == {"StringEquals": {"kms:CallerAccount": meta["AWSAccountId"]}}
    assert metadata["Action"] == ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"]


@pytest.mark.parametrize("operation", ["Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"])
def test_cryptographic_first_use_creates_the_key(kms: KMS, operation: str) -> None:
    params: dict[str, object] = {"KeyId": "alias/aws/ebs"}
    params.update({"Plaintext": b"x"} if operation == "Encrypt" else {"KeySpec": "AES_256"})
    result = kms.ok(operation, **params)
    assert result["KeyId"] == kms.describe("alias/aws/ebs")["Arn"]


def test_reencrypt_destination_is_created_on_first_use(kms: KMS) -> None:
    blob = kms.encrypt(kms.ok("CreateKey")["KeyMetadata"]["KeyId"], b"moved")
    result = kms.ok("ReEncrypt", CiphertextBlob=blob, DestinationKeyId="alias/aws/openkms")
    assert result["KeyId"] == kms.describe("alias/aws/openkms")["Arn"]


def test_unknown_service_and_other_operations_do_not_create(kms: KMS) -> None:
    kms.fails("DescribeKey", "NotFoundException", KeyId="alias/aws/not-a-service")
    kms.fails("GetPublicKey", "NotFoundException", KeyId="alias/aws/rds")
    assert _managed_keys(kms) == []


def test_concurrent_first_uses_create_one_key(kms: KMS) -> None:
    barrier = threading.Barrier(2)
    found: list[str] = []

    def use() -> None:
        barrier.wait()
        found.append(kms.describe("alias/aws/sqs")["KeyId"])

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and found[0] == found[1]
    assert _managed_keys(kms) == [found[0]]


def test_changes_to_a_managed_key_are_refused(kms: KMS) -> None:
    key_id = kms.describe("alias/aws/lambda")["KeyId"]
    own = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    kms.ok("CreateAlias", AliasName="alias/mine", TargetKeyId=own)
    policy = kms.ok("GetKeyPolicy", KeyId=key_id)["Policy"]
    refused = [
        ("PutKeyPolicy", {"PolicyName": "default", "Policy": policy}),
        ("ScheduleKeyDeletion", {}),
        ("DisableKey", {}),
        ("EnableKey", {}),
        ("EnableKeyRotation", {}),
        ("DisableKeyRotation", {}),
        ("RotateKeyOnDemand", {}),
        ("TagResource", {"Tags": [{"TagKey": "a", "TagValue": "b"}]}),
        ("UntagResource", {"TagKeys": ["a"]}),
        ("UpdateKeyDescription", {"Description": "mine now"}),
    ]
    for operation, params in refused:
        message = kms.fails(operation, "AccessDeniedException", KeyId=key_id, **params)
        assert f"kms:{operation}" in message, message
    kms.fails("CreateAlias", "AccessDeniedException", AliasName="alias/other", TargetKeyId=key_id)
    kms.fails("UpdateAlias", "AccessDeniedException", AliasName="alias/mine", TargetKeyId=key_id)
    kms.fails("DeleteAlias", "AccessDeniedException", AliasName="alias/aws/lambda")
    kms.fails("CreateAlias", "InvalidAliasNameException", AliasName="alias/aws/lambda2", TargetKeyId=own)
    meta = kms.describe(key_id)
    assert meta["KeyState"] == "Enabled"
    assert meta["Description"].startswith("Default key that protects my Lambda")


def test_the_rotation_job_rotates_it_every_year(kms: KMS) -> None:
    key_id = kms.describe("alias/aws/secretsmanager")["KeyId"]
    blob = kms.encrypt("alias/aws/secretsmanager", b"year one")
    kms.clock.set(T0 + 365 * DAY - 1)
    rotate_due_keys(kms.inner.services, kms.clock.now())
    assert kms.ok("ListKeyRotations", KeyId=key_id)["Rotations"] == []
    kms.clock.set(T0 + 365 * DAY)
    rotate_due_keys(kms.inner.services, kms.clock.now())
    (rotation,) = kms.ok("ListKeyRotations", KeyId=key_id)["Rotations"]
    assert rotation["RotationType"] == "AUTOMATIC"
    assert kms.ok("GetKeyRotationStatus", KeyId=key_id)["NextRotationDate"] == T0 + 730 * DAY
    assert kms.decrypt(blob) == b"year one"


def test_the_creation_is_recorded_as_the_service_s_own_event(kms: KMS) -> None:
    meta = kms.describe("alias/aws/sqs")
    with kms.storage.read() as tx:
        events = [json.loads(row.event) for row in tx.audit_range(0, 1_000)]
    created = [e for e in events if e["eventName"] == "CreateKey" and e["eventType"] == "AwsServiceEvent"]
    assert len(created) == 1
    assert created[0]["resources"][0]["ARN"] == meta["Arn"]
    assert created[0]["userIdentity"] == {"accountId": meta["AWSAccountId"], "invokedBy": "kms.amazonaws.com"}
    described = [e for e in events if e["eventName"] == "DescribeKey"]
    assert described and described[-1]["eventType"] == "AwsApiCall" and "errorCode" not in described[-1]


def test_an_alias_arn_in_the_caller_s_account_creates_and_one_in_another_account_does_not(kms: KMS) -> None:
    account = kms.ok("CreateKey")["KeyMetadata"]["AWSAccountId"]
    other = "444455556666" if account != "444455556666" else "777788889999"
    kms.fails("DescribeKey", "NotFoundException", KeyId=f"arn:aws:kms:us-east-1:{other}:alias/aws/kinesis")
    assert _managed_keys(kms) == []
    meta = kms.describe(f"arn:aws:kms:us-east-1:{account}:alias/aws/kinesis")
    assert meta["KeyManager"] == "AWS" and _managed_keys(kms) == [meta["KeyId"]]


def test_reencrypt_creates_a_source_named_by_alias_before_it_runs(kms: KMS) -> None:
    blob = kms.encrypt(kms.ok("CreateKey")["KeyMetadata"]["KeyId"], b"moved")
    # The source alias names a key that did not exist: created first, then the blob's key differs from it.
    kms.fails("ReEncrypt", "IncorrectKeyException", CiphertextBlob=blob, SourceKeyId="alias/aws/glue",
              DestinationKeyId="alias/aws/glue")  # fmt: skip
    assert [kms.describe(k)["Description"] for k in _managed_keys(kms)] == [
        "Default key that protects my Glue resources when no other key is defined"
    ]


def test_a_managed_key_known_to_exist_costs_later_calls_no_storage_access(kms: KMS) -> None:
    kms.describe("alias/aws/backup")  # created, then known
    own = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    kms.ok("CreateAlias", AliasName="alias/own", TargetKeyId=own)
    original = kms.storage.read
    opened: list[str] = []

    def counted() -> Any:
        opened.append("read")
        return original()

    setattr(kms.storage, "read", counted)  # noqa: B010 - shadows the method on this instance only
    try:
        kms.encrypt("alias/own", b"a customer key")
        customer = len(opened)
        kms.encrypt("alias/aws/backup", b"again")
    finally:
        delattr(kms.storage, "read")
    assert len(opened) - customer == customer  # as many as any alias: no look-up before the handler
