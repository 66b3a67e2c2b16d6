"""GetKeyLastUsage over HTTP with boto3, on every storage engine, answered from the audit trail.

AWS is the reference (KMS API Reference, GetKeyLastUsage; the model's KeyLastUsageTrackingOperation enum):
``KeyId`` is a key id or key ARN ("Alias names are not supported"); ``KeyLastUsage`` names the last
*successful* cryptographic operation on the key (ReEncrypt counts for its source and its destination) with its
time, the CloudTrail ``eventID`` and the KMS request id, and is an empty object when there is none;
``TrackingStartDate`` is when tracking began or the key's creation, whichever is later. Reads (DescribeKey,
GetKeyLastUsage itself) and failed calls are not uses. The call itself is recorded in the trail as a read
(AWS's CloudTrail example for GetKeyLastUsage: ``readOnly`` true, ``requestParameters.keyId``).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from tests.e2e.kmsapi import (
    alias_arn,
    assert_close,
    expect_error,
    key_arn,
    new_key,
    unique_alias,
    unknown_key_id,
    utcnow,
)
from tests.e2e.principals import allow, make_user
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def _trail(server: ServerProcess, *args: str) -> list[dict[str, Any]]:
    done = server.openkms("audit", "query", "--json", "--limit", "1000", *args)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_a_new_key_has_no_last_usage(kms: Any) -> None:
    before = utcnow()
    key_id = new_key(kms)
    answer = kms.get_key_last_usage(KeyId=key_id)
    assert answer["KeyId"] == key_arn(key_id)
    assert answer["KeyLastUsage"] == {}
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert answer["KeyCreationDate"] == meta["CreationDate"]
    assert answer["TrackingStartDate"] == answer["KeyCreationDate"]  # the trail began before the key
    assert_close(answer["KeyCreationDate"], before)


def test_the_last_successful_cryptographic_use_is_named(server: ServerProcess, kms: Any) -> None:
    key_id = new_key(kms)
    encrypted = kms.encrypt(KeyId=key_id, Plaintext=b"payload")
    used = kms.get_key_last_usage(KeyId=key_arn(key_id))["KeyLastUsage"]
    assert used["Operation"] == "Encrypt"
    assert used["KmsRequestId"] == _request_id(encrypted)
    assert UUID.match(used["CloudTrailEventId"])
    assert_close(used["Timestamp"], utcnow(), seconds=60)
    [record] = _trail(server, "--key-id", key_id, "--operation", "Encrypt")
    assert record["eventID"] == used["CloudTrailEventId"] and record["requestID"] == used["KmsRequestId"]

    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    assert kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]["KmsRequestId"] == _request_id(decrypted)
    assert kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]["Operation"] == "Decrypt"


def test_reads_and_failures_are_not_uses(kms: Any) -> None:
    key_id = new_key(kms)
    generated = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    kms.describe_key(KeyId=key_id)
    kms.get_key_last_usage(KeyId=key_id)
    kms.list_resource_tags(KeyId=key_id)
    kms.disable_key(KeyId=key_id)
    expect_error(kms.encrypt, "DisabledException", KeyId=key_id, Plaintext=b"p")  # recorded, but failed
    kms.enable_key(KeyId=key_id)
    expect_error(kms.decrypt, "InvalidCiphertextException", KeyId=key_id, CiphertextBlob=b"\x01" * 64)
    used = kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]
    assert used["Operation"] == "GenerateDataKey" and used["KmsRequestId"] == _request_id(generated)


def test_reencrypt_counts_for_both_keys(kms: Any) -> None:
    source, destination = new_key(kms), new_key(kms)
    blob = kms.encrypt(KeyId=source, Plaintext=b"p")["CiphertextBlob"]
    moved = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination)
    for key_id in (source, destination):
        used = kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]
        assert used["Operation"] == "ReEncrypt" and used["KmsRequestId"] == _request_id(moved)


def test_every_tracked_operation_is_a_use(kms: Any) -> None:
    signer = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    signature = kms.sign(KeyId=signer, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.get_key_last_usage(KeyId=signer)["KeyLastUsage"]["Operation"] == "Sign"
    kms.verify(KeyId=signer, Message=b"m", SigningAlgorithm="ECDSA_SHA_256", Signature=signature)
    assert kms.get_key_last_usage(KeyId=signer)["KeyLastUsage"]["Operation"] == "Verify"
    kms.get_public_key(KeyId=signer)  # not a tracked operation
    assert kms.get_key_last_usage(KeyId=signer)["KeyLastUsage"]["Operation"] == "Verify"
    mac_key = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    kms.verify_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=mac)
    assert kms.get_key_last_usage(KeyId=mac_key)["KeyLastUsage"]["Operation"] == "VerifyMac"
    symmetric = new_key(kms)
    kms.generate_data_key_pair_without_plaintext(KeyId=symmetric, KeyPairSpec="ECC_NIST_P256")
    used = kms.get_key_last_usage(KeyId=symmetric)["KeyLastUsage"]
    assert used["Operation"] == "GenerateDataKeyPairWithoutPlaintext"


def test_alias_names_and_alias_arns_are_refused(kms: Any) -> None:
    key_id = new_key(kms)
    alias = unique_alias("lastusage")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    for ref in (alias, alias_arn(alias)):
        exc = expect_error(kms.get_key_last_usage, "InvalidArnException", KeyId=ref)  # as AWS answers an alias
        assert exc.response["Error"]["Message"] == "Key Aliases are not supported for this operation."
    expect_error(kms.get_key_last_usage, "NotFoundException", KeyId=unknown_key_id())
    expect_error(kms.get_key_last_usage, "NotFoundException", KeyId="not-a-key-id")


def test_permission_is_kms_get_key_last_usage(server: ServerProcess, kms: Any) -> None:
    key_id = new_key(kms)
    allowed = make_user(server, "lastusage-yes", policy=allow("kms:GetKeyLastUsage"))
    denied = make_user(server, "lastusage-no", policy=allow("kms:DescribeKey"))
    assert allowed.kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"] == {}
    exc = expect_error(denied.kms.get_key_last_usage, "AccessDeniedException", KeyId=key_id)
    assert "kms:GetKeyLastUsage" in exc.response["Error"]["Message"]


def test_the_call_is_recorded_as_a_read(server: ServerProcess, kms: Any) -> None:
    key_id = new_key(kms)
    answer = kms.get_key_last_usage(KeyId=key_id)
    [record] = [r for r in _trail(server, "--key-id", key_id, "--operation", "GetKeyLastUsage")]
    assert record["requestID"] == _request_id(answer)
    assert record["readOnly"] is True and record["responseElements"] is None
    assert record["requestParameters"] == {"keyId": key_id}
    assert record["resources"] == [{"accountId": key_arn(key_id).split(":")[4], "type": "AWS::KMS::Key",
                                    "ARN": key_arn(key_id)}]  # fmt: skip


def test_a_key_pending_deletion_still_answers(kms: Any) -> None:
    """A read about the key, like DescribeKey, in every key state (AWS advises consulting it before deleting a
    key; the key-state table does not list the operation, so this follows DescribeKey's row)."""
    key_id = new_key(kms)
    kms.encrypt(KeyId=key_id, Plaintext=base64.b64encode(b"x"))
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]["Operation"] == "Encrypt"
