"""Hostile input at every unauthenticated surface, as an outside attacker and a user with no rights would send it
(issue 15 items 1, 2, 8, 9, 14, 15, and the classes behind them).

Each worker logs ``event loop blocked for N ms`` when its loop was held more than 100 ms (server/loop_lag.py);
the last test drives the whole corpus at ``/``, ``/unseal``, ``/console/*`` and ``/healthz`` and requires no such
line, so no input here may do heavy work on a loop.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.server.loop_lag import WARNING_TEXT
from tests.console.web_client import Browser
from tests.e2e.principals import make_user
from tests.e2e.rawhttp import JSON_1_1, post, sign
from tests.e2e.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e

READ_SECONDS = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("hostile")
    limits = ["--request-read-seconds", str(READ_SECONDS), "--keep-alive-seconds", "3"]
    limits += ["--max-connections-per-worker", "32"]
    process = ServerProcess(data_dir, f"sqlite:///{data_dir / 'openkms.db'}", free_port(), extra_args=limits)
    process.start()
    yield process
    process.stop()


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(65536) == b"" or True  # any answer then close counts; a timeout means still open
    except TimeoutError:
        return False
    except OSError:
        return True


def _healthy(server: ServerProcess, timeout: float = 2) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    finally:
        conn.close()


# -- item 9: header size -----------------------------------------------------------------------------------------


def _send_head(server: ServerProcess, pieces: list[bytes]) -> bytes:
    sock = _connect(server)
    try:
        try:
            for piece in pieces:
                sock.sendall(piece)
        except OSError:
            pass  # the server answered and closed while we were still sending: what is wanted
        sock.settimeout(5)
        return sock.recv(200)
    finally:
        sock.close()


@pytest.mark.parametrize(
    "pieces",
    [
        [b"POST / HTTP/1.1\r\nHost: x\r\n", *[b"X-Pad: " + b"a" * 8000 + b"\r\n"] * 4096, b"\r\n"],  # 32 MiB
        [b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: ", *[b"a" * 65536] * 512, b"\r\n\r\n"],  # one endless header
        [b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n\r\n"],  # an endless URL
    ],
    ids=["many-headers", "one-endless-header", "endless-url"],
)
def test_an_oversized_head_gets_431_and_is_not_parsed(server: ServerProcess, pieces: list[bytes]) -> None:
    answer = _send_head(server, pieces)
    assert answer.startswith(b"HTTP/1.1 431 "), answer
    assert _healthy(server)


def test_a_head_within_the_limit_is_served(server: ServerProcess) -> None:
    answer = _send_head(server, [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 12_000 + b"\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 200 "), answer


# -- item 15: idle, slowloris and too many connections ----------------------------------------------------------


def test_idle_and_slowloris_connections_are_closed(server: ServerProcess) -> None:
    idle = [_connect(server) for _ in range(20)]
    slow = [_connect(server) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    for _ in range(int(READ_SECONDS / 0.5) + 4):  # a header every half second: never a whole request
        time.sleep(0.5)
        for sock in slow:
            try:
                sock.sendall(b"X-a: b\r\n")
            except OSError:
                pass
    still_open = [s for s in idle + slow if not _closed_by_server(s)]
    for sock in idle + slow:
        sock.close()
    assert not still_open, f"{len(still_open)} of 40 connections still open after {READ_SECONDS + 2} s"


def test_at_the_connection_cap_idle_connections_make_room(server: ServerProcess) -> None:
    hogs = [_connect(server) for _ in range(80)]  # more than both workers' caps together
    try:
        time.sleep(0.2)
        assert _healthy(server)
    finally:
        for sock in hogs:
            sock.close()


# -- item 2: policy wildcards from a caller with no rights -------------------------------------------------------


def test_a_caller_with_no_rights_cannot_stall_a_worker_with_wildcards(server: ServerProcess) -> None:
    nobody = make_user(server, "no-rights")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:" + "*" * 64 + "x",
                       "Resource": "*"}],
    }  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ClientError) as caught:
        nobody.kms.create_key(Policy=json.dumps(policy))
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert time.monotonic() - started < 5


def test_an_allowed_caller_with_sixty_four_stars_gets_an_answer(server: ServerProcess) -> None:
    admin: Any = server.client()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*",
             "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:" + "*" * 64 + "x", "Resource": "*",
             "Condition": {"StringLike": {"kms:EncryptionContext:t": "*" * 64 + "x"}}},
        ],
    }  # fmt: skip
    started = time.monotonic()
    key_id = admin.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    admin.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"t": "a" * 4000})
    assert time.monotonic() - started < 5


# -- item 1 on the KMS endpoint ------------------------------------------------------------------------------------


def test_the_quadratic_json_body_is_refused_at_once_on_the_kms_endpoint(server: ServerProcess) -> None:
    body = b"[" * 33 + b'"' + b'\\"' * 40_000
    started = time.monotonic()
    reply = post(server.port, sign(server.port, body, "TrentService.ListKeys"), body)
    assert reply.status == 400 and reply.error_type == "SerializationException", reply.describe()
    assert time.monotonic() - started < 2


# -- item 14: regions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east1", "x", "a" * 3000, "eu-west-9"])
def test_a_region_aws_does_not_have_is_refused(server: ServerProcess, region: str) -> None:
    reply = post(server.port, sign(server.port, b"{}", "TrentService.ListKeys", region=region), b"{}")
    assert (reply.status, reply.error_type) == (400, "InvalidSignatureException"), reply.describe()
    assert reply.json()["message"] == "Credential should be scoped to a valid region."


def test_every_aws_region_is_served(server: ServerProcess) -> None:
    for region in ("eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"):
        kms: Any = server.client(region=region)
        assert "Keys" in kms.list_keys()


# -- item 8: unauthenticated calls are counted beyond a budget -----------------------------------------------------


def _unauthenticated_records(db: Path) -> tuple[int, list[dict[str, Any]]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        single = conn.execute("SELECT count(*) FROM audit_events WHERE principal_arn = ''").fetchone()[0]
        rows = conn.execute(
            "SELECT event FROM audit_events WHERE event_name = 'UnauthenticatedRequestsSummary'"
        ).fetchall()
    finally:
        conn.close()
    return int(single), [json.loads(row[0]) for row in rows]


def test_an_unauthenticated_flood_is_summarised_not_recorded_one_by_one(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'openkms.db'}", free_port(), workers=1).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", process.port, timeout=10)
        headers = {"Content-Type": JSON_1_1, "X-Amz-Target": "TrentService.ListKeys",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAFLOODFLOODFLOOD1/20260101/us-east-1/kms/"
                   "aws4_request, SignedHeaders=host, Signature=00"}  # fmt: skip
        for _ in range(600):
            conn.request("POST", "/", body=b"{}", headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status in (400, 403)
        conn.close()
        browser = Browser(process)
        for _ in range(200):  # failed console sign-ins are unauthenticated too
            assert browser.sign_in("AKIAFLOODFLOODFLOOD2", "wrong").status == 401
    finally:
        process.stop()  # a clean stop writes the pending summaries
    single, summaries = _unauthenticated_records(tmp_path / "openkms.db")
    counted = sum(s["serviceEventDetails"]["count"] for s in summaries)
    assert single < 60, f"{single} records for 800 unauthenticated calls"
    assert single + counted >= 800, (single, counted)  # every call is either recorded or counted
    details = summaries[0]["serviceEventDetails"]
    assert set(details["claimedAccessKeyIds"]) == {"AKIAFLOODFLOODFLOOD1", "AKIAFLOODFLOODFLOOD2"}
    assert details["eventNames"].get("ConsoleLogin", 0) > 150, details
    assert summaries[0]["sourceIPAddress"] == "127.0.0.1"


# -- the class: no input blocks an event loop -----------------------------------------------------------------------


def _corpus() -> list[tuple[str, str, dict[str, str], bytes]]:
    deep = b"[" * 100_000
    escapes = b"[" * 33 + b'"' + b'\\"' * 40_000
    numbers = b'{"a":' + b"1" * 100_000 + b"}"
    surrogates = b'{"a":"' + b"\\ud800" * 20_000 + b'"}'
    stars = json.dumps({"Policy": json.dumps({"Statement": [{"Action": "kms:" + "*" * 64 + "x"}]})}).encode()
    bodies = [deep, escapes, numbers, surrogates, stars, b"\xff" * 100_000, b"{" * 130_000]
    kms = {"Content-Type": JSON_1_1, "X-Amz-Target": "TrentService.CreateKey"}
    cases: list[tuple[str, str, dict[str, str], bytes]] = []
    for body in bodies:
        cases.append(("POST", "/", kms, body))
        cases.append(("POST", "/unseal", {"Content-Type": "application/json"}, body))
        cases.append(("POST", "/console/sign-in", {"Content-Type": "application/x-www-form-urlencoded"}, body))
    long_name = "a" * 5000
    cases += [
        ("GET", f"/console/static/{long_name}", {}, b""),
        ("GET", f"/console/audit?before={'9' * 5000}", {}, b""),
        ("GET", f"/console/keys?marker={long_name}", {}, b""),
        ("GET", "/healthz?" + "a=b&" * 2000, {}, b""),
        ("POST", "/", {"X-Amz-Target": "TrentService." + "A" * 5000, "Authorization": "x" * 8000}, b"{}"),
    ]
    return cases


def test_no_input_blocks_an_event_loop(server: ServerProcess) -> None:
    assert server.log_path is not None
    before = server.log_path.read_text(errors="replace").count(WARNING_TEXT)
    for method, path, headers, body in _corpus():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            status = conn.getresponse().status
        except (ConnectionError, http.client.HTTPException):
            status = 0  # refused and closed (431, a size limit)
        finally:
            conn.close()
        assert status < 500, (method, path[:60], status)
        assert _healthy(server, timeout=1), (method, path[:60])
    # The same bodies signed by the administrator: they reach the parser and model validation too.
    for _, path, _, body in _corpus():
        if path == "/" and len(body) <= 128 * 1024:
            reply = post(server.port, sign(server.port, body, "TrentService.Encrypt"), body)
            assert reply.status < 500, reply.describe()
    time.sleep(0.3)  # the monitor reports on its next tick
    after = server.log_path.read_text(errors="replace").count(WARNING_TEXT)
    assert after == before, server.log()[-2000:]
