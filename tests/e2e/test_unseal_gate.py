"""``POST /unseal`` is no passphrase oracle (issue 15 item 5): it refuses when already unsealed without looking at
the guess, backs off after a wrong passphrase on every worker, runs one key derivation at a time, can be kept to
loopback, and leaves an audit record per attempt. Its body parse is linear (item 1)."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_production_seal import (
    PASSPHRASE,
    WRONG_PASSPHRASE,
    Initialised,
    Server,
    health,
    initialised,
    sealed,
    unseal,
)

__all__ = ["initialised", "sealed"]  # fixtures of the production start, reused here

pytestmark = pytest.mark.e2e


def post_unseal(endpoint: str, body: bytes, timeout: float = 30) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(f"{endpoint}/unseal", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def passphrase_body(secret: str) -> bytes:
    return json.dumps({"passphrase": secret}).encode()


def unseal_records(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT event FROM audit_events WHERE event_name = 'Unseal' ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [json.loads(row[0]) for row in rows]


def test_a_wrong_passphrase_backs_off_every_worker_and_each_attempt_is_recorded(
    sealed: tuple[Initialised, Server],
) -> None:
    initialised, server = sealed
    status, body, _ = post_unseal(server.endpoint, passphrase_body(WRONG_PASSPHRASE))
    assert (status, body["__type"]) == (400, "InvalidUnsealKeyException"), body
    # At once, on new connections (so on either worker): refused before any derivation, with a Retry-After.
    refused = [post_unseal(server.endpoint, passphrase_body(PASSPHRASE)) for _ in range(6)]
    for status, body, headers in refused:
        assert (status, body["__type"]) == (429, "ThrottlingException"), body
        assert int(headers["retry-after"]) >= 1
    assert health(server.endpoint)[0] == 503
    time.sleep(1.2)
    # The CLI waits out a Retry-After by itself.
    assert unseal(server.endpoint, initialised.passphrase_file).returncode == 0
    records = unseal_records(initialised.data_dir / "openkms.db")
    outcomes = [(r["responseElements"]["Unseal"], r.get("errorCode")) for r in records]
    assert outcomes[0] == ("Failure", "InvalidUnsealKeyException"), outcomes
    assert outcomes.count(("Failure", "ThrottlingException")) >= 6, outcomes
    assert outcomes[-1] == ("Success", None), outcomes
    for record in records:
        text = json.dumps(record)
        assert PASSPHRASE not in text and WRONG_PASSPHRASE not in text
        assert record["sourceIPAddress"] == "127.0.0.1" and record["eventSource"] == "openkms"


def test_an_unsealed_server_checks_no_passphrase(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    assert unseal(server.endpoint, initialised.passphrase_file).returncode == 0
    for guess in (WRONG_PASSPHRASE, PASSPHRASE):  # the same answer, right or wrong: no oracle
        started = time.monotonic()
        status, body, _ = post_unseal(server.endpoint, passphrase_body(guess))
        assert (status, body) == (
            400,
            {"__type": "ValidationException", "message": "The service is already unsealed."},
        )
        assert time.monotonic() - started < 0.2  # no Argon2id ran
    result = unseal(server.endpoint, initialised.passphrase_file)
    assert result.returncode == 0 and "already unsealed" in result.stdout, result


@pytest.fixture
def sealed_loopback_refused(initialised: Initialised) -> Iterator[tuple[Initialised, Server]]:
    server = initialised.server(extra_args=["--unseal-from", "192.0.2.0/24"]).start(expect_status=503)
    yield initialised, server
    server.kill()


def test_unseal_from_names_the_only_networks_that_may_try(
    sealed_loopback_refused: tuple[Initialised, Server],
) -> None:
    _, server = sealed_loopback_refused
    status, body, _ = post_unseal(server.endpoint, passphrase_body(PASSPHRASE))
    assert (status, body["__type"]) == (403, "AccessDeniedException"), body
    assert health(server.endpoint)[0] == 503


def test_a_quadratic_json_body_is_refused_at_once_and_health_keeps_answering(
    sealed: tuple[Initialised, Server],
) -> None:
    """Item 1: two 80 KiB bodies of escaped quotes used to stop a 2-worker server for about 25 s."""
    _, server = sealed
    body = b"[" * 33 + b'"' + b'\\"' * 40_000
    started = time.monotonic()
    for _ in range(2):
        status, reply, _ = post_unseal(server.endpoint, body, timeout=10)
        assert status == 400 and reply["__type"] == "InvalidUnsealKeyException", reply
        assert "passphrase" in reply["message"]
    assert time.monotonic() - started < 3
    assert health(server.endpoint)[0] == 503
