"""The console's request path, top to bottom in :meth:`Console.handle`:

static file? -> sealed? (a static page, nothing read) -> sign-in/out? -> session from cookie (else to sign-in)
-> POST: same origin + CSRF token -> route -> page (operations as the signed-in principal) -> HTML with
security headers
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openkms.audit import events
from openkms.auth.sessions import Session, SessionStore
from openkms.clock import Clock
from openkms.console import render, web
from openkms.console.client import Client
from openkms.crypto import tokens
from openkms.errors import KMSError
from openkms.server.app import HTTPRequest, HTTPResponse
from openkms.server.operation_runner import Caller, OperationRunner

log = logging.getLogger("openkms.console")

PREFIX = "/console"
USER_AGENT_PREFIX = "openkms-console"
PRESESSION_SECONDS = 900
# Longer sign-in fields are not credentials (access key ids are at most 128 characters, secrets 40): a wrong
# sign-in, without a lookup. A page to return to longer than MAX_NEXT_CHARS is dropped.
MAX_ACCESS_KEY_ID_CHARS = 128
MAX_SECRET_CHARS = 128
MAX_NEXT_CHARS = 2048
MAX_LOGGED_PATH_CHARS = 200


@dataclass(slots=True)
class Page:
    """What a page handler gets: the request, the signed-in session and a client acting as it."""

    request: HTTPRequest
    session: Session
    client: Client
    params: dict[str, str]  # the route's captured parts
    form: dict[str, list[str]] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def render(self, template: str, status: int = 200, **context: Any) -> HTTPResponse:
        return web.html(
            render.page(template, csrf=self.session.csrf, principal=self.session.principal, **context), status
        )


Handler = Callable[[Page], Awaitable[HTTPResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _routes() -> list[Route]:
    from openkms.console import audit_page, key_detail, keys_page, usage_page

    table: list[tuple[str, str, Handler]] = [
        ("GET", r"/keys", keys_page.list_keys),
        ("GET", r"/keys/new", keys_page.new_key_form),
        ("POST", r"/keys/new", keys_page.create_key),
        ("GET", r"/keys/(?P<key_id>[0-9a-f-]{36})", key_detail.show),
        ("POST", r"/keys/(?P<key_id>[0-9a-f-]{36})/(?P<action>[a-z-]{1,32})", key_detail.act),
        ("GET", r"/audit", audit_page.explore),
        ("GET", r"/usage", usage_page.show),
    ]
    return [Route(method, re.compile(PREFIX + pattern + r"/?"), handler) for method, pattern, handler in table]


class Console:
    """``sealed`` says whether the server is sealed right now: then every page is :attr:`_sealed_page` (503),
    made once here, and nothing reads storage or writes a record (README "Production start", docs/tests.md P-4)."""

    def __init__(
        self,
        sessions: SessionStore,
        runner: OperationRunner,
        clock: Clock,
        sealed: Callable[[], bool],
    ) -> None:
        self._sessions = sessions
        self._runner = runner
        self._clock = clock
        self._sealed = sealed
        self._routes = _routes()
        self._static = render.static_files()
        self._sealed_page = render.page("sealed.html", principal=None)

    async def handle(self, request: HTTPRequest) -> HTTPResponse:
        try:
            return await self._handle(request)
        except Exception:  # a bug or storage down: an honest error page, the details only in the log
            shown = request.path[:MAX_LOGGED_PATH_CHARS].encode("unicode_escape").decode("ascii")
            log.exception("console request %s %s failed", request.method[:16], shown)
            return web.plain(500, "The console could not answer this request. The server log has the details.")

    async def _handle(self, request: HTTPRequest) -> HTTPResponse:
        path = request.path
        if path.startswith(PREFIX + "/static/") and request.method in ("GET", "HEAD"):
            found = self._static.get(path[len(PREFIX + "/static/") :])  # the shipped files only, from memory
            return web.static(*found) if found else web.plain(404, "Not found")
        if self._sealed():
            return web.html(self._sealed_page, 503)
        if path in (PREFIX, PREFIX + "/"):
            return web.redirect(PREFIX + "/keys")
        if path == PREFIX + "/sign-in":
            return await self._sign_in(request)
        session = self._sessions.resolve(web.cookie(request, web.SESSION_COOKIE), self._clock.now())
        if path == PREFIX + "/sign-out" and request.method == "POST":
            return self._sign_out(request, session)
        if session is None:
            if request.method == "GET":
                return web.redirect(web.with_query(PREFIX + "/sign-in", {"next": _local(path, request.query)}))
            return web.redirect(PREFIX + "/sign-in")
        page = Page(request, session, self._client(request, session), {}, query=web.query(request))
        if request.method == "POST":
            refused = self._refuse_forgery(page)
            if refused is not None:
                return refused
        for route in self._routes:
            matched = route.pattern.fullmatch(path)
            if matched and route.method == request.method:
                page.params = matched.groupdict()
                return await route.handler(page)
        return page.render("not_found.html", status=404, path=path)

    # -- sign-in and sign-out ---------------------------------------------------------------------------------
    async def _sign_in(self, request: HTTPRequest) -> HTTPResponse:
        anchor = web.cookie(request, web.PRESESSION_COOKIE) or ""
        if request.method != "POST":
            return self._sign_in_form(request, "", _local(web.query(request).get("next", ""), ""), "")
        try:
            fields = {name: values[0] for name, values in web.form(request).items()}
        except web.FormError:
            return web.plain(400, "The form could not be read.")
        access_key_id = fields.get("access_key_id", "").strip()
        secret = fields.get("secret_access_key", "")
        plausible = len(access_key_id) <= MAX_ACCESS_KEY_ID_CHARS and len(secret) <= MAX_SECRET_CHARS
        if len(access_key_id) > MAX_ACCESS_KEY_ID_CHARS:
            access_key_id = ""  # not echoed back into the form
        next_path = _local(fields.get("next", ""), "")
        if not anchor or not web.same_origin(request) or not tokens.csrf_matches(anchor, fields.get("csrf", "")):
            return self._sign_in_form(request, access_key_id, next_path, "The form expired. Please sign in again.", 403)
        call = self._runner.new_call(request.client_ip, _user_agent(request), None)  # the console's region
        call.claimed_access_key_id = access_key_id[:128] if re.fullmatch(r"[A-Z0-9]{16,128}", access_key_id) else None
        now = call.time
        session: Session | None = None
        try:
            if plausible:
                session = self._sessions.sign_in(access_key_id, secret, now)
                call.principal = session.principal
        except KMSError:
            pass
        except Exception:  # storage down: no session, and nothing recorded as a success
            log.exception("console sign-in failed")
            return self._sign_in_form(request, access_key_id, next_path, "Sign-in is unavailable.", 500)
        if not await self._runner.record(events.console_login(call, session is not None), call.claimed_access_key_id):
            if session is not None:
                self._sessions.sign_out(session.token)
            return self._sign_in_form(request, access_key_id, next_path, "Sign-in is unavailable.", 500)
        if session is None:
            return self._sign_in_form(
                request, access_key_id, next_path, "The access key ID or secret is incorrect.", 401
            )
        cookie = web.set_cookie(web.SESSION_COOKIE, session.token, self._sessions.lifetime_seconds, request.secure)
        return web.redirect(
            next_path or PREFIX + "/keys", [cookie, web.clear_cookie(web.PRESESSION_COOKIE, request.secure)]
        )

    def _sign_in_form(
        self, request: HTTPRequest, access_key_id: str, next_path: str, error: str, status: int = 200
    ) -> HTTPResponse:
        # One anchor per browser while it lasts, so two sign-in tabs both work; a new one if none or not ours.
        anchor = web.cookie(request, web.PRESESSION_COOKIE) or ""
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", anchor):
            anchor = tokens.new_token()
        cookie = web.set_cookie(web.PRESESSION_COOKIE, anchor, PRESESSION_SECONDS, request.secure)
        body = render.page(
            "sign_in.html",
            csrf=tokens.csrf_token(anchor),
            principal=None,
            access_key_id=access_key_id,
            next=next_path,
            error=error,
            session_minutes=self._sessions.lifetime_seconds // 60,
        )
        return web.html(body, status, [cookie])

    def _sign_out(self, request: HTTPRequest, session: Session | None) -> HTTPResponse:
        if session is not None:
            try:
                fields = web.form(request)
            except web.FormError:
                fields = {}
            if not web.same_origin(request) or not tokens.csrf_matches(session.token, (fields.get("csrf") or [""])[0]):
                return web.plain(403, "Refused: the form did not come from this console.")
            self._sessions.sign_out(session.token)
        clear = web.clear_cookie(web.SESSION_COOKIE, request.secure)
        return web.redirect(web.with_query(PREFIX + "/sign-in", {"signed_out": "1"}), [clear])

    # -- every other page -------------------------------------------------------------------------------------
    def _refuse_forgery(self, page: Page) -> HTTPResponse | None:
        try:
            page.form = web.form(page.request)
        except web.FormError:
            return web.plain(400, "The form could not be read.")
        if not web.same_origin(page.request) or not tokens.csrf_matches(page.session.token, page.field("csrf")):
            return web.plain(403, "Refused: the form did not come from this console (CSRF check failed).")
        return None

    def _client(self, request: HTTPRequest, session: Session) -> Client:
        caller = Caller(request.client_ip, _user_agent(request), request.secure)
        return Client(self._runner, session.principal, caller)


def _user_agent(request: HTTPRequest) -> str:
    """Records of console calls say so, as AWS's say ``AWS Internal`` / console."""
    browser = (request.header("user-agent") or "")[:900]
    return f"{USER_AGENT_PREFIX} ({browser})" if browser else USER_AGENT_PREFIX


def _local(path: str, query: str) -> str:
    """A console path to return to after sign-in; anything else (another site, a scheme, too long) is dropped."""
    if len(path) + len(query) + 1 > MAX_NEXT_CHARS:
        return ""
    if not path.startswith(PREFIX + "/") or path.startswith("//") or "\\" in path or not path.isprintable():
        return ""
    if path.startswith((PREFIX + "/sign-in", PREFIX + "/sign-out", PREFIX + "/static/")):
        return ""
    return f"{path}?{query}" if query else path
