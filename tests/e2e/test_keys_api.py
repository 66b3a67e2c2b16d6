"""Key management over HTTP with boto3: CreateKey, DescribeKey, ListKeys, EnableKey/DisableKey,
ScheduleKeyDeletion/CancelKeyDeletion and UpdateKeyDescription, on every storage engine.

AWS is the reference: the KMS API Reference pages of each operation and "Key states of AWS KMS keys"
(https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html), whose table says which operations a
Disabled or PendingDeletion key refuses and with which error. EnableKey, DisableKey, Schedule/CancelKeyDeletion
and UpdateKeyDescription take a key id or key ARN only; DescribeKey also takes an alias name or alias ARN.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from tests.e2e.kmsapi import (
    GARBAGE_KEY_ID,
    KEY_ID_RE,
    alias_arn,
    assert_close,
    expect_error,
    key_arn,
    new_key,
    raw_client,
    unique_alias,
    unknown_key_id,
    utcnow,
    walk_pages,
)
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

DAY = datetime.timedelta(days=1)


@pytest.fixture
def raw(server: ServerProcess) -> Any:
    return raw_client(server)


def _meta(kms: Any, key_ref: str) -> dict[str, Any]:
    meta: dict[str, Any] = kms.describe_key(KeyId=key_ref)["KeyMetadata"]
    return meta


# -- CreateKey ------------------------------------------------------------------------------------------------


def test_create_key_defaults_to_an_enabled_symmetric_encryption_key(kms: Any) -> None:
    """CreateKey with no parameters: SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, AWS_KMS origin, customer managed."""
    before = utcnow()
    meta = kms.create_key()["KeyMetadata"]
    assert KEY_ID_RE.match(meta["KeyId"]), meta
    assert meta["Arn"] == key_arn(meta["KeyId"])
    assert meta["AWSAccountId"] == ACCOUNT_ID
    assert_close(meta["CreationDate"], before)
    assert meta["Enabled"] is True
    assert meta["KeyState"] == "Enabled"
    assert meta["Description"] == ""
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["MultiRegion"] is False
    for absent in ("DeletionDate", "PendingDeletionWindowInDays", "ValidTo", "SigningAlgorithms", "MacAlgorithms"):
        assert absent not in meta, (absent, meta)
    assert _meta(kms, meta["KeyId"]) == meta


def test_create_key_with_description_tags_policy_and_usage(kms: Any) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    tags = [{"TagKey": "env", "TagValue": "e2e"}, {"TagKey": "team", "TagValue": ""}]
    meta = kms.create_key(
        Description="described key",
        Tags=tags,
        Policy=policy,
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
    )["KeyMetadata"]
    assert meta["Description"] == "described key"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert _meta(kms, meta["Arn"])["Description"] == "described key"
    listed = kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]
    assert sorted(listed, key=lambda t: t["TagKey"]) == tags


def test_create_key_with_legacy_customer_master_key_spec(kms: Any) -> None:
    meta = kms.create_key(CustomerMasterKeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"


def test_create_key_refuses_a_malformed_policy(kms: Any) -> None:
    expect_error(lambda: kms.create_key(Policy="this is not json"), "MalformedPolicyDocumentException")


def test_create_key_refuses_reserved_tag_keys(kms: Any) -> None:
    """Tag keys beginning with aws: are reserved for AWS (CreateKey: TagException)."""
    expect_error(lambda: kms.create_key(Tags=[{"TagKey": "aws:owner", "TagValue": "x"}]), "TagException")


def test_create_key_refuses_a_usage_the_symmetric_spec_cannot_have(kms: Any) -> None:
    """A SYMMETRIC_DEFAULT key can only be ENCRYPT_DECRYPT."""
    expect_error(lambda: kms.create_key(KeyUsage="SIGN_VERIFY"), "ValidationException")


# -- DescribeKey ----------------------------------------------------------------------------------------------


def test_describe_key_by_every_key_id_form(kms: Any, key_id: str) -> None:
    """DescribeKey takes a key id, key ARN, alias name or alias ARN."""
    alias = unique_alias("describe")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    for ref in (key_id, key_arn(key_id), alias, alias_arn(alias)):
        meta = _meta(kms, ref)
        assert meta["KeyId"] == key_id, ref
        assert meta["Arn"] == key_arn(key_id), ref


def test_describe_key_unknown_or_malformed_is_not_found(kms: Any) -> None:
    missing = unknown_key_id()
    for ref in (
        missing,
        key_arn(missing),
        unique_alias("missing"),
        alias_arn(unique_alias("missing")),
        GARBAGE_KEY_ID,
        key_arn(missing, region="us-west-2"),
    ):
        expect_error(kms.describe_key, "NotFoundException", KeyId=ref)


# -- ListKeys -------------------------------------------------------------------------------------------------


def test_list_keys_pagination_visits_every_key_exactly_once(kms: Any) -> None:
    """ListKeys: Limit 1-1000; Truncated says whether NextMarker must be followed; every key of the account and
    Region appears, in every key state."""
    created = {new_key(kms, "list-keys") for _ in range(3)}
    disabled = new_key(kms, "list-keys-disabled")
    kms.disable_key(KeyId=disabled)
    pending = new_key(kms, "list-keys-pending")
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    created |= {disabled, pending}

    whole = kms.list_keys(Limit=1000)
    assert whole["Truncated"] is False and "NextMarker" not in whole
    everything = [k["KeyId"] for k in whole["Keys"]]
    assert len(everything) == len(set(everything))
    for entry in whole["Keys"]:
        assert entry["KeyArn"] == key_arn(entry["KeyId"]), entry

    pages = walk_pages(kms.list_keys, "Keys", 2)
    seen = [k["KeyId"] for page in pages for k in page["Keys"]]
    assert len(seen) == len(set(seen)), "a key was listed twice"
    assert set(seen) == set(everything)
    assert created <= set(seen)
    assert len(pages) >= 3
    assert all(page["Truncated"] for page in pages[:-1])


def test_list_keys_refuses_a_marker_it_did_not_issue(kms: Any) -> None:
    expect_error(lambda: kms.list_keys(Marker="not-a-marker"), "InvalidMarkerException")
    kms.create_alias(AliasName=unique_alias("marker"), TargetKeyId=new_key(kms))
    kms.create_alias(AliasName=unique_alias("marker"), TargetKeyId=new_key(kms))
    alias_marker = kms.list_aliases(Limit=1)["NextMarker"]
    expect_error(lambda: kms.list_keys(Marker=alias_marker), "InvalidMarkerException")


def test_list_keys_limit_bounds(raw: Any) -> None:
    """ListKeys Limit must be between 1 and 1000, inclusive."""
    for limit in (0, 1001):
        expect_error(raw.list_keys, "ValidationException", Limit=limit)
    assert len(raw.list_keys(Limit=1)["Keys"]) == 1
    raw.list_keys(Limit=1000)


# -- EnableKey / DisableKey -----------------------------------------------------------------------------------


def test_disabled_key_refuses_cryptographic_operations_until_enabled(kms: Any, key_id: str) -> None:
    """Key state table: a Disabled key fails Encrypt, Decrypt, ReEncrypt and GenerateDataKey* with
    DisabledException; EnableKey makes it usable again."""
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"before disabling")["CiphertextBlob"]
    assert kms.disable_key(KeyId=key_arn(key_id))["ResponseMetadata"]["HTTPStatusCode"] == 200
    meta = _meta(kms, key_id)
    assert meta["Enabled"] is False
    assert meta["KeyState"] == "Disabled"
    for call in (
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key_id),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
        lambda: kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256"),
    ):
        expect_error(call, "DisabledException")

    kms.enable_key(KeyId=key_id)
    meta = _meta(kms, key_id)
    assert meta["Enabled"] is True
    assert meta["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before disabling"


def test_enable_and_disable_are_idempotent(kms: Any, key_id: str) -> None:
    """Key state table: EnableKey and DisableKey succeed on both Enabled and Disabled keys."""
    kms.enable_key(KeyId=key_id)
    assert _meta(kms, key_id)["KeyState"] == "Enabled"
    kms.disable_key(KeyId=key_id)
    kms.disable_key(KeyId=key_arn(key_id))
    assert _meta(kms, key_id)["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_arn(key_id))
    kms.enable_key(KeyId=key_id)
    assert _meta(kms, key_id)["KeyState"] == "Enabled"


def test_key_state_changes_refuse_aliases_and_unknown_keys(kms: Any, key_id: str) -> None:
    """EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion and UpdateKeyDescription take a key id or
    key ARN; an alias is InvalidArnException (as AWS answers), an unknown key or garbage NotFoundException, and the
    key is untouched."""
    alias = unique_alias("state")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    missing = unknown_key_id()
    for ref in (alias, alias_arn(alias), missing, key_arn(missing), GARBAGE_KEY_ID):
        error = "InvalidArnException" if "alias/" in ref else "NotFoundException"
        expect_error(kms.disable_key, error, KeyId=ref)
        expect_error(kms.enable_key, error, KeyId=ref)
        expect_error(kms.schedule_key_deletion, error, KeyId=ref)
        expect_error(kms.cancel_key_deletion, error, KeyId=ref)
        expect_error(kms.update_key_description, error, KeyId=ref, Description="x")
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Enabled"
    assert meta["Description"] == "e2e"


# -- ScheduleKeyDeletion / CancelKeyDeletion ------------------------------------------------------------------


def test_schedule_key_deletion_defaults_to_thirty_days(kms: Any, key_id: str) -> None:
    """ScheduleKeyDeletion: PendingWindowInDays defaults to 30; the response's KeyId is the key ARN. DescribeKey
    then shows KeyState PendingDeletion and DeletionDate."""
    now = utcnow()
    scheduled = kms.schedule_key_deletion(KeyId=key_id)
    assert scheduled["KeyId"] == key_arn(key_id)
    assert scheduled["KeyState"] == "PendingDeletion"
    assert scheduled["PendingWindowInDays"] == 30
    assert_close(scheduled["DeletionDate"], now + 30 * DAY)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Enabled"] is False
    assert meta["DeletionDate"] == scheduled["DeletionDate"]


def test_describe_key_pending_deletion_has_no_pending_deletion_window(kms: Any, key_id: str) -> None:
    """KeyMetadata.PendingDeletionWindowInDays "is present only when the KeyState of the KMS key is
    PendingReplicaDeletion" (a multi-Region primary key with replicas); a single-Region key pending deletion
    shows its DeletionDate only."""
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert "DeletionDate" in meta
    assert "PendingDeletionWindowInDays" not in meta, meta["PendingDeletionWindowInDays"]


def test_schedule_key_deletion_window_is_seven_to_thirty_days(kms: Any, raw: Any) -> None:
    """PendingWindowInDays "must be between 7 and 30, inclusive" (the model allows 1-365; AWS enforces 7-30)."""
    key = new_key(kms, "window")
    for days in (6, 31):
        expect_error(kms.schedule_key_deletion, "ValidationException", KeyId=key, PendingWindowInDays=days)
    for days in (0, 366):
        expect_error(raw.schedule_key_deletion, "ValidationException", KeyId=key, PendingWindowInDays=days)
    assert _meta(kms, key)["KeyState"] == "Enabled", "a refused request must not change the key"

    now = utcnow()
    seven = kms.schedule_key_deletion(KeyId=key_arn(key), PendingWindowInDays=7)
    assert seven["PendingWindowInDays"] == 7
    assert_close(seven["DeletionDate"], now + 7 * DAY)
    other = new_key(kms, "window")
    thirty = kms.schedule_key_deletion(KeyId=other, PendingWindowInDays=30)
    assert thirty["PendingWindowInDays"] == 30
    assert_close(thirty["DeletionDate"], now + 30 * DAY)


def test_key_pending_deletion_refuses_use_and_state_changes(kms: Any, key_id: str) -> None:
    """Key state table, PendingDeletion column: cryptographic operations, EnableKey, DisableKey,
    ScheduleKeyDeletion and UpdateKeyDescription fail with KMSInvalidStateException; DescribeKey and ListKeys
    still work."""
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"doomed")["CiphertextBlob"]
    other = new_key(kms, "other")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    for call in (
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"),
        lambda: kms.decrypt(CiphertextBlob=blob),
        lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
        lambda: kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=32),
        lambda: kms.enable_key(KeyId=key_id),
        lambda: kms.disable_key(KeyId=key_id),
        lambda: kms.schedule_key_deletion(KeyId=key_id),
        lambda: kms.update_key_description(KeyId=key_id, Description="too late"),
    ):
        expect_error(call, "KMSInvalidStateException")
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Description"] == "e2e"


def test_cancel_key_deletion_leaves_the_key_disabled(kms: Any, key_id: str) -> None:
    """CancelKeyDeletion returns the key ARN; the key is then Disabled and must be enabled to be used."""
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"saved")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    cancelled = kms.cancel_key_deletion(KeyId=key_arn(key_id))
    assert cancelled["KeyId"] == key_arn(key_id)
    meta = _meta(kms, key_id)
    assert meta["KeyState"] == "Disabled"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob), "DisabledException")
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"saved"


def test_cancel_key_deletion_of_a_key_not_pending_deletion(kms: Any, key_id: str) -> None:
    """Key state table: CancelKeyDeletion on an Enabled or Disabled key is KMSInvalidStateException."""
    expect_error(lambda: kms.cancel_key_deletion(KeyId=key_id), "KMSInvalidStateException")
    kms.disable_key(KeyId=key_id)
    expect_error(lambda: kms.cancel_key_deletion(KeyId=key_id), "KMSInvalidStateException")
    assert _meta(kms, key_id)["KeyState"] == "Disabled"


def test_disabled_key_can_be_scheduled_and_cancelled(kms: Any, key_id: str) -> None:
    kms.disable_key(KeyId=key_id)
    assert kms.schedule_key_deletion(KeyId=key_arn(key_id))["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=key_id)
    assert _meta(kms, key_id)["KeyState"] == "Disabled"


# -- UpdateKeyDescription -------------------------------------------------------------------------------------


def test_update_key_description(kms: Any, key_id: str) -> None:
    """UpdateKeyDescription takes a key id or key ARN; the description may be empty (0-8192 characters) and can
    be changed on a Disabled key."""
    kms.update_key_description(KeyId=key_id, Description="first")
    assert _meta(kms, key_id)["Description"] == "first"
    kms.update_key_description(KeyId=key_arn(key_id), Description="second")
    assert _meta(kms, key_id)["Description"] == "second"
    kms.disable_key(KeyId=key_id)
    kms.update_key_description(KeyId=key_id, Description="")
    assert _meta(kms, key_id)["Description"] == ""
    long = "d" * 8192
    kms.update_key_description(KeyId=key_id, Description=long)
    assert _meta(kms, key_id)["Description"] == long
    expect_error(lambda: kms.update_key_description(KeyId=key_id, Description="d" * 8193), "ValidationException")
