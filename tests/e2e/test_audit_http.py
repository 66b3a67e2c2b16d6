"""The audit trail through real clients on both engines: docs/tests.md A-1 (exactly one record per request), A-2 (no
secret anywhere: canaries in the database files, logs and answers) and A-3 (fail closed, recover by itself).

Each test here has its own server (the session server's trail also holds other tests' requests), and reads the
trail from the server's database with the storage port, as ``openkms audit`` does.
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.audit import verify
from openkms.storage.audit import AuditRow
from openkms.storage.factory import open_storage
from tests.audit_faults import install_audit_fault
from tests.e2e import rawhttp
from tests.e2e.kmsapi import key_arn
from tests.e2e.principals import make_user
from tests.e2e.server import ACCOUNT_ID, SECRET_ACCESS_KEY, ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

CALLS = int(os.environ.get("OPENKMS_A1_CALLS", "1500"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    temp_db: str | None = None
    if request.param == "postgres":
        postgres_or_skip()
        temp_db = create_temp_database()
        url = temp_db
    else:
        url = f"sqlite:///{tmp_path / 'openkms.db'}"
    server = ServerProcess(tmp_path, url, free_port()).start()
    yield server
    server.stop()
    if temp_db is not None:
        drop_database(temp_db)


def trail(server: ServerProcess) -> list[AuditRow]:
    storage = open_storage(server.database_url)
    try:
        with storage.read() as tx:
            return tx.audit_range(0, 1_000_000)
    finally:
        storage.close()


@dataclass
class Entry:
    request_id: str
    operation: str
    error_code: str | None
    principal_arn: str  # "" when the caller was not authenticated
    key_id: str | None  # the key the record must name, when known


def _request_id(result: dict[str, Any]) -> str:
    return str(result["ResponseMetadata"]["RequestId"])


def call(ledger: list[Entry], client: Any, principal: str, key_id: str | None, operation: str, **params: Any) -> Any:
    method = getattr(client, "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_"))
    try:
        result = method(**params)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        ledger.append(Entry(_request_id(exc.response), operation, code, principal, key_id))
        return None
    ledger.append(Entry(_request_id(result), operation, None, principal, key_id))
    return result


def test_a1_exactly_one_record_per_request(own_server: ServerProcess) -> None:
    server = own_server
    admin = server.client()
    admin_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
    outsider = make_user(server, "outsider")  # no policy: every key operation is denied
    stranger = server.client("AKIAUNKNOWNUNKNOWN99", "not-a-secret")  # unauthenticated
    ledger: list[Entry] = []
    keys = [admin.create_key(Description="a1")["KeyMetadata"]["KeyId"] for _ in range(3)]
    blobs: dict[str, bytes] = {}
    rng = random.Random(11)
    for n in range(CALLS):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.35:
            result = call(ledger, admin, admin_arn, key, "Encrypt", KeyId=key, Plaintext=b"p" * rng.randint(1, 64))
            blobs[key] = result["CiphertextBlob"]
        elif roll < 0.55 and key in blobs:
            call(ledger, admin, admin_arn, key, "Decrypt", CiphertextBlob=blobs[key])
        elif roll < 0.65:
            call(ledger, admin, admin_arn, key, "GenerateDataKey", KeyId=key, KeySpec="AES_256")
        elif roll < 0.72:
            call(ledger, outsider.kms, outsider.arn, key, "Encrypt", KeyId=key, Plaintext=b"x")
        elif roll < 0.77:
            call(ledger, stranger, "", None, "Encrypt", KeyId=key, Plaintext=b"x")
        elif roll < 0.82:
            call(ledger, admin, admin_arn, None, "DescribeKey", KeyId="alias/does-not-exist")
        elif roll < 0.87:
            call(
                ledger, admin, admin_arn, key, "TagResource", KeyId=key, Tags=[{"TagKey": f"t{n % 7}", "TagValue": "v"}]
            )
        elif roll < 0.92:
            body = b'{"KeyId": "' + key.encode() + b'", "Plaintext": '  # malformed JSON, properly signed
            reply = rawhttp.post(server.port, rawhttp.sign(server.port, body), body)
            assert reply.status == 400 and reply.request_id
            ledger.append(Entry(reply.request_id, "Encrypt", reply.error_type, admin_arn, None))
        else:
            call(ledger, admin, admin_arn, None, "ListKeys")
    # Unauthenticated calls beyond their budget are counted into summary records, not recorded one by one
    # (audit/unauthenticated.py); a clean stop writes the summaries still pending.
    server.stop()
    everything = trail(server)
    summaries = [json.loads(r.event) for r in everything if r.event_name == "UnauthenticatedRequestsSummary"]
    # KMS calls only: `openkms iam` made the outsider, and its changes are recorded too (iam.amazonaws.com).
    records = [r for r in everything if json.loads(r.event)["eventSource"] == "kms.amazonaws.com"]
    counted = sum(s["serviceEventDetails"]["count"] for s in summaries)
    by_request: dict[str, list[AuditRow]] = {}
    for row in records:
        by_request.setdefault(row.request_id, []).append(row)
    mismatches: list[str] = []
    not_recorded_alone = 0
    for entry in ledger:
        found = by_request.get(entry.request_id, [])
        if not found and not entry.principal_arn:
            not_recorded_alone += 1
            continue
        if len(found) != 1:
            mismatches.append(f"{entry.operation} {entry.request_id}: {len(found)} records")
            continue
        row = found[0]
        event = json.loads(row.event)
        expected = (entry.operation, entry.error_code, entry.principal_arn)
        if (row.event_name, row.error_code, row.principal_arn) != expected:
            mismatches.append(
                f"{entry.request_id}: {(row.event_name, row.error_code, row.principal_arn)} != {expected}"
            )
        if (
            entry.key_id is not None
            and entry.principal_arn
            and key_arn(entry.key_id) not in [r["ARN"] for r in event["resources"]]
        ):
            mismatches.append(f"{entry.request_id}: resources {event['resources']} lack {entry.key_id}")
        if entry.operation == "Decrypt" and entry.error_code is None:
            if event["requestParameters"].get("encryptionAlgorithm") != "SYMMETRIC_DEFAULT":
                mismatches.append(f"{entry.request_id}: Decrypt without encryptionAlgorithm")
            if len(event.get("additionalEventData", {}).get("keyMaterialId", "")) != 64:
                mismatches.append(f"{entry.request_id}: Decrypt without the backing key material id")
    setup = len(records) + not_recorded_alone - len(ledger)  # the three CreateKey calls
    print(f"A-1: {len(ledger)} requests, {len(records)} records, {counted} counted, {len(mismatches)} mismatches")
    assert mismatches == []
    assert not_recorded_alone == counted, "an unauthenticated call was neither recorded nor counted"
    assert setup == len(keys)
    assert len({r.request_id for r in records}) == len(records)  # no request has two records


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        base64.b64encode(secret).rstrip(b"="),
    ]


def test_a2_no_plaintext_data_key_or_secret_reaches_files_logs_or_errors(own_server: ServerProcess) -> None:
    server = own_server
    admin = server.client()
    key = admin.create_key(Description="a2")["KeyMetadata"]["KeyId"]
    canaries: list[bytes] = []
    answers: list[bytes] = []
    for _ in range(40):
        marker = secrets.token_bytes(16)
        canaries.append(marker)
        plaintext = b"canary:" + marker
        blob = admin.encrypt(KeyId=key, Plaintext=plaintext, EncryptionContext={"purpose": "a2"})["CiphertextBlob"]
        assert admin.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "a2"})["Plaintext"] == plaintext
        data_key = admin.generate_data_key(KeyId=key, NumberOfBytes=32)["Plaintext"]
        canaries.append(data_key)
        try:  # a failing call whose request carried a canary: the error must not echo it
            admin.decrypt(CiphertextBlob=blob + marker, EncryptionContext={"purpose": "a2"})
        except ClientError as exc:
            answers.append(json.dumps(exc.response["Error"]).encode())
    user = make_user(server, "canary")
    canaries.append(user.credentials[1].encode())
    canaries.append(SECRET_ACCESS_KEY.encode())  # nor the administrator's secret
    server.stop()
    files: list[Path] = [p for p in server.data_dir.rglob("*") if p.is_file()]
    blobs = [p.read_bytes() for p in files] + answers
    if server.database_url.startswith("postgresql"):
        dump = subprocess.run(["pg_dump", "--data-only", server.database_url], capture_output=True, check=True)
        blobs.append(dump.stdout)
    hits = [
        (i, form[:8].hex())
        for i, canary in enumerate(canaries)
        for form in _forms(canary)
        if any(form in blob for blob in blobs)
    ]
    print(f"A-2: {len(canaries)} canaries x {len(_forms(b'x'))} forms, {len(blobs)} files and answers scanned")
    assert hits == []


def test_a3_fail_closed_and_recover_without_restart(own_server: ServerProcess) -> None:
    server = own_server
    admin = server.client()
    key = admin.create_key(Description="a3")["KeyMetadata"]["KeyId"]
    blob = admin.encrypt(KeyId=key, Plaintext=b"before the fault")["CiphertextBlob"]
    set_fault = install_audit_fault(server.database_url)
    keys_before = {k["KeyId"] for k in admin.list_keys()["Keys"]}
    set_fault(True)
    attempts: list[tuple[str, str]] = []
    succeeded: list[str] = []
    for n in range(60):
        operation, params = [
            ("Encrypt", {"KeyId": key, "Plaintext": b"during the fault"}),
            ("Decrypt", {"CiphertextBlob": blob}),
            ("GenerateDataKey", {"KeyId": key, "NumberOfBytes": 32}),
            ("CreateKey", {"Description": f"during-fault-{n}"}),
            ("TagResource", {"KeyId": key, "Tags": [{"TagKey": f"fault{n}", "TagValue": "x"}]}),
            ("DisableKey", {"KeyId": key}),
        ][n % 6]
        method = getattr(admin, "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_"))
        try:
            method(**params)
            succeeded.append(operation)
        except ClientError as exc:
            attempts.append((operation, exc.response["Error"]["Code"]))
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert "Plaintext" not in exc.response
    set_fault(False)
    assert succeeded == []  # 0 answers without a record
    assert {code for _, code in attempts} == {"KMSInternalException"}
    # Nothing changed: no key created, the key still enabled and untagged.
    assert {k["KeyId"] for k in admin.list_keys()["Keys"]} == keys_before
    assert admin.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert admin.list_resource_tags(KeyId=key)["Tags"] == []
    # Recovered without a restart, and the trail still verifies.
    assert admin.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the fault"
    events = [json.loads(r.event) for r in trail(server)]
    assert not any(e["eventName"] in ("TagResource", "DisableKey") for e in events)
    assert sum(e["eventName"] == "CreateKey" for e in events) == 1
    print(f"A-3: {len(attempts)} requests during the fault, all KMSInternalException, 0 unaudited successes")


def test_the_server_signs_digests_and_the_trail_verifies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'openkms.db'}"
    server = ServerProcess(tmp_path, url, free_port(), extra_args=["--audit-digest-interval", "1"]).start()
    try:
        admin = server.client()
        key = admin.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(20):
            admin.encrypt(KeyId=key, Plaintext=b"x")
        deadline = time.monotonic() + 20
        storage = open_storage(url)
        try:
            while time.monotonic() < deadline:
                with storage.read() as tx:
                    last = tx.last_digest()
                if last is not None and last.to_seq >= 21:
                    break
                time.sleep(0.2)
            report = verify.verify_storage(storage)
        finally:
            storage.close()
    finally:
        server.stop()
    assert last is not None and last.to_seq >= 21
    assert report.ok and report.records >= 21, report.problems
