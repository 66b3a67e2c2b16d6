"""S-2 over HTTP: requests signed by botocore (or, for shapes botocore never makes, by a signer checked against it),
then mutated one bug class at a time and sent to a real ``openkms serve`` with ``http.client``.

Every mutant must be a 4xx with the error code AWS gives; a mutant answered 2xx is a fail-open and is counted.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rawhttp import (
    Header,
    Reply,
    amz_date,
    child_pids,
    header,
    host_of,
    post,
    replace_header,
    self_sign,
    serving_pid,
    sign,
)
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

INVALID = "InvalidSignatureException"
INCOMPLETE = "IncompleteSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"
MISSING = "MissingAuthenticationToken"


@dataclass(frozen=True)
class Target:
    """One server and one of its keys; ``body`` encrypts a plaintext carrying a unique marker."""

    port: int
    key_id: str
    marker: bytes

    @property
    def body(self) -> bytes:
        plaintext = base64.b64encode(self.marker).decode()
        return json.dumps({"KeyId": self.key_id, "Plaintext": plaintext}).encode()


@pytest.fixture(scope="module")
def target(server: ServerProcess) -> Target:
    kms: Any = server.client()
    key_id: str = kms.create_key(Description="sigv4 http")["KeyMetadata"]["KeyId"]
    return Target(server.port, key_id, b"S2-MARKER-" + secrets.token_hex(8).encode())


def _edit_authorization(headers: list[Header], old: str, new: str) -> list[Header]:
    value = header(headers, "Authorization")
    assert old in value, (old, value)
    return replace_header(headers, "Authorization", value.replace(old, new, 1))


def _signature(headers: list[Header]) -> str:
    return header(headers, "Authorization").rsplit("Signature=", 1)[1]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _plain_headers(t: Target, moment: datetime.datetime) -> list[Header]:
    """What a KMS client sends, before Authorization."""
    return [
        ("Host", host_of(t.port)),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "TrentService.Encrypt"),
        ("X-Amz-Date", amz_date(moment)),
    ]


def _self_signed(t: Target, signed: list[str], **kwargs: Any) -> list[Header]:
    moment = _now()
    return self_sign(t.port, t.body, _plain_headers(t, moment), signed, amz_date=amz_date(moment), **kwargs)


Mutation = Callable[[Target], tuple[list[Header], bytes]]


def _signed(t: Target, **kwargs: Any) -> tuple[list[Header], bytes]:
    return sign(t.port, t.body, **kwargs), t.body


def _fabricated(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return _edit_authorization(headers, _signature(headers), secrets.token_hex(32)), body


def _signature_one_hex_off(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    good = _signature(headers)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    return _edit_authorization(headers, good, bad), body


def _signature_truncated(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    good = _signature(headers)
    return _edit_authorization(headers, good, good[:32]), body


def _signature_removed(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return _edit_authorization(headers, f", Signature={_signature(headers)}", ""), body


def _drop_signed(name: str) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        headers, body = _signed(t)
        value = header(headers, "Authorization")
        listed = value.split("SignedHeaders=", 1)[1].split(",", 1)[0]
        kept = ";".join(n for n in listed.split(";") if n != name)
        assert kept != listed
        return _edit_authorization(headers, f"SignedHeaders={listed}", f"SignedHeaders={kept}"), body

    return mutate


def _valid_without(name: str) -> Mutation:
    """A correct signature over every header the client sends except ``name``."""

    def mutate(t: Target) -> tuple[list[Header], bytes]:
        signed = [n for n in ("content-type", "host", "x-amz-date", "x-amz-target") if n != name]
        return _self_signed(t, signed), t.body

    return mutate


def _date_instead_of_x_amz_date(t: Target) -> tuple[list[Header], bytes]:
    moment = _now()
    headers = replace_header(_plain_headers(t, moment), "X-Amz-Date", None)
    headers.append(("Date", moment.strftime("%a, %d %b %Y %H:%M:%S GMT")))
    signed = ["content-type", "date", "host", "x-amz-target"]
    return self_sign(t.port, t.body, headers, signed, amz_date=amz_date(moment)), t.body


def _added_after_signing(name: str, value: str) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        headers, body = _signed(t)
        return [*headers, (name, value)], body

    return mutate


def _replaced_after_signing(name: str, value: str) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        headers, body = _signed(t)
        return replace_header(headers, name, value), body

    return mutate


def _body_changed(change: Callable[[bytes], bytes]) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        headers, body = _signed(t)
        changed = change(body)
        assert changed != body
        return headers, changed

    return mutate


def _flip_last_plaintext_char(body: bytes) -> bytes:
    at = body.rindex(b'"') - 1
    return body[:at] + (b"A" if body[at : at + 1] != b"A" else b"B") + body[at + 1 :]


def _declared_hash_of_other_body(t: Target) -> tuple[list[Header], bytes]:
    """botocore signs the declared x-amz-content-sha256; the server must hash what it received instead."""
    other = json.dumps({"KeyId": t.key_id, "Plaintext": base64.b64encode(b"other").decode()}).encode()
    return sign(t.port, other, extra={"X-Amz-Content-Sha256": hashlib.sha256(other).hexdigest()}), t.body


def _unsigned_payload(t: Target) -> tuple[list[Header], bytes]:
    return sign(t.port, t.body, extra={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}), t.body


def _scope_date_off_valid(t: Target) -> tuple[list[Header], bytes]:
    yesterday = (_now() - datetime.timedelta(days=1)).strftime("%Y%m%d")
    return _self_signed(t, ["content-type", "host", "x-amz-date", "x-amz-target"], scope_date=yesterday), t.body


def _scope_date_edited(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    today = header(headers, "X-Amz-Date")[:8]
    tomorrow = (_now() + datetime.timedelta(days=1)).strftime("%Y%m%d")
    return _edit_authorization(headers, f"/{today}/", f"/{tomorrow}/"), body


def _terminator(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return _edit_authorization(headers, "/aws4_request,", "/aws4_requesx,"), body


def _four_part_credential(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return _edit_authorization(headers, "/us-east-1/kms/", "/us-east-1kms/"), body


def _x_amz_date(value: str) -> Mutation:
    return _replaced_after_signing("X-Amz-Date", value)


def _algorithm(name: str) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        headers, body = _signed(t)
        return _edit_authorization(headers, "AWS4-HMAC-SHA256 ", f"{name} "), body

    return mutate


def _no_authorization(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return replace_header(headers, "Authorization", None), body


def _two_authorizations(t: Target) -> tuple[list[Header], bytes]:
    headers, body = _signed(t)
    return [*headers, ("Authorization", header(headers, "Authorization"))], body


def _signed_by(**kwargs: Any) -> Mutation:
    def mutate(t: Target) -> tuple[list[Header], bytes]:
        return _signed(t, **kwargs)

    return mutate


MUTANTS: dict[str, tuple[Mutation, str]] = {
    "fabricated signature": (_fabricated, INVALID),
    "signature one hex digit off": (_signature_one_hex_off, INVALID),
    "signature truncated to 32 hex": (_signature_truncated, INVALID),
    "Signature parameter removed": (_signature_removed, INCOMPLETE),
    "signed with another secret": (_signed_by(secret="another-secret-access-key"), INVALID),
    "host dropped from SignedHeaders": (_drop_signed("host"), INVALID),
    "host unsigned, signature valid": (_valid_without("host"), INVALID),
    "x-amz-date dropped from SignedHeaders": (_drop_signed("x-amz-date"), INVALID),
    "x-amz-date unsigned, signature valid": (_valid_without("x-amz-date"), INVALID),
    "Date signed instead of X-Amz-Date": (_date_instead_of_x_amz_date, INCOMPLETE),
    "x-amz-target unsigned, signature valid": (_valid_without("x-amz-target"), INVALID),
    "unsigned X-Amz-Meta header added": (_added_after_signing("X-Amz-Meta-Injected", "1"), INVALID),
    "unsigned X-Amz-Security-Token added": (_added_after_signing("X-Amz-Security-Token", "token"), INVALID),
    "second X-Amz-Target added": (_added_after_signing("X-Amz-Target", "TrentService.GenerateRandom"), INVALID),
    "X-Amz-Target changed": (_replaced_after_signing("X-Amz-Target", "TrentService.GenerateRandom"), INVALID),
    "Content-Type changed (signed)": (_replaced_after_signing("Content-Type", "application/json"), INVALID),
    "body: one byte changed": (_body_changed(_flip_last_plaintext_char), INVALID),
    "body: whitespace appended": (_body_changed(lambda b: b + b" "), INVALID),
    "body: replaced": (_body_changed(lambda b: b'{"KeyId": "alias/aws/s3", "Plaintext": "QQ=="}'), INVALID),
    "body: emptied": (_body_changed(lambda b: b""), INVALID),
    "x-amz-content-sha256 of another body": (_declared_hash_of_other_body, INVALID),
    "x-amz-content-sha256 UNSIGNED-PAYLOAD": (_unsigned_payload, INVALID),
    "scope date != x-amz-date, signature valid": (_scope_date_off_valid, INVALID),
    "scope date edited": (_scope_date_edited, INVALID),
    "scope service s3": (_signed_by(service="s3"), INVALID),
    "scope service KMS (case)": (_signed_by(service="KMS"), INVALID),
    "scope region US_EAST_1 (format)": (_signed_by(region="US_EAST_1"), INVALID),
    "scope region with a space": (_signed_by(region="us east 1"), INVALID),
    "scope region empty": (_signed_by(region=""), INCOMPLETE),
    "scope terminator wrong": (_terminator, INVALID),
    "Credential with 4 elements": (_four_part_credential, INCOMPLETE),
    "x-amz-date month 13": (_x_amz_date("20261301T000000Z"), INCOMPLETE),
    "x-amz-date 25 o'clock": (_x_amz_date("20261128T250000Z"), INCOMPLETE),
    "x-amz-date extended ISO": (_x_amz_date("2026-11-28T14:00:00Z"), INCOMPLETE),
    "x-amz-date words": (_x_amz_date("not-a-date"), INCOMPLETE),
    "x-amz-date empty": (_x_amz_date(""), INCOMPLETE),
    "x-amz-date RFC 1123": (_x_amz_date("Sat, 28 Nov 2026 14:00:00 GMT"), INCOMPLETE),
    "algorithm AWS4-HMAC-SHA512": (_algorithm("AWS4-HMAC-SHA512"), INCOMPLETE),
    "algorithm AWS3": (_algorithm("AWS3"), MISSING),
    "two Authorization headers": (_two_authorizations, INCOMPLETE),
    "unknown access key": (_signed_by(access_key_id="AKIAOPENKMSUNKNOWN00"), UNRECOGNIZED),
    "session token signed (openkms issues none)": (_signed_by(extra={"X-Amz-Security-Token": "tok"}), UNRECOGNIZED),
    "missing Authorization": (_no_authorization, MISSING),
}


def check_error_shape(reply: Reply, marker: bytes | None = None) -> None:
    """AWS JSON 1.1 error: ``{"__type": ..., "message": ...}``, a request id, no plaintext echoed."""
    document = reply.json()
    assert isinstance(document, dict), reply.describe()
    assert isinstance(document.get("__type"), str) and document["__type"], reply.describe()
    assert set(document) <= {"__type", "message"}, reply.describe()
    assert isinstance(document.get("message", ""), str), reply.describe()
    assert reply.request_id, f"no x-amzn-RequestId on {reply.describe()}"
    if marker is not None:
        assert marker not in reply.body and base64.b64encode(marker) not in reply.body, reply.describe()


def send(t: Target, mutation: Mutation) -> Reply:
    headers, body = mutation(t)
    return post(t.port, headers, body)


def test_controls_are_accepted(target: Target) -> None:
    """Both signers must produce requests the server accepts, or the mutants below prove nothing."""
    for headers in (
        sign(target.port, target.body),
        _self_signed(target, ["content-type", "host", "x-amz-date", "x-amz-target"]),
        # Headers the server must not require to be signed, added after signing:
        [*sign(target.port, target.body), ("User-Agent", "raw-http"), ("Accept", "*/*")],
    ):
        reply = post(target.port, headers, target.body)
        assert reply.status == 200, reply.describe()
        assert reply.json()["KeyId"].endswith(target.key_id)
        assert reply.request_id


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_rejected(target: Target, name: str) -> None:
    mutation, expected = MUTANTS[name]
    reply = send(target, mutation)
    assert 400 <= reply.status < 500, f"{name}: {reply.describe()}"
    assert reply.error_type == expected, f"{name}: {reply.describe()}"
    check_error_shape(reply, target.marker)
    if expected == MISSING:
        assert reply.status == 403, reply.describe()


def test_mutant_figures(target: Target) -> None:
    """The S-2 figure: mutants sent, accepted (must be 0)."""
    replies = {name: send(target, mutation) for name, (mutation, _) in MUTANTS.items()}
    accepted = [name for name, reply in replies.items() if reply.status < 400]
    server_errors = [name for name, reply in replies.items() if reply.status >= 500]
    wrong_code = [name for name, reply in replies.items() if reply.error_type != MUTANTS[name][1]]
    print(f"S-2 mutants={len(replies)} accepted={len(accepted)} 5xx={len(server_errors)} wrong_code={len(wrong_code)}")
    assert accepted == [] and server_errors == []


# -- clock skew: the server allows 900 s either way, against its real clock -----------------------------------


def _at_second_start() -> float:
    """Sleep to just after a second boundary, so a request signed now has ~0.9 s to arrive within its second."""
    now = time.time()
    fraction = now - math.floor(now)
    if fraction > 0.05:
        time.sleep(1 - fraction + 0.001)
    return math.floor(time.time())


def _signed_with_skew(t: Target, skew: int) -> Reply:
    second = _at_second_start()
    moment = datetime.datetime.fromtimestamp(second + skew, datetime.UTC)
    headers = sign(t.port, t.body, at=moment)
    assert header(headers, "X-Amz-Date") == amz_date(moment)
    return post(t.port, headers, t.body)


@pytest.mark.parametrize("skew", [900, 600, -600, -899])
def test_skew_within_limit_is_accepted(target: Target, skew: int) -> None:
    reply = _signed_with_skew(target, skew)
    assert reply.status == 200, f"skew {skew:+d}s: {reply.describe()}"


@pytest.mark.parametrize("skew", [901, -901, 3600, -86400, 86400 * 365])
def test_skew_beyond_limit_is_rejected(target: Target, skew: int) -> None:
    reply = _signed_with_skew(target, skew)
    assert reply.status == 400 and reply.error_type == INVALID, f"skew {skew:+d}s: {reply.describe()}"
    check_error_shape(reply, target.marker)
    expected = "Signature expired" if skew < 0 else "Signature not yet current"
    assert expected in reply.json().get("message", ""), reply.describe()


# -- access keys issued by `openkms iam`: revocation takes effect on the very next request, on every worker ------


def _cli(server: ServerProcess, *args: str) -> str:
    result = server.openkms("iam", *args)
    assert result.returncode == 0, f"openkms iam {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture
def issued_key(server: ServerProcess) -> Iterator[tuple[str, str]]:
    user = f"s2-{secrets.token_hex(4)}"
    _cli(server, "create-user", "--account-id", ACCOUNT_ID, "--user-name", user)
    everything = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}'
    _cli(server, "put-user-policy", "--account-id", ACCOUNT_ID, "--user-name", user, "--policy-name", "kms",
         "--policy-document", everything)  # fmt: skip
    created = json.loads(_cli(server, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json"))
    yield created["AccessKeyId"], created["SecretAccessKey"]
    server.openkms("iam", "delete-user", "--account-id", ACCOUNT_ID, "--user-name", user)


def _burst(t: Target, access_key_id: str, secret: str, connections: list[http.client.HTTPConnection]) -> list[Reply]:
    """One request on each kept-alive connection (they span every worker) and as many on fresh ones, at once."""

    def one(conn: http.client.HTTPConnection | None) -> Reply:
        headers = sign(t.port, t.body, access_key_id=access_key_id, secret=secret)
        return post(t.port, headers, t.body, conn=conn)

    with ThreadPoolExecutor(max_workers=len(connections)) as pool:
        kept = list(pool.map(one, connections))
        fresh = list(pool.map(one, [None] * len(connections)))
    return kept + fresh


def _connections_on_every_worker(
    t: Target, server: ServerProcess, access_key_id: str, secret: str
) -> tuple[list[http.client.HTTPConnection], set[int]]:
    """Open kept-alive connections (each used once, with success) until every worker holds at least one."""
    assert server.process is not None
    workers = child_pids(server.process.pid)
    connections: list[http.client.HTTPConnection] = []
    owners: set[int] = set()
    while len(connections) < 6 or (len(owners) < server.workers and len(connections) < 48):
        conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=30)
        reply = post(t.port, sign(t.port, t.body, access_key_id=access_key_id, secret=secret), t.body, conn=conn)
        assert reply.status == 200, f"new active key refused: {reply.describe()}"
        connections.append(conn)
        owner = serving_pid(t.port, conn, workers)
        if owner is not None:
            owners.add(owner)
    return connections, owners


def test_access_key_status_takes_effect_at_once(
    target: Target, server: ServerProcess, issued_key: tuple[str, str]
) -> None:
    """Inactive, re-activated, deleted: each change holds from the very next request, on every worker."""
    access_key_id, secret = issued_key
    connections, owners = _connections_on_every_worker(target, server, access_key_id, secret)
    try:
        if Path("/proc/net/tcp").exists():
            assert len(owners) == server.workers, f"kept-alive connections reach workers {owners} only"
        print(f"S-2 revocation: {len(connections)} kept-alive connections over workers {sorted(owners)}")

        _cli(server, "update-access-key", "--access-key-id", access_key_id, "--status", "Inactive")
        for reply in _burst(target, access_key_id, secret, connections):
            assert reply.status == 400 and reply.error_type == UNRECOGNIZED, f"inactive key: {reply.describe()}"
            check_error_shape(reply, target.marker)

        _cli(server, "update-access-key", "--access-key-id", access_key_id, "--status", "Active")
        for reply in _burst(target, access_key_id, secret, connections):
            assert reply.status == 200, f"re-activated key refused: {reply.describe()}"

        _cli(server, "delete-access-key", "--access-key-id", access_key_id)
        for reply in _burst(target, access_key_id, secret, connections):
            assert reply.status == 400 and reply.error_type == UNRECOGNIZED, f"deleted key: {reply.describe()}"
    finally:
        for conn in connections:
            conn.close()


def test_issued_key_signs_as_its_user(target: Target, server: ServerProcess, issued_key: tuple[str, str]) -> None:
    """A key issued to a user of the account (allowed kms:* by its identity policy) may use the account's keys; its
    secret is not the dev secret."""
    access_key_id, secret = issued_key
    reply = post(target.port, sign(target.port, target.body, access_key_id=access_key_id, secret=secret), target.body)
    assert reply.status == 200, reply.describe()
    wrong = post(target.port, sign(target.port, target.body, access_key_id=access_key_id), target.body)
    assert wrong.status == 400 and wrong.error_type == INVALID, wrong.describe()
