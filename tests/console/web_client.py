"""A minimal browser for console tests: cookies, forms with their CSRF token, no redirect following."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlencode, urlsplit

from tests.e2e.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name]
        return found[0] if found else None

    def cookies_set(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]*)"', self.body)
        assert found, "no CSRF token on the page"
        return unescape(found.group(1))


@dataclass
class Browser:
    server: ServerProcess
    jar: dict[str, str] = field(default_factory=dict)
    user_agent: str = "console-test/1.0"

    def request(self, method: str, path: str, form: dict[str, str] | list[tuple[str, str]] | None = None,
                headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        sent = {"User-Agent": self.user_agent, "Host": f"127.0.0.1:{self.server.port}"}
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent["Origin"] = self.server.endpoint
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            answer = Answer(response.status, response.getheaders(), response.read().decode("utf-8", "replace"))
        finally:
            conn.close()
        for cookie in answer.cookies_set():
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return answer

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str] | list[tuple[str, str]], csrf_from: str | None = None) -> Answer:
        """POST ``form`` with the CSRF token of the page at ``csrf_from`` (default: the same path)."""
        token = self.get(csrf_from or path).csrf()
        fields = list(form.items()) if isinstance(form, dict) else list(form)
        return self.request("POST", path, [("csrf", token), *fields])

    def sign_in(self, access_key_id: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY) -> Answer:
        return self.post("/console/sign-in", {"access_key_id": access_key_id, "secret_access_key": secret})


def location_path(answer: Answer) -> str:
    location = answer.header("location") or ""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")
