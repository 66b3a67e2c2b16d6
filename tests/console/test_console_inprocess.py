"""Console behaviour that needs a moved clock, TLS or a failing audit trail: the app in this process, driven
through its ASGI entry point (the same path uvicorn takes)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from openkms.clock import FrozenClock
from tests.audit_faults import install_audit_fault
from tests.inprocess import InProcessKMS

START = 1_800_000_000.0


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: str


@dataclass
class AsgiBrowser:
    kms: InProcessKMS
    scheme: str = "http"
    jar: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        body = urlencode(form).encode() if form is not None else b""
        headers = [(b"host", b"kms.example"), (b"user-agent", b"asgi-test")]
        if self.jar:
            headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in self.jar.items()).encode()))
        if form is not None:
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        path, _, query = path.partition("?")
        scope = {
            "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "headers": headers, "client": ("192.0.2.10", 50000), "scheme": self.scheme,
        }  # fmt: skip
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        self.kms.run(self.kms.app(scope, receive, send))
        start = sent[0]
        found: dict[str, list[str]] = {}
        for name, value in start["headers"]:
            found.setdefault(name.decode(), []).append(value.decode())
        for cookie in found.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = rest.split(";", 1)[0]
        return Answer(int(start["status"]), found, b"".join(m.get("body", b"") for m in sent[1:]).decode())

    def sign_in(self, kms: InProcessKMS) -> Answer:
        form = self.request("GET", "/console/sign-in")
        token = re.search(r'name="csrf" value="([^"]*)"', form.body)
        assert token is not None
        return self.request(
            "POST",
            "/console/sign-in",
            {
                "csrf": token.group(1),
                "access_key_id": kms.credentials.access_key,
                "secret_access_key": kms.credentials.secret_key,
            },
        )


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[InProcessKMS]:
    made = InProcessKMS(tmp_path, clock=FrozenClock(START))
    yield made
    made.close()


def test_under_tls_the_cookies_are_secure(kms: InProcessKMS) -> None:
    browser = AsgiBrowser(kms, scheme="https")
    presession = browser.request("GET", "/console/sign-in").headers["set-cookie"]
    assert all(c.endswith("; Secure") for c in presession)
    signed = browser.sign_in(kms)
    assert signed.status == 303
    session = [c for c in signed.headers["set-cookie"] if c.startswith("__Host-openkms_session=")]
    assert session and session[0].endswith("HttpOnly; SameSite=Strict; Secure")


def test_a_session_expires_after_its_lifetime(kms: InProcessKMS) -> None:
    browser = AsgiBrowser(kms)
    assert browser.sign_in(kms).status == 303
    assert kms.app is not None
    lifetime = kms.services.settings.console_session_seconds
    assert isinstance(kms.clock, FrozenClock)
    kms.clock.advance(lifetime - 1)
    assert browser.request("GET", "/console/keys").status == 200
    kms.clock.advance(1)
    answer = browser.request("GET", "/console/keys")
    assert answer.status == 303 and answer.headers["location"][0].startswith("/console/sign-in")


def test_without_an_audit_trail_the_console_signs_nobody_in_and_shows_no_data(
    kms: InProcessKMS, tmp_path: Path
) -> None:
    status, created = kms.call("CreateKey", {"Description": "visible only with a record"})
    assert status == 200
    healthy = AsgiBrowser(kms)
    healthy.sign_in(kms)
    install_audit_fault(f"sqlite:///{tmp_path / 'openkms.db'}")(True)  # the trail can no longer be written
    refusing = kms
    unrecorded = AsgiBrowser(refusing)
    assert unrecorded.sign_in(kms).status == 500
    assert "openkms_session" not in unrecorded.jar
    with sqlite3.connect(tmp_path / "openkms.db") as db:  # the session made before the record failed is gone
        assert db.execute("SELECT COUNT(*) FROM console_sessions").fetchone() == (1,)
    page = AsgiBrowser(refusing, jar=dict(healthy.jar)).request("GET", "/console/keys")
    assert created["KeyMetadata"]["KeyId"] not in page.body
    assert "KMSInternalException" in page.body
    detail = AsgiBrowser(refusing, jar=dict(healthy.jar)).request(
        "GET", f"/console/keys/{created['KeyMetadata']['KeyId']}"
    )
    assert "visible only with a record" not in detail.body
