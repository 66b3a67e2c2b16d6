"""AWS-managed keys over HTTP with boto3: ``alias/aws/s3`` exists once first used, has KeyManager AWS, encrypts
and decrypts, and its policy cannot be changed (AWS developer guide, "AWS managed keys")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kmsapi import expect_error

pytestmark = pytest.mark.e2e


def test_aws_s3_is_created_on_first_use_and_cannot_be_changed(kms: Any) -> None:
    meta = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    assert meta["KeyState"] == "Enabled"
    assert kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["KeyId"] == meta["KeyId"]

    blob = kms.encrypt(KeyId="alias/aws/s3", Plaintext=b"managed")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"managed"
    assert decrypted["KeyId"] == meta["Arn"]

    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases(KeyId=meta["KeyId"])["Aliases"]}
    assert aliases == {"alias/aws/s3": meta["KeyId"]}

    policy = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
    error = expect_error(kms.put_key_policy, "AccessDeniedException", KeyId=meta["KeyId"], Policy=policy)
    assert "kms:PutKeyPolicy" in str(error)
    expect_error(kms.disable_key, "AccessDeniedException", KeyId=meta["KeyId"])
