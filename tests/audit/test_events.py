"""Audit records: CloudTrail's shape, and redaction driven by the model's ``sensitive`` and blob flags."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms import apimodel
from openkms.audit import chain, events
from openkms.context import Principal

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/alice", "alice", "AKIAEXAMPLEEXAMPLE01", "AIDAX")
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET_MARK = "SeCrEt-MaRkEr-7f3a"


def _sample(shape_name: str, depth: int = 0) -> Any:
    """A value of the shape, with every string and blob carrying the marker (so a leak shows)."""
    shape = apimodel.shape(shape_name)
    kind = shape.get("type")
    if kind == "structure":
        if depth > 3:
            return {}
        return {name: _sample(ref["shape"], depth + 1) for name, ref in shape.get("members", {}).items()}
    if kind == "list":
        return [_sample(shape["member"]["shape"], depth + 1)]
    if kind == "map":
        return {"k": _sample(shape["value"]["shape"], depth + 1)}
    if kind == "blob":
        return SECRET_MARK.encode()
    if kind == "string":
        return shape["enum"][0] if "enum" in shape else SECRET_MARK
    if kind in ("integer", "long"):
        return 7
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return 1_700_000_000.0
    return None


def _secret_paths(shape_name: str, value: Any, path: str = "") -> list[str]:
    """Paths of members whose shape is sensitive or a blob (what must never be recorded)."""
    shape = apimodel.shape(shape_name)
    found: list[str] = []
    if shape.get("type") == "structure" and isinstance(value, dict):
        for name, ref in shape.get("members", {}).items():
            member = apimodel.shape(ref["shape"])
            if member.get("sensitive") or member.get("type") == "blob":
                found.append(f"{path}.{name}")
            elif name in value:
                found.extend(_secret_paths(ref["shape"], value[name], f"{path}.{name}"))
    return found


OPERATIONS = sorted(apimodel.operation_names())


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_sensitive_or_blob_member_is_recorded(operation: str) -> None:
    input_shape = apimodel.input_shape(operation)
    params = _sample(input_shape) if input_shape else {}
    call = events.Call("r-1", 1_700_000_000.0, "10.0.0.1", "test", "us-east-1", operation, PRINCIPAL, None, params)
    output_shape = apimodel.output_shape(operation)
    result = _sample(output_shape) if output_shape else {}
    event = json.loads(events.build(call, None, None, result).event)
    text = chain.canonical_json(event)
    secrets_in_request = _secret_paths(input_shape, params) if input_shape else []
    secrets_in_result = _secret_paths(output_shape, result) if output_shape else []
    if secrets_in_request or secrets_in_result:
        # Every recordable string also carries the marker, so check the secret members by name instead.
        recorded = json.dumps(event["requestParameters"]) + json.dumps(event["responseElements"])
        for path in secrets_in_request + secrets_in_result:
            member = path.rsplit(".", 1)[-1]
            assert f'"{events.lower_camel(member)}"' not in recorded, f"{operation}: {path} was recorded"
    assert SECRET_MARK.encode().hex() not in text


def test_shape_of_a_successful_decrypt() -> None:
    call = events.Call(
        "r-2", 1_700_000_000.5, "192.0.2.7", "Boto3/1.40", "eu-west-1", "Decrypt", PRINCIPAL, None,
        {"CiphertextBlob": b"\x01secret", "EncryptionContext": {"tenant": "t-1"}},
    )  # fmt: skip
    call.note.add_key(KEY_ARN, "SYMMETRIC_DEFAULT")
    call.note.key_material_id = "ab" * 32
    record = events.build(call, None, None, {"Plaintext": b"secret", "KeyId": KEY_ARN})
    event = json.loads(record.event)
    assert event["eventName"] == "Decrypt" and event["eventSource"] == "kms.amazonaws.com"
    assert event["eventTime"] == "2023-11-14T22:13:20Z"
    assert event["requestParameters"] == {
        "encryptionContext": {"tenant": "t-1"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }
    assert event["responseElements"] is None and event["readOnly"] is True
    assert event["resources"] == [{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": KEY_ARN}]
    assert event["additionalEventData"] == {"keyMaterialId": "ab" * 32}
    assert event["userIdentity"]["accessKeyId"] == "AKIAEXAMPLEEXAMPLE01"
    assert event["recipientAccountId"] == "111122223333" and "errorCode" not in event
    assert record.key_id == "1234abcd-12ab-34cd-56ef-1234567890ab" and record.usage_family == "symmetric"


def test_failure_records_the_error_and_state_changes_are_not_read_only() -> None:
    call = events.Call("r-3", 1.0, "::1", "", "us-east-1", "ScheduleKeyDeletion", PRINCIPAL, None, {"KeyId": "k"})
    event = json.loads(events.build(call, "NotFoundException", "Key 'k' does not exist").event)
    assert event["errorCode"] == "NotFoundException" and event["errorMessage"] == "Key 'k' does not exist"
    assert event["readOnly"] is False and event["resources"] == []


def test_unauthenticated_call_names_only_the_claimed_access_key() -> None:
    header = "AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNUNKNOWN12/20260101/us-east-1/kms/aws4_request, Signature=ab"
    call = events.Call(
        "r-4", 1.0, "203.0.113.9", "curl", "us-east-1", "Encrypt", None, events.claimed_access_key(header)
    )
    event = json.loads(
        events.build(
            call, "UnrecognizedClientException", "The security token included in the request is invalid."
        ).event
    )
    assert event["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIAUNKNOWNUNKNOWN12"}
    assert event["requestParameters"] is None


def test_a_console_sign_in_is_recorded_as_cloudtrail_records_console_login() -> None:
    ok = events.Call("r-5", 1.0, "192.0.2.1", "openkms-console (x)", "us-east-1", principal=PRINCIPAL)
    record = events.console_login(ok, True)
    assert json.loads(record.event)["eventSource"] == "signin.amazonaws.com" and record.event_name == "ConsoleLogin"
    assert json.loads(record.event)["responseElements"] == {"ConsoleLogin": "Success"} and record.error_code is None
    assert json.loads(record.event)["eventType"] == "AwsConsoleSignIn" and record.principal_arn == PRINCIPAL.arn
    failed = events.Call("r-6", 1.0, "192.0.2.1", "", "us-east-1", claimed_access_key_id="AKIAEXAMPLEEXAMPLE01")
    denied = events.console_login(failed, False)
    assert json.loads(denied.event)["responseElements"] == {"ConsoleLogin": "Failure"}
    assert json.loads(denied.event)["errorMessage"] == "Failed authentication"
    assert (
        denied.error_code == json.loads(denied.event)["errorCode"]
    )  # the indexed copy agrees (audit verify checks it)
    assert json.loads(denied.event)["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIAEXAMPLEEXAMPLE01"}


def test_another_services_call_keeps_its_source_and_parameters() -> None:
    call = events.Call(
        "r-7", 1.0, "192.0.2.1", "", "us-east-1", "LookupEvents", PRINCIPAL, None, {"Operation": "Decrypt"},
        event_source="cloudtrail.amazonaws.com",
    )  # fmt: skip
    event = json.loads(events.build(call, None, None, {"Events": [{"CloudTrailEvent": SECRET_MARK}]}).event)
    assert event["eventSource"] == "cloudtrail.amazonaws.com"
    assert event["requestParameters"] == {"Operation": "Decrypt"}
    assert event["responseElements"] is None and event["readOnly"] is True
