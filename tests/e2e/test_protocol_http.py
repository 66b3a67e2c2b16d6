"""J-1 (strict JSON) and S-3 (one body read, one parse) over HTTP, with correctly signed requests.

Every request is signed by botocore over the exact bytes sent, so what is refused is refused for its body or its
framing, not its signature. Bodies carry a unique plaintext marker that no error body may echo.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rawhttp import (
    Header,
    Reply,
    child_pids,
    chunked,
    exchange,
    head_bytes,
    host_of,
    post,
    replace_header,
    sign,
)
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

LIMIT = 128 * 1024
SERIALIZATION = {"SerializationException"}
SHAPE_ERRORS = {"SerializationException", "ValidationException"}
UNKNOWN_OPERATION = {"UnknownOperationException"}


@dataclass(frozen=True)
class Ctx:
    port: int
    key_id: str
    marker: bytes

    @property
    def plaintext(self) -> str:
        return base64.b64encode(self.marker).decode()

    def encrypt_body(self, **extra: Any) -> bytes:
        return json.dumps({"KeyId": self.key_id, "Plaintext": self.plaintext, **extra}).encode()

    def raw(self, template: str) -> bytes:
        """A hand-written body: ``@K`` is the key id, ``@P`` the marker plaintext (base64)."""
        return template.replace("@K", self.key_id).replace("@P", self.plaintext).encode()


@pytest.fixture(scope="module")
def ctx(server: ServerProcess) -> Ctx:
    kms: Any = server.client()
    key_id: str = kms.create_key(Description="protocol http")["KeyMetadata"]["KeyId"]
    return Ctx(server.port, key_id, b"J1-MARKER-" + secrets.token_hex(8).encode())


@dataclass(frozen=True)
class Case:
    body: Callable[[Ctx], bytes]
    expected: set[str]
    target: str | None = "TrentService.Encrypt"
    content_type: str | None = "application/x-amz-json-1.1"


def _deep(depth: int, opener: str, closer: str) -> Callable[[Ctx], bytes]:
    return lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "Nested": ' + opener * depth + closer * depth + "}")


def _literal(data: bytes) -> Callable[[Ctx], bytes]:
    return lambda _c: data


CORPUS: dict[str, Case] = {
    # duplicate keys
    "duplicate KeyId, same value": Case(
        lambda c: c.raw('{"KeyId": "@K", "KeyId": "@K", "Plaintext": "@P"}'), SERIALIZATION
    ),
    "duplicate KeyId, other value": Case(
        lambda c: c.raw('{"KeyId": "alias/missing", "KeyId": "@K", "Plaintext": "@P"}'), SERIALIZATION
    ),
    "duplicate Plaintext": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "QQ==", "Plaintext": "@P"}'), SERIALIZATION
    ),
    "duplicate key in EncryptionContext": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "1", "a": "2"}}'), SERIALIZATION
    ),
    "duplicate EncryptionContext member": Case(
        lambda c: c.raw(
            '{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "1"}, "EncryptionContext": {"a": "2"}}'
        ),
        SERIALIZATION,
    ),
    "duplicate key in a Tag (CreateKey)": Case(
        _literal(b'{"Tags": [{"TagKey": "a", "TagKey": "b", "TagValue": "c"}]}'),
        SERIALIZATION,
        "TrentService.CreateKey",
    ),
    "duplicate key inside a key policy (CreateKey)": Case(
        _literal(
            json.dumps(
                {
                    "Policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Effect": "Deny", '
                    '"Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}'
                }
            ).encode()
        ),
        {"MalformedPolicyDocumentException"},
        "TrentService.CreateKey",
    ),
    # numbers
    "NaN": Case(_literal(b'{"NumberOfBytes": NaN}'), SERIALIZATION, "TrentService.GenerateRandom"),
    "Infinity": Case(_literal(b'{"NumberOfBytes": Infinity}'), SERIALIZATION, "TrentService.GenerateRandom"),
    "-Infinity": Case(_literal(b'{"NumberOfBytes": -Infinity}'), SERIALIZATION, "TrentService.GenerateRandom"),
    "NaN in EncryptionContext position": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": NaN}}'), SERIALIZATION
    ),
    "5,000-digit integer": Case(
        _literal(b'{"NumberOfBytes": ' + b"9" * 5000 + b"}"), SERIALIZATION, "TrentService.GenerateRandom"
    ),
    "5,000-digit negative integer": Case(
        _literal(b'{"NumberOfBytes": -' + b"9" * 5000 + b"}"), SERIALIZATION, "TrentService.GenerateRandom"
    ),
    "5,000-digit fraction": Case(
        _literal(b'{"NumberOfBytes": 1.' + b"0" * 5000 + b"}"), SERIALIZATION, "TrentService.GenerateRandom"
    ),
    "exponent overflow 1e999999": Case(
        _literal(b'{"NumberOfBytes": 1e999999}'), SERIALIZATION, "TrentService.GenerateRandom"
    ),
    # strings
    "lone high surrogate in EncryptionContext value": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "\\ud800"}}'), SERIALIZATION
    ),
    "lone low surrogate in EncryptionContext key": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"\\udfff": "v"}}'), SERIALIZATION
    ),
    "reversed surrogate pair in KeyId": Case(
        _literal(b'{"KeyId": "alias/\\udc00\\ud800", "Plaintext": "QQ=="}'), SERIALIZATION
    ),
    "lone surrogate in Description (CreateKey)": Case(
        _literal(b'{"Description": "x\\ud83d"}'), SERIALIZATION, "TrentService.CreateKey"
    ),
    # nesting
    "10k-deep arrays": Case(_deep(10_000, "[", "]"), SERIALIZATION),
    "10k-deep objects": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "N": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}"),
        SERIALIZATION,
    ),
    "10k-deep in EncryptionContext": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": ' + "[" * 10_000 + "]" * 10_000 + "}"),
        SERIALIZATION,
    ),
    # bytes
    "invalid UTF-8 (0xff)": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "') + b'\xff"}}', SERIALIZATION
    ),
    "overlong UTF-8 (0xc0 0xaf)": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "') + b'\xc0\xaf"}}',
        SERIALIZATION,
    ),
    "UTF-8 encoded surrogate (0xed 0xa0 0x80)": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "') + b'\xed\xa0\x80"}}',
        SERIALIZATION,
    ),
    "truncated UTF-8 sequence": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "') + b'\xe2\x82"}}',
        SERIALIZATION,
    ),
    "UTF-8 byte order mark": Case(lambda c: b"\xef\xbb\xbf" + c.encrypt_body(), SERIALIZATION),
    "UTF-16 body": Case(lambda c: c.encrypt_body().decode().encode("utf-16"), SERIALIZATION),
    "NUL byte after the object": Case(lambda c: c.encrypt_body() + b"\x00", SERIALIZATION),
    # shape
    "array body": Case(lambda c: b"[" + c.encrypt_body() + b"]", SERIALIZATION),
    "string body": Case(_literal(b'"KeyId"'), SERIALIZATION),
    "number body": Case(_literal(b"42"), SERIALIZATION),
    "null body": Case(_literal(b"null"), SERIALIZATION),
    "true body": Case(_literal(b"true"), SERIALIZATION),
    "form-encoded body": Case(lambda c: f"KeyId={c.key_id}&Plaintext={c.plaintext}".encode(), SERIALIZATION),
    "unterminated object": Case(lambda c: c.encrypt_body()[:-1], SERIALIZATION),
    "trailing garbage after the object": Case(lambda c: c.encrypt_body() + b"garbage", SERIALIZATION),
    "second object after the object": Case(lambda c: c.encrypt_body() + b'{"KeyId": "x"}', SERIALIZATION),
    "trailing comma": Case(lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P",}'), SERIALIZATION),
    "single quotes": Case(lambda c: c.raw("{'KeyId': '@K', 'Plaintext': '@P'}"), SERIALIZATION),
    "comment": Case(lambda c: c.raw('{"KeyId": "@K", /* c */ "Plaintext": "@P"}'), SERIALIZATION),
    "raw control character in a string": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"a": "x\ty"}}'), SERIALIZATION
    ),
    "KeyId is a number": Case(lambda c: c.raw('{"KeyId": 12, "Plaintext": "@P"}'), SHAPE_ERRORS),
    "EncryptionContext is a list": Case(
        lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": ["a"]}'), SHAPE_ERRORS
    ),
    "Plaintext not base64": Case(lambda c: c.raw('{"KeyId": "@K", "Plaintext": "@P!!!"}'), SHAPE_ERRORS),
    # content type
    "Content-Type text/plain": Case(
        lambda c: c.encrypt_body(), SHAPE_ERRORS | UNKNOWN_OPERATION, content_type="text/plain"
    ),
    "Content-Type application/xml": Case(
        lambda c: c.encrypt_body(), SHAPE_ERRORS | UNKNOWN_OPERATION, content_type="application/xml"
    ),
    "Content-Type form-urlencoded": Case(
        lambda c: c.encrypt_body(), SHAPE_ERRORS | UNKNOWN_OPERATION, content_type="application/x-www-form-urlencoded"
    ),
    # X-Amz-Target
    "X-Amz-Target unknown operation": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "TrentService.EncryptAll"),
    "X-Amz-Target prefix lower-case": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "trentservice.Encrypt"),
    "X-Amz-Target operation lower-case": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "TrentService.encrypt"),
    "X-Amz-Target upper-case": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "TRENTSERVICE.ENCRYPT"),
    "X-Amz-Target other service": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "DynamoDB_20120810.Encrypt"),
    "X-Amz-Target without operation": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "TrentService."),
    "X-Amz-Target without prefix": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, "Encrypt"),
    "X-Amz-Target missing": Case(lambda c: c.encrypt_body(), UNKNOWN_OPERATION, None),
}


def check_error(reply: Reply, expected: set[str], c: Ctx, what: str) -> None:
    assert 400 <= reply.status < 500, f"{what}: {reply.describe()}"
    assert reply.error_type in expected, f"{what}: expected {sorted(expected)}, got {reply.describe()}"
    document = reply.json()
    assert isinstance(document, dict) and set(document) <= {"__type", "message"}, f"{what}: {reply.describe()}"
    assert isinstance(document.get("message", ""), str), f"{what}: {reply.describe()}"
    assert reply.headers.get("content-type", "").startswith("application/x-amz-json-1.1"), reply.headers
    assert reply.request_id, f"{what}: no x-amzn-RequestId"
    assert c.marker not in reply.body and c.plaintext.encode() not in reply.body, f"{what}: plaintext echoed"


def send_case(c: Ctx, case: Case) -> Reply:
    body = case.body(c)
    return post(c.port, sign(c.port, body, case.target, content_type=case.content_type), body)


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_case_is_refused(ctx: Ctx, name: str) -> None:
    case = CORPUS[name]
    check_error(send_case(ctx, case), case.expected, ctx, name)


def test_corpus_figures(ctx: Ctx) -> None:
    """The J-1 figures: cases, 5xx (must be 0); the test per case above holds each code."""
    replies = {name: send_case(ctx, case) for name, case in CORPUS.items()}
    server_errors = [n for n, r in replies.items() if r.status >= 500]
    accepted = [n for n, r in replies.items() if r.status < 400]
    wrong = [n for n, r in replies.items() if r.error_type not in CORPUS[n].expected]
    print(f"J-1 cases={len(replies)} 5xx={len(server_errors)} accepted={len(accepted)} unexpected_code={len(wrong)}")
    assert server_errors == [], server_errors


def _encrypt(c: Ctx, **extra: Any) -> Reply:
    body = c.encrypt_body(**extra)
    return post(c.port, sign(c.port, body), body)


def test_controls_are_accepted(ctx: Ctx, server: ServerProcess) -> None:
    """The corpus's well-formed neighbours succeed: the refusals above are about the defect, not the request."""
    kms: Any = server.client()
    pair = {"purpose": "\U0001f600 pair", "b": "2"}
    escaped = ctx.raw(
        '{"KeyId": "@K", "Plaintext": "@P", "EncryptionContext": {"purpose": "\\ud83d\\ude00 pair", "b": "2"}}'
    )
    controls: list[tuple[bytes, str, dict[str, str]]] = [
        (ctx.encrypt_body(), "application/x-amz-json-1.1", {}),
        (ctx.encrypt_body(), "application/x-amz-json-1.1; charset=utf-8", {}),
        (ctx.encrypt_body(), "application/json", {}),
        (b"  \r\n\t" + ctx.encrypt_body() + b" \n", "application/x-amz-json-1.1", {}),
        (escaped, "application/x-amz-json-1.1", pair),  # a valid surrogate pair, escaped
    ]
    for body, content_type, context in controls:
        reply = post(ctx.port, sign(ctx.port, body, content_type=content_type), body)
        assert reply.status == 200, f"{body[:80]!r} {content_type}: {reply.describe()}"
        assert reply.request_id
        blob = base64.b64decode(reply.json()["CiphertextBlob"])
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == ctx.marker
    missing = ctx.raw('{"KeyId": "@K"}')
    reply = post(ctx.port, sign(ctx.port, missing), missing)
    assert reply.status == 400 and reply.error_type == "ValidationException", reply.describe()
    listed = post(ctx.port, sign(ctx.port, b"", "TrentService.ListKeys"), b"")
    assert listed.status == 200 and "Keys" in listed.json(), listed.describe()


def test_success_and_error_responses_carry_request_ids(ctx: Ctx) -> None:
    ok = _encrypt(ctx)
    bad = _encrypt(ctx, EncryptionContext={"a": 1})
    ids = {ok.request_id, bad.request_id}
    assert ok.status == 200 and bad.status == 400, (ok.describe(), bad.describe())
    for request_id in ids:
        assert request_id is not None and uuid.UUID(request_id)
    assert len(ids) == 2
    assert ok.headers["content-type"].startswith("application/x-amz-json-1.1")
    assert set(ok.json()) >= {"CiphertextBlob", "KeyId", "EncryptionAlgorithm"}
    check_error(bad, SHAPE_ERRORS, ctx, "EncryptionContext value is a number")
    assert bad.headers.get("x-amzn-errortype", bad.error_type) == bad.error_type


def test_healthz(server: ServerProcess) -> None:
    replies = exchange(
        server.port, head_bytes([("Host", host_of(server.port))], method="GET", path="/healthz"), expect=1
    )
    assert replies and replies[0].status == 200, replies
    assert replies[0].json()["sealed"] is False


# -- body size: refused with 413 before the body is read ---------------------------------------------------------


def _padded_encrypt_body(c: Ctx, size: int) -> bytes:
    body = c.encrypt_body()
    return body + b" " * (size - len(body))  # trailing whitespace keeps it one valid JSON object


def test_body_at_the_limit_is_accepted(ctx: Ctx) -> None:
    body = _padded_encrypt_body(ctx, LIMIT)
    reply = post(ctx.port, sign(ctx.port, body), body)
    assert reply.status == 200, reply.describe()


def test_declared_oversize_body_is_refused_before_it_is_sent(ctx: Ctx) -> None:
    """Only the headers go out; a 413 must come back while the server still waits for 128 KiB + 1 bytes."""
    body = _padded_encrypt_body(ctx, LIMIT + 1)
    headers = [*sign(ctx.port, body), ("Content-Length", str(len(body)))]
    replies = exchange(ctx.port, head_bytes(headers), timeout=5, expect=1)
    assert replies, "no answer before the body was sent"
    assert replies[0].status == 413, replies[0].describe()
    check_error(replies[0], {"RequestEntityTooLargeException"}, ctx, "declared oversize")


@pytest.mark.parametrize("declared", ["1000000000000", "99999999999999999999999999999"])
def test_absurd_content_length_is_refused(ctx: Ctx, declared: str) -> None:
    headers = [*sign(ctx.port, b"{}"), ("Content-Length", declared)]
    replies = exchange(ctx.port, head_bytes(headers), timeout=5, expect=1)
    assert replies, "no answer"
    assert 400 <= replies[0].status < 500, replies[0].describe()


def test_chunked_oversize_body_is_refused_before_it_ends(ctx: Ctx) -> None:
    """Chunks adding up to more than 128 KiB, never terminated: the 413 cannot wait for the end of the body."""
    body = _padded_encrypt_body(ctx, LIMIT + 8192)
    headers = [*sign(ctx.port, body), ("Transfer-Encoding", "chunked")]
    pieces = [chunked([body[i : i + 8192]], terminate=False) for i in range(0, len(body), 8192)]
    replies = exchange(ctx.port, head_bytes(headers), more=pieces, timeout=5, expect=1)
    assert replies, "no answer to an unterminated oversize chunked body"
    assert replies[0].status == 413, replies[0].describe()
    check_error(replies[0], {"RequestEntityTooLargeException"}, ctx, "chunked oversize")


def _worker_pids(server: ServerProcess) -> list[int]:
    assert server.process is not None
    return [server.process.pid, *child_pids(server.process.pid)]


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_peak_rss_after_the_oversize_corpus(ctx: Ctx, server: ServerProcess) -> None:
    """J-1 figure: oversize bodies are not buffered, so the workers' peak RSS stays small."""
    body = _padded_encrypt_body(ctx, 8 * LIMIT)
    for _ in range(5):
        headers = [*sign(ctx.port, body), ("Transfer-Encoding", "chunked")]
        pieces = [chunked([body[i : i + 65536]], terminate=False) for i in range(0, len(body), 65536)]
        replies = exchange(ctx.port, head_bytes(headers), more=pieces, timeout=5, expect=1)
        assert replies and replies[0].status == 413
    peaks = {pid: _peak_rss_kib(pid) for pid in _worker_pids(server)}
    print(f"J-1 peak RSS KiB per process: {peaks}")
    assert max(peaks.values()) < 512 * 1024, peaks


# -- S-3: the bytes hashed are the bytes parsed -----------------------------------------------------------------


def _decrypts_to(server: ServerProcess, reply: Reply, plaintext: bytes, context: dict[str, str] | None = None) -> bool:
    kms: Any = server.client()
    blob = base64.b64decode(reply.json()["CiphertextBlob"])
    result: bytes = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context or {})["Plaintext"]
    return result == plaintext


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 100_000])
def test_valid_chunked_body_is_accepted(ctx: Ctx, server: ServerProcess, chunk_size: int) -> None:
    body = ctx.encrypt_body()
    headers = [*sign(ctx.port, body), ("Transfer-Encoding", "chunked")]
    parts = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
    replies = exchange(ctx.port, head_bytes(headers) + chunked(parts), timeout=5, expect=1)
    assert replies and replies[0].status == 200, replies
    assert _decrypts_to(server, replies[0], ctx.marker)


def test_chunked_body_changed_after_signing_is_refused(ctx: Ctx) -> None:
    body = ctx.encrypt_body()
    other = ctx.encrypt_body(EncryptionContext={"a": "b"})
    headers = [*sign(ctx.port, body), ("Transfer-Encoding", "chunked")]
    replies = exchange(ctx.port, head_bytes(headers) + chunked([other[:10], other[10:]]), timeout=5, expect=1)
    assert replies, "no answer"
    assert replies[0].status == 400 and replies[0].error_type == "InvalidSignatureException", replies[0].describe()


def test_chunked_body_with_trailing_garbage_is_refused(ctx: Ctx) -> None:
    body = ctx.encrypt_body() + b'{"KeyId": "alias/other"}'
    headers = [*sign(ctx.port, body), ("Transfer-Encoding", "chunked")]
    replies = exchange(ctx.port, head_bytes(headers) + chunked([body[:20], body[20:]]), timeout=5, expect=1)
    assert replies, "no answer"
    check_error(replies[0], SERIALIZATION, ctx, "chunked trailing garbage")


@pytest.mark.parametrize("delay", [0, 0.3])
def test_content_length_shorter_than_signed_bytes(ctx: Ctx, delay: float) -> None:
    """Signed over A+B, declared len(A), sent A then B: the server hashes only A, so nothing may succeed.

    With ``delay`` the server answers A before B arrives, and that answer must be InvalidSignatureException.
    """
    body = ctx.encrypt_body()
    extra = b'{"KeyId": "alias/x"}'
    headers = [*sign(ctx.port, body + extra), ("Content-Length", str(len(body)))]
    replies = exchange(ctx.port, head_bytes(headers) + body, more=[extra], delay=delay, timeout=3)
    assert replies, "no answer"
    assert all(400 <= r.status < 500 for r in replies), [r.describe() for r in replies]
    if delay:
        assert replies[0].error_type == "InvalidSignatureException", replies[0].describe()


@pytest.mark.parametrize("delay", [0, 0.3])
def test_content_length_shorter_than_bytes_sent(ctx: Ctx, server: ServerProcess, delay: float) -> None:
    """Signed over A, declared len(A), sent A then garbage and a second signed request B.

    Consistent outcomes only: A may run (it is exactly what was hashed, so a 2xx must encrypt A's plaintext),
    and the bytes after A are never run as part of A; with ``delay`` A's answer must be a 200.
    """
    body = ctx.encrypt_body()
    other = ctx.encrypt_body(EncryptionContext={"smuggled": "yes"})
    smuggled = head_bytes([*sign(ctx.port, other), ("Content-Length", str(len(other)))]) + other
    headers = [*sign(ctx.port, body), ("Content-Length", str(len(body)))]
    replies = exchange(ctx.port, head_bytes(headers) + body, more=[b"garbage" + smuggled], delay=delay, timeout=3)
    assert replies, "no answer"
    succeeded = [r for r in replies if r.status < 400]
    assert len(succeeded) <= 1, [r.describe() for r in replies]
    for reply in succeeded:
        assert _decrypts_to(server, reply, ctx.marker, {}), "a 2xx that is not exactly request A"
    assert all(r.status < 500 for r in replies), [r.describe() for r in replies]
    if delay:
        assert replies[0].status == 200, replies[0].describe()


def test_body_of_a_413_is_not_run_as_a_request(ctx: Ctx) -> None:
    """The unread body of a refused request must be skipped, not parsed as the next request."""
    inner_body = ctx.encrypt_body()
    inner = head_bytes([*sign(ctx.port, inner_body), ("Content-Length", str(len(inner_body)))]) + inner_body
    body = inner + b" " * (LIMIT + 1 - len(inner))
    headers = [*sign(ctx.port, body), ("Content-Length", str(len(body)))]
    replies = exchange(ctx.port, head_bytes(headers), more=[body], timeout=1.5)
    assert replies and replies[0].status == 413, replies
    assert all(r.status >= 400 for r in replies), [r.describe() for r in replies]


def _key_count(c: Ctx) -> int:
    reply = post(c.port, sign(c.port, b'{"Limit": 1000}', "TrentService.ListKeys"), b'{"Limit": 1000}')
    assert reply.status == 200, reply.describe()
    assert reply.json()["Truncated"] is False
    return len(reply.json()["Keys"])


@pytest.mark.parametrize("sent", [b"", b'{"Descr'])
def test_incomplete_body_is_not_executed(ctx: Ctx, sent: bytes) -> None:
    """Content-Length promises 50 bytes, fewer arrive, the client hangs up: nothing may run.

    The request is signed over the empty body (a valid CreateKey), so only the framing can stop it.
    """
    before = _key_count(ctx)
    headers = [*sign(ctx.port, b"", "TrentService.CreateKey"), ("Content-Length", "50")]
    replies = exchange(ctx.port, head_bytes(headers) + sent, half_close=True, timeout=3)
    assert all(r.status >= 400 for r in replies), [r.describe() for r in replies]
    time.sleep(0.5)  # the server may still be running the request after it dropped the connection
    assert _key_count(ctx) == before, "a request whose body never fully arrived was executed (CreateKey ran)"


def test_content_length_and_chunked_together_are_refused(ctx: Ctx) -> None:
    body = ctx.encrypt_body()
    headers = [*sign(ctx.port, body), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")]
    replies = exchange(ctx.port, head_bytes(headers) + chunked([body]), timeout=3)
    assert replies, "no answer"
    assert all(400 <= r.status < 500 for r in replies), [r.describe() for r in replies]


def test_conflicting_content_lengths_are_refused(ctx: Ctx) -> None:
    body = ctx.encrypt_body()
    headers = [*sign(ctx.port, body), ("Content-Length", str(len(body))), ("Content-Length", str(len(body) - 1))]
    replies = exchange(ctx.port, head_bytes(headers) + body, timeout=3)
    assert replies, "no answer"
    assert all(400 <= r.status < 500 for r in replies), [r.describe() for r in replies]


def _headers_without_length(headers: list[Header]) -> list[Header]:
    return replace_header(headers, "Content-Length", None)


def test_no_server_errors_on_framing_corpus(ctx: Ctx) -> None:
    """S-3 figure: every framing case answered, none with a 5xx."""
    body = ctx.encrypt_body()
    signed = [*_headers_without_length(sign(ctx.port, body)), ("Connection", "close")]
    cases = {
        "chunked, 1-byte chunks": head_bytes([*signed, ("Transfer-Encoding", "chunked")])
        + chunked(list(map(bytes, zip(body, strict=False)))),
        "chunked with extensions": head_bytes([*signed, ("Transfer-Encoding", "chunked")])
        + f"{len(body):x};name=value\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n",
        "chunked with a trailer": head_bytes([*signed, ("Transfer-Encoding", "chunked")])
        + chunked([body], terminate=False)
        + b"0\r\nX-Amz-Trailer: 1\r\n\r\n",
        "bad chunk size": head_bytes([*signed, ("Transfer-Encoding", "chunked")]) + b"zz\r\n" + body + b"\r\n0\r\n\r\n",
        "Content-Length short": head_bytes([*signed, ("Content-Length", str(len(body) - 3))]) + body,
        "Content-Length negative": head_bytes([*signed, ("Content-Length", "-1")]) + body,
        "Content-Length hex": head_bytes([*signed, ("Content-Length", hex(len(body)))]) + body,
        "Transfer-Encoding gzip": head_bytes([*signed, ("Transfer-Encoding", "gzip, chunked")]) + chunked([body]),
    }
    statuses = {name: [r.status for r in exchange(ctx.port, data, timeout=3)] for name, data in cases.items()}
    print(f"S-3 framing cases={len(cases)} statuses={statuses}")
    assert not [n for n, s in statuses.items() if any(code >= 500 for code in s)], statuses
    assert statuses["chunked, 1-byte chunks"][:1] == [200]
