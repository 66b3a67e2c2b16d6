"""The console against hostile input and a hostile environment (issue 15, items 11, 13, 17 and 20):

- a sealed server's console answers a static "sealed" page and touches no storage (docs/tests.md P-4);
- ``/console/static/`` serves only the files the package ships, from memory: no filesystem call, no cache that
  grows with the names asked for, no 500 for a name the filesystem refuses;
- query and form numbers are ASCII digits of bounded length (``int()`` takes ``'٣'``, ``'1_0'`` and refuses
  5,000 digits with an exception), and text parameters are bounded before anything runs;
- a planted cookie cannot shadow the session: ``__Host-`` names under TLS, and two cookies of one name are none.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import re
import tracemalloc
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from openkms.audit import scope as audit_scope
from openkms.clock import FrozenClock
from openkms.server.app import KMSApplication
from openkms.storage.sqlite import SQLiteStorage
from tests.console.test_console_inprocess import START, AsgiBrowser
from tests.console.web_client import Browser
from tests.e2e.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess
from tests.e2e.test_production_seal import Initialised, Server, initialised, sealed, table_counts
from tests.inprocess import InProcessKMS

__all__ = ["initialised", "sealed"]  # fixtures of the production start, reused here


class CountingStorage(SQLiteStorage):
    """SQLite that counts every transaction and read it opens (docs/tests.md P-4: "checked by storage call count")."""

    calls = 0

    def transaction(self) -> Any:
        CountingStorage.calls += 1
        return super().transaction()

    def read(self) -> Any:
        CountingStorage.calls += 1
        return super().read()


@pytest.fixture
def local(tmp_path: Path) -> Iterator[InProcessKMS]:
    """The app in this process (``kms`` is the e2e server's boto3 client)."""
    made = InProcessKMS(
        tmp_path,
        clock=FrozenClock(START),
        storage=CountingStorage(tmp_path / "openkms.db", before_commit=audit_scope.before_commit),
    )
    yield made
    made.close()


Reply = tuple[int, dict[str, list[str]], str]  # status, headers, body


def asgi(kms: InProcessKMS, path: str, *, cookie: str = "", scheme: str = "http", method: str = "GET",
         body: bytes = b"") -> Reply:  # fmt: skip
    """One request with a raw ``Cookie`` header (the test browsers keep one value per name)."""
    return kms.run(_asgi_one(kms.app, path, cookie=cookie, scheme=scheme, method=method, body=body))


async def _asgi_many(app: KMSApplication, paths: list[str]) -> list[Reply]:
    return [await _asgi_one(app, path) for path in paths]


async def _asgi_one(app: KMSApplication, full: str, *, cookie: str = "", scheme: str = "http", method: str = "GET",
                    body: bytes = b"") -> Reply:  # fmt: skip
    path, _, query = full.partition("?")
    headers = [(b"host", b"kms.example"), (b"user-agent", b"hostile-test")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if body:
        headers.append((b"content-type", b"application/x-www-form-urlencoded"))
    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "headers": headers, "client": ("192.0.2.10", 50000), "scheme": scheme,
    }  # fmt: skip
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    found: dict[str, list[str]] = {}
    for name, value in sent[0]["headers"]:
        found.setdefault(name.decode(), []).append(value.decode())
    return int(sent[0]["status"]), found, b"".join(m.get("body", b"") for m in sent[1:]).decode()


# ---- item 11: a sealed server's console ----------------------------------------------------------------------


def test_a_sealed_console_answers_the_sealed_page_and_touches_no_storage(local: InProcessKMS) -> None:
    browser = AsgiBrowser(local)
    assert browser.sign_in(local).status == 303  # a live session from before the seal
    form = browser.request("GET", "/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]*)"', form.body)
    assert token is not None
    session = dict(browser.jar)  # the session and a sign-in form's anchor
    local.services.keyring.seal()
    CountingStorage.calls = 0
    sign_in = {"csrf": token.group(1), "access_key_id": local.credentials.access_key,
               "secret_access_key": local.credentials.secret_key}  # fmt: skip
    for method, path, fields in [
        ("GET", "/console", None), ("GET", "/console/sign-in", None), ("POST", "/console/sign-in", sign_in),
        ("GET", "/console/keys", None), ("GET", "/console/audit?before=1", None), ("GET", "/console/usage", None),
        ("POST", "/console/sign-out", {"csrf": "x"}), ("GET", "/console/nowhere", None),
        ("POST", "/console/keys/new", {"csrf": "x", "spec": "SYMMETRIC_DEFAULT"}),
    ]:  # fmt: skip
        for jar in ({}, session):
            answer = AsgiBrowser(local, jar=dict(jar)).request(method, path, fields)
            assert answer.status == 503, (method, path, answer.status, answer.body[:200])
            assert "sealed" in answer.body.lower() and "set-cookie" not in answer.headers
            assert answer.headers["content-type"] == ["text/html; charset=utf-8"]
            assert answer.headers["x-frame-options"] == ["DENY"]
    css = AsgiBrowser(local).request("GET", "/console/static/console.css")
    assert css.status == 200  # from the package, not the database
    assert CountingStorage.calls == 0, "the sealed console read or wrote storage"


def test_a_sealed_production_server_serves_no_console_sign_in(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    db = initialised.data_dir / "openkms.db"
    before = table_counts(db)
    browser = Browser(server)
    form = browser.get("/console/sign-in")
    assert form.status == 503 and "sealed" in form.body.lower()
    assert not form.cookies_set() and 'name="csrf"' not in form.body
    for path in ("/console", "/console/keys", "/console/audit", "/console/usage"):
        answer = browser.get(path)
        assert answer.status == 503, (path, answer.status)
    admin = (initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"])
    posted = browser.request(
        "POST",
        "/console/sign-in",
        {"csrf": "anything", "access_key_id": admin[0], "secret_access_key": admin[1]},
        headers={"Cookie": "openkms_presession=" + "A" * 43},
    )
    assert posted.status == 503 and not posted.cookies_set()
    assert browser.get("/console/static/console.css").status == 200
    assert table_counts(db) == before, "the sealed console wrote to storage"
    assert before.get("console_sessions", 0) == 0


# ---- item 13: static files --------------------------------------------------------------------------------------


def test_a_static_name_too_long_for_the_filesystem_is_404_without_a_traceback(server: ServerProcess) -> None:
    assert server.log_path is not None
    log_size = server.log_path.stat().st_size
    browser = Browser(server)
    for name in ("a" * 300 + ".css", "b" * 5000 + ".css", "c" * 300, "%00.css", "console.css%00", "."):
        answer = browser.get("/console/static/" + name)
        assert answer.status == 404, (name[:20], answer.status)
        assert len(answer.body) < 200
    assert browser.get("/console/static/console.css").status == 200
    with server.log_path.open("rb") as log:
        log.seek(log_size)
        written = log.read()
    assert b"Traceback" not in written and b"ENAMETOOLONG" not in written and b"File name too long" not in written


def test_static_files_are_served_from_memory_without_touching_the_filesystem(
    local: InProcessKMS, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_filesystem(*args: object, **kwargs: object) -> None:
        raise AssertionError("the filesystem was asked for a static file at request time")

    monkeypatch.setattr(importlib.resources, "files", no_filesystem)
    status, headers, body = asgi(local, "/console/static/console.css")
    assert status == 200 and headers["content-type"] == ["text/css; charset=utf-8"] and "body" in body
    for name in ("nothing.css", "x" * 300 + ".css", "console.js", "..", "app.py"):
        assert asgi(local, "/console/static/" + name)[0] == 404, name


def test_unknown_static_names_leave_nothing_behind(local: InProcessKMS) -> None:
    """Before the fix every name asked for (found or not) stayed in an unbounded cache: 20,000 names of 240
    bytes kept about 3 MB. Now nothing grows with the names asked for."""
    paths = [f"/console/static/{i:08d}{'z' * 228}.css" for i in range(20_000)]
    statuses: set[int] = set()

    async def ask(batch: list[str]) -> None:
        for start in range(0, len(batch), 500):  # no answers kept beyond a batch
            statuses.update(status for status, _, _ in await _asgi_many(local.app, batch[start : start + 500]))

    asyncio.run(ask(paths[:100]))  # whatever is allocated once
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        asyncio.run(ask(paths[100:]))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert statuses == {404}
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 1_000_000, f"{grown} bytes kept after 20,000 unknown static names"


# ---- item 17: query and form parameters -------------------------------------------------------------------------


def signed_in(server: ServerProcess) -> Browser:
    browser = Browser(server)
    assert browser.sign_in(ACCESS_KEY_ID, SECRET_ACCESS_KEY).status == 303
    return browser


@pytest.mark.parametrize(
    "before",
    # superscript two, Arabic-Indic three, fullwidth five: str.isdigit() or int() takes each of them
    ["\u00b2", "\u0663", "\uff15", "1_0", "+5", "-1", " 5", "0", "1" * 5000, "9" * 20, str(2**63), "0x10", "1e3"],
)
def test_the_audit_page_refuses_a_before_that_is_not_a_plain_number(server: ServerProcess, before: str) -> None:
    answer = signed_in(server).get("/console/audit?before=" + quote(before))
    assert answer.status == 400, (before[:20], answer.status)
    assert 'role="alert"' in answer.body and "Before" in answer.body
    assert "could not answer" not in answer.body


def test_the_audit_page_takes_a_plain_before_and_bounds_its_filters(server: ServerProcess) -> None:
    browser = signed_in(server)
    assert browser.get("/console/audit?before=" + str(2**63 - 1)).status == 200
    assert browser.get("/console/audit?before=12").status == 200
    for name in ("key", "principal", "operation", "outcome", "source_ip", "since", "until"):
        answer = browser.get(f"/console/audit?{name}=" + quote("a" * 5000))
        assert answer.status == 400, name
        assert "a" * 5000 not in answer.body, name  # the page says the filter is too long, not what it was


@pytest.mark.parametrize("days", ["\u0667", "\uff17", "1_0", "+7", " 7 ", "1" * 5000, "-7"])
def test_a_number_in_a_form_must_be_ascii_digits(server: ServerProcess, kms: Any, key_id: str, days: str) -> None:
    """``int("\\u0667")`` (Arabic-Indic seven) is 7 and ``int("1_0")`` is 10: before the fix, both scheduled
    the key's deletion."""
    browser = signed_in(server)
    detail = f"/console/keys/{key_id}"
    answer = browser.post(f"{detail}/schedule-deletion", {"days": days}, csrf_from=detail)
    assert answer.status == 400, (days[:20], answer.status)
    assert "PendingWindowInDays must be a whole number" in answer.body
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    rotation = browser.post(f"{detail}/rotation", {"enabled": "on", "period": days}, csrf_from=detail)
    assert rotation.status == 400 and "RotationPeriodInDays must be a whole number" in rotation.body
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_the_keys_page_bounds_its_marker(server: ServerProcess) -> None:
    answer = signed_in(server).get("/console/keys?marker=" + "m" * 5000)
    assert answer.status == 400 and "m" * 1100 not in answer.body


def test_oversized_sign_in_fields_are_a_wrong_sign_in_and_never_looked_up(
    local: InProcessKMS, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = AsgiBrowser(local)
    form = browser.request("GET", "/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]*)"', form.body)
    assert token is not None
    looked_up: list[str] = []
    real = local.app._auth.check_secret  # the one lookup a sign-in makes

    def spy(access_key_id: str, secret: str) -> Any:
        looked_up.append(access_key_id)
        return real(access_key_id, secret)

    monkeypatch.setattr(local.app._auth, "check_secret", spy)
    right_key, right_secret = local.credentials.access_key, local.credentials.secret_key
    for access_key_id, secret in [(right_key + "A" * 5000, right_secret), (right_key, right_secret + "s" * 5000)]:
        answer = browser.request(
            "POST", "/console/sign-in",
            {"csrf": token.group(1), "access_key_id": access_key_id, "secret_access_key": secret},
        )  # fmt: skip
        assert answer.status == 401 and "A" * 200 not in answer.body
    assert looked_up == []
    long_next = browser.request(
        "POST", "/console/sign-in",
        {"csrf": token.group(1), "access_key_id": local.credentials.access_key,
         "secret_access_key": local.credentials.secret_key, "next": "/console/keys?" + "q" * 5000},
    )  # fmt: skip
    assert long_next.status == 303 and long_next.headers["location"] == ["/console/keys"]


# ---- item 20: cookies ---------------------------------------------------------------------------------------------


def _set_cookie(headers: dict[str, list[str]], prefix: str) -> str:
    found = [c for c in headers.get("set-cookie", []) if c.startswith(prefix)]
    assert len(found) == 1, headers.get("set-cookie")
    return found[0]


def test_under_tls_the_cookies_are_host_prefixed(local: InProcessKMS) -> None:
    browser = AsgiBrowser(local, scheme="https")
    form = browser.request("GET", "/console/sign-in")
    anchor = _set_cookie(form.headers, "__Host-openkms_presession=")
    signed = browser.sign_in(local)
    assert signed.status == 303
    session = _set_cookie(signed.headers, "__Host-openkms_session=")
    for cookie in (anchor, session):
        attributes = [part.strip() for part in cookie.split(";")[1:]]
        assert "Secure" in attributes and "Path=/" in attributes and "HttpOnly" in attributes
        assert "SameSite=Strict" in attributes and not any(a.lower().startswith("domain") for a in attributes)
    token = browser.jar["__Host-openkms_session"]
    assert asgi(local, "/console/keys", cookie=f"__Host-openkms_session={token}", scheme="https")[0] == 200
    # Under TLS the unprefixed name is not the session (a subdomain or plain-HTTP page could have set it).
    assert asgi(local, "/console/keys", cookie=f"openkms_session={token}", scheme="https")[0] == 303
    csrf = re.search(r'name="csrf" value="([^"]*)"', browser.request("GET", "/console/keys").body)
    assert csrf is not None
    out = browser.request("POST", "/console/sign-out", {"csrf": csrf.group(1)})
    cleared = [part.strip() for part in _set_cookie(out.headers, "__Host-openkms_session=").split(";")]
    assert "Max-Age=0" in cleared and "Path=/" in cleared and "Secure" in cleared
    assert asgi(local, "/console/keys", cookie=f"__Host-openkms_session={token}", scheme="https")[0] == 303


def test_over_plain_http_the_cookie_names_stay(local: InProcessKMS) -> None:
    browser = AsgiBrowser(local)
    signed = browser.sign_in(local)
    session = _set_cookie(signed.headers, "openkms_session=")
    assert "Path=/console" in session and "Secure" not in session


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_two_session_cookies_are_no_session(local: InProcessKMS, scheme: str) -> None:
    browser = AsgiBrowser(local, scheme=scheme)
    assert browser.sign_in(local).status == 303
    name = "__Host-openkms_session" if scheme == "https" else "openkms_session"
    token = browser.jar[name]
    planted = "P" * 43
    assert asgi(local, "/console/keys", cookie=f"{name}={token}", scheme=scheme)[0] == 200
    for cookie in (f"{name}={token}; {name}={planted}", f"{name}={planted}; {name}={token}",
                   f"{name}={token}; {name}={token}"):  # fmt: skip
        status, headers, _ = asgi(local, "/console/keys", cookie=cookie, scheme=scheme)
        assert status == 303 and headers["location"][0].startswith("/console/sign-in"), cookie


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_two_sign_in_anchors_are_no_anchor(local: InProcessKMS, scheme: str) -> None:
    name = "__Host-openkms_presession" if scheme == "https" else "openkms_presession"
    browser = AsgiBrowser(local, scheme=scheme)
    form = browser.request("GET", "/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]*)"', form.body)
    assert token is not None
    anchor = browser.jar[name]
    body = urlencode({"csrf": token.group(1), "access_key_id": local.credentials.access_key,
                      "secret_access_key": local.credentials.secret_key}).encode()  # fmt: skip
    status, _, _ = asgi(local, "/console/sign-in", cookie=f"{name}={anchor}; {name}={'Q' * 43}", scheme=scheme,
                        method="POST", body=body)  # fmt: skip
    assert status == 403
    status, _, _ = asgi(local, "/console/sign-in", cookie=f"{name}={anchor}", scheme=scheme, method="POST", body=body)
    assert status == 303


def test_a_planted_second_session_cookie_signs_out_over_http(server: ServerProcess) -> None:
    browser = signed_in(server)
    token = browser.jar["openkms_session"]
    assert browser.get("/console/keys").status == 200
    planted = browser.request("GET", "/console/keys", headers={"Cookie": f"openkms_session={token}; openkms_session=x"})
    assert planted.status == 303 and location_is_sign_in(planted.header("location"))


def location_is_sign_in(location: str | None) -> bool:
    return bool(location) and str(location).startswith("/console/sign-in")
