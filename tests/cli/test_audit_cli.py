"""``openkms audit``: query, export, verify and public-key against a trail written by a real workload.

The workload runs in this process (tests/inprocess.py: real SQLite storage, SigV4, the whole request path)
and calls every implemented operation at least once, plus failures of several kinds. On that trail:

- A-5: every record validates against a JSON Schema of CloudTrail's fields (written below as a dict and
  checked by a small validator: ``jsonschema`` is not among the test dependencies), both as stored and as
  exported in CloudTrail files; the JSON-lines export verifies offline with only the public key that
  ``openkms audit public-key`` printed, pinned.
- A-6: an export is written only inside ``<data-dir>/exports/``: ``..``, absolute paths elsewhere, symbolic
  links (the exports directory, a subdirectory, the file) and group/other-accessible directories are refused
  with ``ValidationException`` and exit 2, and nothing is written outside the data directory.
- Each subcommand's table and ``--json`` output, paging, and its exit codes (0, 1, 2, and 3 when ``verify``
  finds the trail altered).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials

from openkms import apimodel, identity
from openkms.audit import digests, verify
from openkms.cli import common
from openkms.cli.common import open_migrated
from openkms.cli.main import main
from openkms.clock import SystemClock
from openkms.crypto import keypairs
from openkms.operations.registry import implemented_operations
from openkms.storage.audit import AuditFilter
from tests import byok
from tests.cli.running import Run, openkms
from tests.inprocess import ACCOUNT_ID, REGION, InProcessKMS

ADMIN_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
QUERY_COLUMNS = ["Seq", "EventTime", "EventName", "Outcome", "Principal", "KeyId", "SourceIP", "RequestId"]
CLOUDTRAIL_FILE = re.compile(r"^(\d{12}|unknown)_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{2}00Z)_[A-Za-z0-9]{16}\.json\.gz$")


# ---- running the command -------------------------------------------------------------------------------------


def ok(run: Run) -> str:
    assert run.code == 0, run
    return run.out


def refused(run: Run, code: int, *fragments: str) -> None:
    """Exit ``code`` with a one-line message naming every fragment, nothing on stdout, no traceback."""
    assert run.code == code, run
    assert run.out == "", run
    assert "Traceback" not in run.err
    prefixes = ("ValidationException: ",) if code == 2 else ("openkms: ", "NotFoundException: ")
    assert run.err.startswith(prefixes), run.err
    for fragment in fragments:
        assert fragment in run.err, run.err


def table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- the workload --------------------------------------------------------------------------------------------


@dataclass
class Trail:
    data_dir: Path
    kms: InProcessKMS
    keys: dict[str, str]  # label -> key id
    root_key: bytes

    def db(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]

    def sign_digest(self) -> None:
        digests.write_digest(self.kms.storage, self.root_key, time.time(), 300, force=True)

    def records(self) -> list[dict[str, Any]]:
        with self.kms.storage.read() as tx:
            head = tx.audit_head().seq
            rows = tx.audit_range(0, head + 1)
        return [json.loads(row.event) for row in rows]


def _must(kms: InProcessKMS, operation: str, params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    status, body = kms.call(operation, params, **kwargs)
    assert status == 200, (operation, status, body)
    return body


def _fails(kms: InProcessKMS, operation: str, params: dict[str, Any], code: str, **kwargs: Any) -> None:
    status, body = kms.call(operation, params, **kwargs)
    assert status >= 400 and body.get("__type") == code, (operation, status, body)


def run_workload(kms: InProcessKMS) -> dict[str, str]:
    """Every implemented operation at least once (with the key types each needs), and failures of several kinds."""

    def key(label: str, **params: Any) -> str:
        return str(_must(kms, "CreateKey", {"Description": label, **params})["KeyMetadata"]["KeyId"])

    keys = {
        "sym": key("sym"),
        "sym2": key("sym2"),
        "rsa": key("rsa", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"),
        "signer": key("signer", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
        "hmac": key("hmac", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
        "agree": key("agree", KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT"),
        "peer": key("peer", KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT"),
        "kem": key("kem", KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE"),
    }
    sym, sym2 = keys["sym"], keys["sym2"]
    # cryptography
    blob = _must(kms, "Encrypt", {"KeyId": sym, "Plaintext": b64(b"hello"), "EncryptionContext": {"app": "t"}})
    _must(kms, "Decrypt", {"CiphertextBlob": blob["CiphertextBlob"], "EncryptionContext": {"app": "t"}})
    _must(kms, "ReEncrypt", {"CiphertextBlob": blob["CiphertextBlob"], "SourceEncryptionContext": {"app": "t"},
                             "DestinationKeyId": sym2})  # fmt: skip
    _must(kms, "GenerateDataKey", {"KeyId": sym, "KeySpec": "AES_256"})
    _must(kms, "GenerateDataKeyWithoutPlaintext", {"KeyId": sym, "NumberOfBytes": 32})
    _must(kms, "GenerateDataKeyPair", {"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"})
    _must(kms, "GenerateDataKeyPairWithoutPlaintext", {"KeyId": sym, "KeyPairSpec": "ECC_NIST_P256"})
    _must(kms, "GenerateRandom", {"NumberOfBytes": 16})
    rsa_blob = _must(kms, "Encrypt", {"KeyId": keys["rsa"], "Plaintext": b64(b"x"),
                                      "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})  # fmt: skip
    _must(kms, "Decrypt", {"KeyId": keys["rsa"], "CiphertextBlob": rsa_blob["CiphertextBlob"],
                           "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})  # fmt: skip
    signature = _must(kms, "Sign", {"KeyId": keys["signer"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256"})
    _must(kms, "Verify", {"KeyId": keys["signer"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256",
                          "Signature": signature["Signature"]})  # fmt: skip
    mac = _must(kms, "GenerateMac", {"KeyId": keys["hmac"], "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"})
    _must(kms, "VerifyMac", {"KeyId": keys["hmac"], "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256",
                             "Mac": mac["Mac"]})  # fmt: skip
    peer = _must(kms, "GetPublicKey", {"KeyId": keys["peer"]})
    _must(kms, "DeriveSharedSecret", {"KeyId": keys["agree"], "KeyAgreementAlgorithm": "ECDH",
                                      "PublicKey": peer["PublicKey"]})  # fmt: skip
    capsule = _must(kms, "Encapsulate", {"KeyId": keys["kem"], "EncapsulationAlgorithm": "ML_KEM"})
    _must(kms, "Decapsulate", {"KeyId": keys["kem"], "EncapsulationAlgorithm": "ML_KEM",
                               "SharedSecretCiphertextBlob": capsule["SharedSecretCiphertextBlob"]})  # fmt: skip
    # keys, aliases, tags, policies, grants
    _must(kms, "DescribeKey", {"KeyId": sym})
    _must(kms, "ListKeys", {})
    _must(kms, "UpdateKeyDescription", {"KeyId": sym, "Description": "renamed"})
    _must(kms, "DisableKey", {"KeyId": sym2})
    _fails(kms, "Encrypt", {"KeyId": sym2, "Plaintext": b64(b"p")}, "DisabledException")
    _must(kms, "EnableKey", {"KeyId": sym2})
    _must(kms, "ScheduleKeyDeletion", {"KeyId": keys["peer"], "PendingWindowInDays": 7})
    _must(kms, "CancelKeyDeletion", {"KeyId": keys["peer"]})
    _must(kms, "CreateAlias", {"AliasName": "alias/audit-cli", "TargetKeyId": sym2})
    _must(kms, "UpdateAlias", {"AliasName": "alias/audit-cli", "TargetKeyId": sym})
    _must(kms, "CreateAlias", {"AliasName": "alias/short-lived", "TargetKeyId": sym})
    _must(kms, "DeleteAlias", {"AliasName": "alias/short-lived"})
    _must(kms, "ListAliases", {})
    _must(kms, "TagResource", {"KeyId": sym, "Tags": [{"TagKey": "env", "TagValue": "test"}]})
    _must(kms, "UntagResource", {"KeyId": sym, "TagKeys": ["env"]})
    _must(kms, "ListResourceTags", {"KeyId": sym})
    policy = _must(kms, "GetKeyPolicy", {"KeyId": sym, "PolicyName": "default"})["Policy"]
    _must(kms, "PutKeyPolicy", {"KeyId": sym, "PolicyName": "default", "Policy": policy})
    _must(kms, "ListKeyPolicies", {"KeyId": sym})
    grant = _must(kms, "CreateGrant", {"KeyId": sym, "GranteePrincipal": ADMIN_ARN, "RetiringPrincipal": ADMIN_ARN,
                                       "Operations": ["Encrypt", "Decrypt"]})  # fmt: skip
    _must(kms, "ListGrants", {"KeyId": sym})
    _must(kms, "ListRetirableGrants", {"RetiringPrincipal": ADMIN_ARN})
    _must(kms, "RetireGrant", {"GrantToken": grant["GrantToken"]})
    second = _must(kms, "CreateGrant", {"KeyId": sym, "GranteePrincipal": ADMIN_ARN, "Operations": ["Encrypt"]})
    _must(kms, "RevokeGrant", {"KeyId": sym, "GrantId": second["GrantId"]})
    _must(kms, "GetKeyLastUsage", {"KeyId": sym})
    # rotation
    _must(kms, "EnableKeyRotation", {"KeyId": sym, "RotationPeriodInDays": 90})
    _must(kms, "GetKeyRotationStatus", {"KeyId": sym})
    _must(kms, "RotateKeyOnDemand", {"KeyId": sym})
    _must(kms, "ListKeyRotations", {"KeyId": sym})
    _must(kms, "DisableKeyRotation", {"KeyId": sym})
    # imported key material
    external = key("external", Origin="EXTERNAL")
    parameters = _must(kms, "GetParametersForImport", {"KeyId": external, "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                                       "WrappingKeySpec": "RSA_2048"})  # fmt: skip
    wrapped = byok.wrap(base64.b64decode(parameters["PublicKey"]), "RSAES_OAEP_SHA_256", os.urandom(32))
    _must(kms, "ImportKeyMaterial", {"KeyId": external, "ImportToken": parameters["ImportToken"],
                                     "EncryptedKeyMaterial": b64(wrapped),
                                     "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})  # fmt: skip
    _must(kms, "DeleteImportedKeyMaterial", {"KeyId": external})
    # failures: unknown key, alias where AWS takes none, a validation error, a caller without permission,
    # a bad signature (unauthenticated), an operation openkms does not implement
    _fails(kms, "Encrypt", {"KeyId": "alias/nothing-here", "Plaintext": b64(b"p")}, "NotFoundException")
    _fails(kms, "GetKeyLastUsage", {"KeyId": "alias/audit-cli"}, "InvalidArnException")  # as AWS answers
    _fails(kms, "GenerateRandom", {"NumberOfBytes": 0}, "ValidationException")
    clock = SystemClock()
    identity.create_user(kms.storage, ACCOUNT_ID, "nobody", clock)
    root_key = kms.app._services.keyring.root_key()
    made = identity.create_access_key(kms.storage, root_key, ACCOUNT_ID, "nobody", clock)
    nobody = Credentials(made.access_key_id, made.secret_access_key)
    _fails(kms, "Decrypt", {"CiphertextBlob": blob["CiphertextBlob"], "EncryptionContext": {"app": "t"}},
           "AccessDeniedException", credentials=nobody)  # fmt: skip
    _fails(kms, "Encrypt", {"KeyId": sym, "Plaintext": b64(b"p")}, "AccessDeniedException", credentials=nobody)
    forged = Credentials(kms.credentials.access_key, "not-the-secret")
    _fails(kms, "ListKeys", {}, "InvalidSignatureException", credentials=forged)
    _fails(kms, "ConnectCustomKeyStore", {"CustomKeyStoreId": "cks-1234567890abcdef0"}, "UnsupportedOperationException")
    return keys


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    data_dir = tmp_path_factory.mktemp("audit-cli") / "data"
    data_dir.mkdir(mode=0o700)
    kms = InProcessKMS(data_dir, keyfile_seal=True)
    keys = run_workload(kms)
    found = Trail(data_dir, kms, keys, kms.app._services.keyring.root_key())
    found.sign_digest()
    _must(kms, "DescribeKey", {"KeyId": keys["sym"]})  # one record after the digest: an unsigned tail
    yield found
    kms.close()


# ---- every record is a CloudTrail record ------------------------------------------------------------------

_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ACCOUNT = r"^\d{12}$"
_KEY_ARN = r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$"
# The CloudTrail record contents (AWS CloudTrail User Guide, "CloudTrail record contents for management, data,
# and network activity events") that a KMS API call carries; nothing else may appear at the top level.
CLOUDTRAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    ],
    "additionalProperties": False,
    "properties": {
        "eventVersion": {"type": "string", "pattern": r"^1\.\d{2}$"},
        "userIdentity": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["IAMUser", "Unknown"]},
                "principalId": {"type": "string", "pattern": r"^AIDA[A-Z0-9]+$"},
                "arn": {"type": "string", "pattern": r"^arn:aws:iam::\d{12}:user/[\w+=,.@/-]+$"},
                "accountId": {"type": "string", "pattern": _ACCOUNT},
                "accessKeyId": {"type": "string", "pattern": r"^[A-Z0-9]{16,128}$"},
                "userName": {"type": "string", "minLength": 1},
            },
        },
        "eventTime": {"type": "string", "pattern": _ISO},
        "eventSource": {"const": "kms.amazonaws.com"},
        "eventName": {"type": "string", "pattern": r"^[A-Z][A-Za-z]+$"},
        "awsRegion": {"type": "string", "pattern": r"^[a-z]{2}(-[a-z0-9]+)+-\d+$"},
        "sourceIPAddress": {"type": "string", "minLength": 1},
        "userAgent": {"type": "string"},
        "requestParameters": {"type": ["object", "null"]},
        "responseElements": {"type": ["object", "null"]},
        "requestID": {"type": "string", "pattern": _UUID},
        "eventID": {"type": "string", "pattern": _UUID},
        "readOnly": {"type": "boolean"},
        "resources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["accountId", "type", "ARN"],
                "additionalProperties": False,
                "properties": {
                    "accountId": {"type": "string", "pattern": _ACCOUNT},
                    "type": {"const": "AWS::KMS::Key"},
                    "ARN": {"type": "string", "pattern": _KEY_ARN},
                },
            },
        },
        "eventType": {"const": "AwsApiCall"},
        "managementEvent": {"type": "boolean"},
        # An unauthenticated call that names no key belongs to no account: openkms records "" there.
        "recipientAccountId": {"type": "string", "pattern": r"^(\d{12})?$"},
        "eventCategory": {"const": "Management"},
        "errorCode": {"type": "string", "pattern": r"^[A-Za-z]+$"},
        "errorMessage": {"type": "string"},
        "additionalEventData": {"type": "object"},
    },
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}  # fmt: skip


def schema_errors(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """The JSON Schema keywords the schema above uses (type, enum, const, pattern, minLength, required,
    properties, additionalProperties, items), each failure with its path."""
    errors: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        matches = [
            k for k in kinds if isinstance(value, _TYPES[k]) and not (k != "boolean" and isinstance(value, bool))
        ]
        if not matches:
            return [f"{path}: {type(value).__name__} is not {' or '.join(kinds)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']}")
    if isinstance(value, dict):
        errors += [f"{path}: {name} is missing" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(item, properties[name], f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: {name} is not a CloudTrail field")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors


def test_the_schema_validator_catches_what_it_should() -> None:
    good = {"type": "object", "required": ["a"], "additionalProperties": False,
            "properties": {"a": {"type": "string", "pattern": "^x"}, "b": {"type": ["object", "null"]}}}  # fmt: skip
    assert schema_errors({"a": "xy", "b": None}, good) == []
    assert schema_errors({"a": "y"}, good) == ["$.a: 'y' does not match ^x"]
    assert schema_errors({"b": {}}, good) == ["$: a is missing"]
    assert schema_errors({"a": "x", "c": 1}, good) == ["$: c is not a CloudTrail field"]
    assert schema_errors({"a": True}, good) == ["$.a: bool is not string"]
    assert schema_errors(True, {"type": "integer"}) == ["$: bool is not integer"]


def test_a5_every_record_of_every_operation_is_a_cloudtrail_record(trail: Trail) -> None:
    records = trail.records()
    names = {record["eventName"] for record in records}
    assert implemented_operations() <= names, sorted(implemented_operations() - names)
    errors = [error for record in records for error in schema_errors(record, CLOUDTRAIL_SCHEMA)]
    assert errors == [], errors[:20]
    assert {r["eventName"] for r in records} <= apimodel.operation_names() | {"Unknown"}
    # The failures of the workload are recorded with their codes, the unauthenticated one without an identity.
    codes = {r.get("errorCode") for r in records}
    assert {"AccessDeniedException", "NotFoundException", "ValidationException", "InvalidSignatureException",
            "UnsupportedOperationException", "DisabledException"} <= codes  # fmt: skip
    unauthenticated = [r for r in records if r.get("errorCode") == "InvalidSignatureException"]
    assert unauthenticated and all(r["userIdentity"]["type"] == "Unknown" for r in unauthenticated)
    print(f"A-5: {len(records)} records of {len(names)} operations, 0 schema errors")


def test_a5_the_export_verifies_offline_with_only_the_pinned_public_key(trail: Trail, tmp_path: Path) -> None:
    pem_text = ok(openkms("audit", "public-key", *trail.db()))
    key_file = tmp_path / "audit-signing-key.pem"
    key_file.write_text(pem_text)
    exported = ok(openkms("audit", "export", *trail.db(), "--output", "-"))
    copy = tmp_path / "offline" / "trail.jsonl"  # nothing of the data directory beside it
    copy.parent.mkdir()
    copy.write_text(exported)
    [(key_id, der)] = [(k, d) for k, d in _pem_keys(pem_text)]
    with copy.open(encoding="utf-8") as stream:
        report = verify.verify_export(stream, {key_id: der})
    assert report.ok, report.problems
    assert report.records == len(trail.records())
    assert report.digests >= 1 and report.unsigned_tail >= 1
    run = openkms("audit", "verify", "--data-dir", str(tmp_path / "elsewhere"), "--export", str(copy),
                  "--public-key", str(key_file), "--json")  # fmt: skip
    assert run.code == 0, run
    assert run.json() == report.as_dict()
    # The records of the export are the stored ones, so they pass the schema too.
    lines = [json.loads(line) for line in exported.splitlines()]
    events = [json.loads(line["event"]) for line in lines if line["type"] == "record"]
    assert [error for event in events for error in schema_errors(event, CLOUDTRAIL_SCHEMA)] == []


def _pem_keys(text: str) -> list[tuple[str, bytes]]:
    blocks = re.findall(r"Key-Id: (\S+)\n.*?-----BEGIN PUBLIC KEY-----\n(.*?)-----END PUBLIC KEY-----", text, re.S)
    return [(key_id, base64.b64decode("".join(body.split()))) for key_id, body in blocks]


# ---- query ------------------------------------------------------------------------------------------------------


def _all_seqs(trail: Trail) -> list[int]:
    with trail.kms.storage.read() as tx:
        return [row.seq for row in tx.query_audit(AuditFilter(), 10_000)]


def test_query_prints_a_table_newest_first(trail: Trail) -> None:
    header, rows = table(ok(openkms("audit", "query", *trail.db(), "--limit", "20")))
    assert header == QUERY_COLUMNS
    seqs = [int(row[0]) for row in rows if row[0].isdigit()]
    assert len(seqs) == 20 and seqs == sorted(seqs, reverse=True)
    assert seqs[0] == max(_all_seqs(trail))


def test_query_json_is_the_full_events_with_their_seq(trail: Trail) -> None:
    events = openkms("audit", "query", *trail.db(), "--operation", "ReEncrypt", "--json").json()
    assert len(events) == 1
    [event] = events
    assert isinstance(event["seq"], int) and event["eventName"] == "ReEncrypt"
    assert {r["ARN"].rsplit("/", 1)[1] for r in event["resources"]} == {trail.keys["sym"], trail.keys["sym2"]}
    assert schema_errors({k: v for k, v in event.items() if k != "seq"}, CLOUDTRAIL_SCHEMA) == []


def test_query_by_key_takes_an_id_an_arn_an_alias_and_an_alias_arn(trail: Trail) -> None:
    sym = trail.keys["sym"]
    spellings = [sym, f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{sym}", "alias/audit-cli",
                 f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/audit-cli"]  # fmt: skip
    answers = [
        openkms("audit", "query", *trail.db(), "--key-id", s, "--limit", "500", "--json").json() for s in spellings
    ]
    assert all(answer == answers[0] for answer in answers)
    seqs = [event["seq"] for event in answers[0]]
    assert seqs == sorted(seqs, reverse=True)
    assert all(any(r["ARN"].endswith(sym) for r in event["resources"]) for event in answers[0])
    # ReEncrypt names sym2 as its destination: a query on sym2 finds it too.
    names = {
        e["eventName"] for e in openkms("audit", "query", *trail.db(), "--key-id", trail.keys["sym2"], "--json").json()
    }
    assert "ReEncrypt" in names


def test_query_filters_combine(trail: Trail) -> None:
    denied = openkms("audit", "query", *trail.db(), "--principal", "nobody", "--outcome", "failure", "--json").json()
    assert {e["eventName"] for e in denied} == {"Decrypt", "Encrypt"}
    assert all(e["errorCode"] == "AccessDeniedException" for e in denied)
    by_arn = openkms("audit", "query", *trail.db(), "--principal", f"arn:aws:iam::{ACCOUNT_ID}:user/nobody",
                     "--outcome", "AccessDeniedException", "--json").json()  # fmt: skip
    assert by_arn == denied
    successes = openkms(
        "audit", "query", *trail.db(), "--operation", "decrypt", "--outcome", "success", "--json"
    ).json()
    assert len(successes) == 2 and all("errorCode" not in e for e in successes)
    from_ip = openkms("audit", "query", *trail.db(), "--source-ip", "127.0.0.1", "--limit", "10000", "--json").json()
    assert len(from_ip) == len(trail.records())
    assert openkms("audit", "query", *trail.db(), "--source-ip", "192.0.2.1", "--json").json() == []


def test_query_time_range(trail: Trail) -> None:
    everything = openkms("audit", "query", *trail.db(), "--since", "1h", "--limit", "10000", "--json").json()
    assert len(everything) == len(trail.records())
    assert openkms("audit", "query", *trail.db(), "--until", "1h", "--json").json() == []
    assert openkms("audit", "query", *trail.db(), "--since", "2999-01-01", "--json").json() == []
    newest = everything[0]["eventTime"]
    same = openkms("audit", "query", *trail.db(), "--since", newest, "--limit", "10000", "--json").json()
    assert same and all(e["eventTime"] >= newest for e in same)


def test_query_pages_with_before_seq(trail: Trail) -> None:
    seen: list[int] = []
    args = ["audit", "query", *trail.db(), "--limit", "7"]
    while True:
        out = ok(openkms(*args))
        lines = out.splitlines()
        seen += [int(line.split()[0]) for line in lines[1:] if line and line.split()[0].isdigit()]
        more = [line for line in lines if line.startswith("more:")]
        if not more:
            break
        args = [
            "audit",
            "query",
            *trail.db(),
            "--limit",
            "7",
            "--before-seq",
            more[0].split("--before-seq ")[1].split()[0],
        ]
    assert seen == _all_seqs(trail)
    page = openkms("audit", "query", *trail.db(), "--limit", "3", "--before-seq", str(seen[2]), "--json").json()
    assert [e["seq"] for e in page] == seen[3:6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operation", "Decrpyt"], "did you mean Decrypt"),
        (["--outcome", "not a code!"], "--outcome"),
        (["--source-ip", "300.1.1.1"], "not an IP address"),
        (["--since", "yesterday"], "is not a time"),
        (["--since", "1h", "--until", "2h"], "earlier than --until"),
        (["--limit", "0"], "--limit"),
        (["--before-seq", "0"], "--before-seq"),
        (["--key-id", "not-a-key"], "not a key id, key ARN, alias name or alias ARN"),
        (["--principal", "a b"], "neither an ARN nor a user name"),
    ],
)
def test_query_refuses_bad_values_with_exit_2(trail: Trail, args: list[str], message: str) -> None:
    refused(openkms("audit", "query", *trail.db(), *args), 2, message)


def test_query_unknown_alias_is_exit_1(trail: Trail) -> None:
    refused(openkms("audit", "query", *trail.db(), "--key-id", "alias/nope"), 1, "alias/nope is not found")


def test_usage_errors_exit_2(trail: Trail) -> None:
    for args in (
        ["audit"],
        ["audit", "query", "--limit", "x"],
        ["audit", "nonsense"],
        ["audit", "export", "--format", "xml"],
    ):
        run = openkms(*args)
        assert run.code == 2 and "usage:" in run.err, run


@pytest.mark.parametrize("command", ["query", "export", "verify", "public-key"])
def test_help_explains_each_command_with_an_example(command: str) -> None:
    run = openkms("audit", command, "--help")
    assert run.code == 0
    assert "examples:" in run.out and f"openkms audit {command}" in run.out


# ---- export -----------------------------------------------------------------------------------------------------


def test_export_jsonl_to_stdout_is_header_digests_then_records_in_order(trail: Trail) -> None:
    run = openkms("audit", "export", *trail.db())
    assert run.code == 0
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["format"] == "openkms-audit" and lines[0]["signingKeys"]
    kinds = [line["type"] for line in lines[1:]]
    assert kinds == sorted(kinds)  # every digest, then every record
    seqs = [line["seq"] for line in lines if line["type"] == "record"]
    assert seqs == sorted(seqs) and len(seqs) == len(trail.records())
    assert "follow the last signed digest" in run.err  # the unsigned tail is named


def test_export_jsonl_to_a_file_is_private_and_verifies(trail: Trail) -> None:
    run = openkms("audit", "export", *trail.db(), "--output", "jsonl/trail.jsonl", "--json")
    summary = run.json()
    path = Path(summary["Path"])
    assert path == trail.data_dir / "exports" / "jsonl" / "trail.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((trail.data_dir / "exports").stat().st_mode) == 0o700
    assert summary["Records"] == len(trail.records()) and summary["Digests"] >= 1
    assert openkms("audit", "verify", *trail.db(), "--export", str(path)).code == 0
    # exports never overwrite
    refused(openkms("audit", "export", *trail.db(), "--output", "jsonl/trail.jsonl"), 2, "already exists")


def test_an_interrupted_export_leaves_no_file(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(row: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("openkms.cli.audit.exportfmt.record_line", interrupted)
    run = openkms("audit", "export", *trail.db(), "--output", "interrupted.jsonl")
    assert run.code == 130
    assert not (trail.data_dir / "exports" / "interrupted.jsonl").exists()


def test_export_cloudtrail_files_hold_every_record_once(trail: Trail) -> None:
    summary = openkms("audit", "export", *trail.db(), "--format", "cloudtrail", "--output", "ct", "--json").json()
    directory = Path(summary["Path"])
    assert directory == trail.data_dir / "exports" / "ct" and stat.S_IMODE(directory.stat().st_mode) == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted(summary["FileNames"]) and summary["Files"] == len(names) >= 1
    exported: list[dict[str, Any]] = []
    for name in names:
        match = CLOUDTRAIL_FILE.match(name)
        assert match, name
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
        with gzip.open(directory / name, "rt", encoding="utf-8") as stream:
            document = json.load(stream)
        assert list(document) == ["Records"]
        for record in document["Records"]:
            assert record["awsRegion"] == match.group(2)
            assert (record["recipientAccountId"] or "unknown") == match.group(1)
            assert record["eventTime"].replace("-", "").replace(":", "")[:11] == match.group(3)[:11]
            assert schema_errors(record, CLOUDTRAIL_SCHEMA) == []
        exported += document["Records"]
    assert sorted(e["eventID"] for e in exported) == sorted(e["eventID"] for e in trail.records())
    table_out = ok(openkms("audit", "export", *trail.db(), "--format", "cloudtrail", "--output", "ct2"))
    assert table(table_out)[0] == ["Format", "Path", "Records", "Files"]


def test_export_cloudtrail_needs_a_directory_name(trail: Trail) -> None:
    refused(openkms("audit", "export", *trail.db(), "--format", "cloudtrail"), 2, "give --output NAME")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_export_and_verify_show_progress_on_a_terminal_only(trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "PROGRESS_INTERVAL", 0.0)
    for args, label in (
        (["audit", "export", *trail.db(), "--output", "progress.jsonl"], "exporting records"),
        (["audit", "verify", *trail.db()], "verifying records"),
        (["audit", "verify", *trail.db(), "--export", str(trail.data_dir / "exports" / "progress.jsonl")],
         "verifying export (bytes)"),
    ):  # fmt: skip
        out, err = io.StringIO(), _Terminal()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(args) == 0
        assert f"\r{label}: " in err.getvalue(), err.getvalue()
        assert err.getvalue().endswith("\r\x1b[K") or "note:" in err.getvalue()
        assert "\r" not in out.getvalue()
    plain = openkms("audit", "export", *trail.db(), "--output", "progress2.jsonl")
    assert plain.code == 0 and "\r" not in plain.err


# ---- exports stay inside <data-dir>/exports ----------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A fresh data directory and, beside it, a directory that must stay untouched."""
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside"
    data_dir.mkdir(mode=0o700)
    open_migrated(f"sqlite:///{data_dir / 'openkms.db'}", data_dir).close()  # an empty trail, as `init` leaves
    outside.mkdir()
    (outside / "target.jsonl").write_text("precious\n")
    before = _tree(outside)
    yield data_dir, outside
    assert _tree(outside) == before, "something was written outside the data directory"


def _tree(root: Path) -> dict[str, tuple[int, bytes | str]]:
    found: dict[str, tuple[int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content: bytes | str = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else ""
        found[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), content)
    return found


def _export(data_dir: Path, output: str, *extra: str) -> Run:
    return openkms("audit", "export", "--data-dir", str(data_dir), "--output", output, *extra)


def test_a6_dotdot_is_refused(sandbox: tuple[Path, Path]) -> None:
    data_dir, _ = sandbox
    refused(_export(data_dir, "../outside/new.jsonl"), 2, "'..'")
    refused(_export(data_dir, "sub/../../x.jsonl"), 2, "'..'")
    refused(_export(data_dir, f"{data_dir}/exports/../openkms.db"), 2, "'..'")


def test_a6_absolute_paths_outside_the_exports_directory_are_refused(sandbox: tuple[Path, Path]) -> None:
    data_dir, outside = sandbox
    refused(_export(data_dir, str(outside / "new.jsonl")), 2, "outside", "exports")
    refused(_export(data_dir, str(data_dir / "openkms.db.jsonl")), 2, "outside")
    refused(_export(data_dir, str(data_dir / "exports")), 2, "names no file")
    refused(_export(data_dir, "/etc/cron.d/openkms", "--format", "cloudtrail"), 2, "outside")
    inside = _export(data_dir, str(data_dir / "exports" / "fine.jsonl"))  # absolute but inside: allowed
    assert inside.code == 0 and (data_dir / "exports" / "fine.jsonl").exists()


def test_a6_a_symlinked_exports_directory_is_refused(sandbox: tuple[Path, Path]) -> None:
    data_dir, outside = sandbox
    (data_dir / "exports").symlink_to(outside, target_is_directory=True)
    refused(_export(data_dir, "new.jsonl"), 2, "symbolic link")
    refused(_export(data_dir, "ct", "--format", "cloudtrail"), 2, "symbolic link")


def test_a6_a_symlinked_subdirectory_is_refused(sandbox: tuple[Path, Path]) -> None:
    data_dir, outside = sandbox
    (data_dir / "exports").mkdir(mode=0o700)
    (data_dir / "exports" / "sub").symlink_to(outside, target_is_directory=True)
    refused(_export(data_dir, "sub/new.jsonl"), 2, "symbolic link")
    refused(_export(data_dir, "sub", "--format", "cloudtrail"), 2, "symbolic link")


def test_a6_a_symlinked_file_is_refused_and_its_target_untouched(sandbox: tuple[Path, Path]) -> None:
    data_dir, outside = sandbox
    (data_dir / "exports").mkdir(mode=0o700)
    (data_dir / "exports" / "trail.jsonl").symlink_to(outside / "target.jsonl")
    (data_dir / "exports" / "dangling.jsonl").symlink_to(outside / "not-yet.jsonl")
    refused(_export(data_dir, "trail.jsonl"), 2, "symbolic link")
    refused(_export(data_dir, "dangling.jsonl"), 2, "symbolic link")
    assert not (outside / "not-yet.jsonl").exists()


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o705, 0o777, 0o701])
def test_a6_an_exports_directory_others_may_use_is_refused(sandbox: tuple[Path, Path], mode: int) -> None:
    data_dir, _ = sandbox
    exports = data_dir / "exports"
    exports.mkdir()
    exports.chmod(mode)
    refused(_export(data_dir, "new.jsonl"), 2, f"mode {mode:04o}", "chmod 700")
    assert list(exports.iterdir()) == []
    (exports / "sub").mkdir(mode=0o700)
    exports.chmod(0o700)
    (exports / "sub").chmod(mode)
    refused(_export(data_dir, "sub/new.jsonl"), 2, f"mode {mode:04o}")
    assert list((exports / "sub").iterdir()) == []


def test_a6_created_directories_and_files_are_private(sandbox: tuple[Path, Path]) -> None:
    data_dir, _ = sandbox
    old = os.umask(0)  # even with a permissive umask
    try:
        assert _export(data_dir, "a/b/trail.jsonl").code == 0
    finally:
        os.umask(old)
    for path in (data_dir / "exports", data_dir / "exports" / "a", data_dir / "exports" / "a" / "b"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE((data_dir / "exports" / "a" / "b" / "trail.jsonl").stat().st_mode) == 0o600


def test_a6_a_file_where_a_directory_should_be_is_refused(sandbox: tuple[Path, Path]) -> None:
    data_dir, _ = sandbox
    (data_dir / "exports").mkdir(mode=0o700)
    (data_dir / "exports" / "plain").write_text("x")
    refused(_export(data_dir, "plain/new.jsonl"), 2, "not a directory")


# ---- verify -----------------------------------------------------------------------------------------------------


def test_verify_the_database_table_and_json(trail: Trail, tmp_path: Path) -> None:
    run = openkms("audit", "verify", *trail.db())
    assert run.code == 0, run
    header, rows = table(run.out)
    assert header == ["Ok", "Records", "Digests", "FirstSeq", "LastSeq", "UnsignedTail"]
    assert rows[0][0] == "yes" and int(rows[0][1]) == len(trail.records())
    assert "no --public-key given" in run.err
    key_file = tmp_path / "key.pem"
    key_file.write_text(ok(openkms("audit", "public-key", *trail.db())))
    pinned = openkms("audit", "verify", *trail.db(), "--public-key", str(key_file), "--json")
    assert pinned.code == 0 and pinned.err == ""
    result = pinned.json()
    assert set(result) == {
        "ok", "records", "digests", "firstSeq", "lastSeq", "unsignedTail", "newestDigest", "anchoredDigestSeq",
        "problems",
    }  # fmt: skip
    assert result["ok"] is True and result["problems"] == [] and result["firstSeq"] == 1
    assert result["anchoredDigestSeq"] is None  # no --anchor-dir
    assert set(result["newestDigest"]) == {"digestSeq", "toSeq", "periodEnd", "digestHash"}


def test_verify_anchor_dir_is_for_the_database_not_an_export(trail: Trail, tmp_path: Path) -> None:
    run = openkms("audit", "verify", *trail.db(), "--export", str(tmp_path / "x.jsonl"), "--anchor-dir", str(tmp_path))
    refused(run, 2, "--anchor-dir checks the database's trail")


def test_verify_with_another_pinned_key_exits_3(trail: Trail, tmp_path: Path) -> None:
    spec = "ECC_NIST_EDWARDS25519"
    other = keypairs.public_key_der(keypairs.load_private_key(spec, keypairs.generate_private_key(spec)))
    der_file = tmp_path / "other.der"
    der_file.write_bytes(other)
    run = openkms("audit", "verify", *trail.db(), "--public-key", str(der_file))
    assert run.code == 3, run
    assert "problem: digest 1: signed by unknown key" in run.out
    # The stored key as DER (no Key-Id in the file) is matched to its id through the trail's key list.
    [stored] = digests.public_keys(trail.kms.storage)
    der_file.write_bytes(stored.public_key)
    assert openkms("audit", "verify", *trail.db(), "--public-key", str(der_file)).code == 0


@pytest.fixture
def altered(trail: Trail, tmp_path: Path) -> Path:
    """A copy of the trail's data directory, for tampering with."""
    copy = tmp_path / "copy"
    copy.mkdir(mode=0o700)
    with sqlite3.connect(trail.data_dir / "openkms.db") as source, sqlite3.connect(copy / "openkms.db") as target:
        source.backup(target)
    return copy


def test_verify_finds_an_edited_record_and_exits_3(altered: Path) -> None:
    with sqlite3.connect(altered / "openkms.db") as db:
        db.execute("UPDATE audit_events SET event = replace(event, 'Decrypt', 'Encrypt') WHERE event_name = 'Decrypt'")
    run = openkms("audit", "verify", "--data-dir", str(altered), "--json")
    assert run.code == 3
    report = run.json()
    assert report["ok"] is False and "changed" in report["problems"][0]


def test_verify_finds_a_removed_record_and_exits_3(altered: Path) -> None:
    with sqlite3.connect(altered / "openkms.db") as db:
        db.execute("DELETE FROM audit_events WHERE seq = 5")
    run = openkms("audit", "verify", "--data-dir", str(altered))
    assert run.code == 3 and "problem: record 5: removed" in run.out


def test_verify_an_edited_export_exits_3(trail: Trail, tmp_path: Path) -> None:
    text = ok(openkms("audit", "export", *trail.db()))
    lines = text.splitlines()
    record = next(i for i, line in enumerate(lines) if '"type":"record"' in line and "GenerateRandom" in line)
    edited = tmp_path / "edited.jsonl"
    changed = lines[record].replace("GenerateRandom", "GenerateRandoM")
    edited.write_text("\n".join([*lines[:record], changed, *lines[record + 1 :]]) + "\n")
    assert openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(edited)).code == 3
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:record], lines[record][:-5], *lines[record + 1 :]]) + "\n")
    run = openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(broken), "--json")
    assert run.code == 3 and "malformed" in run.json()["problems"][0]
    # Dropping the unsigned tail goes unnoticed (only the chain protects it, and nothing follows it); dropping
    # records a digest covers does not.
    tail = tmp_path / "tail.jsonl"
    tail.write_text("\n".join(lines[:-1]) + "\n")
    assert openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(tail)).code == 0
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-3]) + "\n")
    run = openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(cut))
    assert run.code == 3 and "missing" in run.out


def test_verify_refuses_what_is_not_an_export_with_exit_1(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    refused(
        openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(other)),
        1,
        "not an openkms audit export",
    )
    refused(
        openkms("audit", "verify", "--data-dir", str(tmp_path), "--export", str(tmp_path / "missing")), 1, "cannot read"
    )


def test_verify_refuses_a_bad_public_key_file_with_exit_2(trail: Trail, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n")
    refused(openkms("audit", "verify", *trail.db(), "--public-key", str(garbage)), 2, "not valid base64")
    rsa = tmp_path / "rsa.der"
    rsa.write_bytes(
        keypairs.public_key_der(keypairs.load_private_key("RSA_2048", keypairs.generate_private_key("RSA_2048")))
    )
    refused(openkms("audit", "verify", *trail.db(), "--public-key", str(rsa)), 2, "not an Ed25519 public key")
    refused(openkms("audit", "verify", *trail.db(), "--public-key", str(tmp_path / "nope")), 2, "cannot read")
    refused(openkms("audit", "verify", *trail.db(), "--export", str(garbage), "--sign-now"), 2, "does not apply")


def test_sign_now_signs_the_tail_first(trail: Trail, altered: Path) -> None:
    shutil.copy(trail.data_dir / "root.keyfile", altered / "root.keyfile")
    before = openkms("audit", "verify", "--data-dir", str(altered), "--json").json()
    assert before["unsignedTail"] >= 1
    after = openkms("audit", "verify", "--data-dir", str(altered), "--sign-now", "--json").json()
    assert after["ok"] and after["unsignedTail"] == 0 and after["digests"] == before["digests"] + 1
    exported = _export(altered, "-", "--sign-now")
    assert exported.code == 0 and "follow the last signed digest" not in exported.err
    again = openkms("audit", "verify", "--data-dir", str(altered), "--seal-now", "--json").json()  # the old name
    assert again["ok"] and again["unsignedTail"] == 0


# ---- public-key -------------------------------------------------------------------------------------------------


def test_public_key_pem_and_json(trail: Trail) -> None:
    text = ok(openkms("audit", "public-key", *trail.db()))
    [(key_id, der)] = _pem_keys(text)
    [stored] = digests.public_keys(trail.kms.storage)
    assert (key_id, der) == (stored.key_id, stored.public_key)
    keypairs.load_public_key("ECC_NIST_EDWARDS25519", der)
    [row] = openkms("audit", "public-key", *trail.db(), "--json").json()
    assert (
        row["KeyId"] == key_id and base64.b64decode(row["PublicKey"]) == der and row["Algorithm"] == "ED25519_SHA_512"
    )
    assert row["Pem"] in text


def test_public_key_before_any_digest_is_exit_1(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    open_migrated(f"sqlite:///{data_dir / 'openkms.db'}", data_dir).close()
    refused(openkms("audit", "public-key", "--data-dir", str(data_dir)), 1, "no signing key yet")


@pytest.mark.parametrize("command", [["query"], ["export"], ["verify"], ["public-key"]])
def test_a_data_directory_without_a_database_is_refused_and_left_empty(tmp_path: Path, command: list[str]) -> None:
    """A mistyped --data-dir names no database: say so, and create none (an empty one would answer "nothing")."""
    refused(openkms("audit", *command, "--data-dir", str(tmp_path / "typo")), 1, "no openkms database", "typo")
    assert not (tmp_path / "typo").exists()


# ---- exit codes of the real process -------------------------------------------------------------------------------


def test_exit_codes_of_the_process(trail: Trail, altered: Path) -> None:
    def process(*args: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
        done = subprocess.run([sys.executable, "-m", "openkms", *args], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)  # fmt: skip
        return done.returncode

    assert process("audit", "verify", *trail.db()) == 0
    assert process("audit", "query", *trail.db(), "--key-id", "alias/nope") == 1
    assert process("audit", "query", *trail.db(), "--operation", "Nope") == 2
    assert process("audit", "export", *trail.db(), "--output", "../escape.jsonl") == 2
    with sqlite3.connect(altered / "openkms.db") as db:
        db.execute("UPDATE audit_events SET source_ip = '192.0.2.99' WHERE seq = 3")
    assert process("audit", "verify", "--data-dir", str(altered)) == 3
