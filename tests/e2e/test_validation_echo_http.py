"""Validation errors echo bounded values over HTTP, in the response and in the audit record (issue 15, item 16):
a 64 KiB alias breaking two rules made a 131 KB record. server/validate.py says how values are cut."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from openkms.server.validate import MAX_ECHO
from openkms.storage.factory import open_storage
from tests.e2e.kmsapi import expect_error, message, new_key, raw_client
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def _record(server: ServerProcess, request_id: str) -> str:
    """The stored audit event of ``request_id`` (canonical JSON)."""
    deadline = time.monotonic() + 10
    while True:
        storage = open_storage(server.database_url)
        try:
            with storage.read() as tx:
                found = [row.event for row in tx.audit_range(0, 10_000_000) if row.request_id == request_id]
        finally:
            storage.close()
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"{len(found)} audit records for {request_id}"
            return found[0]
        time.sleep(0.1)


def test_a_64_kib_alias_gives_a_short_response_and_a_short_audit_record(server: ServerProcess, kms: Any) -> None:
    raw = raw_client(server)
    alias = "alias/ " + "a" * 65536  # too long, and the space breaks the pattern: two rules
    exc = expect_error(raw.create_alias, "ValidationException", AliasName=alias, TargetKeyId=new_key(kms))
    text = message(exc)
    assert text.startswith("2 validation errors detected: ") and f"({len(alias)} characters)" in text
    assert len(text) < 2 * MAX_ECHO + 600, len(text)
    record = _record(server, exc.response["ResponseMetadata"]["RequestId"])
    assert len(record) < 4096, len(record)
    event = json.loads(record)
    assert event["errorCode"] == "ValidationException" and event["errorMessage"] == text
    assert "a" * (MAX_ECHO + 1) not in record
