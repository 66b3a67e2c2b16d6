"""The HTTP front of openkms: one ASGI app serving the KMS API, ``/healthz``, ``/unseal`` and the console.

A KMS request, from the socket in (server/connections.py bounds what comes before the app):

    head size and read deadline (connections.py) -> body size -> sealed? -> SigV4 -> region -> X-Amz-Target
    -> strict JSON -> model validation -> operation (resolve key, authorise, crypto, storage) -> JSON response
    -> its audit record made durable (or counted, for an unauthenticated call over its budget) -> the answer

:meth:`serve_kms` is the API's part (SigV4, target, JSON, response); the rest, from the record's reservation to
its durability, is the one operation runner every front shares (server/operation_runner.py). Everything after
the body is read is synchronous and runs on the event loop (each step costs microseconds,
docs/performance.md), except operations registered as slow, which the runner moves to a thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from openkms.audit import events, server_events
from openkms.audit.writer import AuditWriter
from openkms.auth.credentials import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import (
    InvalidSignatureException,
    KMSError,
    RequestEntityTooLargeException,
)
from openkms.operations.services import Services
from openkms.seal.base import UnsealError
from openkms.server import protocol
from openkms.server.error_map import error_body
from openkms.server.jsonio import dumps, loads_strict
from openkms.server.loop_lag import LoopLagMonitor
from openkms.server.operation_runner import OperationRunner
from openkms.server.unseal_gate import Refusal, UnsealGate
from openkms.server.validate import serialize_output
from openkms.sts import front as sts_front

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("openkms.server")

# How often each worker writes the summaries of unauthenticated calls it counted instead of recording.
SUMMARY_INTERVAL_SECONDS = 60.0

_JSON_HEADERS = [(b"content-type", protocol.JSON_CONTENT_TYPE.encode())]


class _ClientGone(Exception):
    """The connection closed before the request body arrived in full; nothing is executed or answered."""


@dataclass(frozen=True, slots=True)
class HTTPRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]  # lower-case names, in arrival order
    body: bytes
    client_ip: str
    secure: bool = False  # arrived over TLS (uvicorn's scope scheme "https")

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _error_response(error: KMSError, request_id: str) -> HTTPResponse:
    headers = [*_JSON_HEADERS, (b"x-amzn-requestid", request_id.encode()), (b"x-amzn-errortype", error.code.encode())]
    return HTTPResponse(error.status, error_body(error), headers)


def _unseal_answer(status: int, code: str, message: str, retry_after: int | None = None) -> HTTPResponse:
    headers = list(_JSON_HEADERS)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return HTTPResponse(status, dumps({"__type": code, "message": message}), headers)


CONSOLE_PATH = "/console"


class ConsoleFront(Protocol):
    """The web console (openkms.console), mounted at ``/console``."""

    async def handle(self, request: HTTPRequest) -> HTTPResponse: ...


class KMSApplication:
    """Serves the KMS API, ``GET /healthz``, ``POST /unseal`` and, when mounted, the console; nothing else."""

    def __init__(
        self,
        services: Services,
        authenticator: Authenticator,
        audit: AuditWriter,
        unseal: Callable[[str], bytes] | None = None,
        on_unsealed: Callable[[bytes], None] | None = None,
        on_startup: Callable[[], None] | None = None,
        unseal_gate: UnsealGate | None = None,
    ) -> None:
        self._services = services
        self._auth = authenticator
        self._audit = audit
        self.runner = OperationRunner(services, audit)
        self._unseal = unseal
        self._on_unsealed = on_unsealed
        self._on_startup = on_startup
        self._console: ConsoleFront | None = None
        self._unseal_gate = unseal_gate if unseal_gate is not None else UnsealGate(services.settings.unseal_networks)
        self._loop_lag = LoopLagMonitor()
        self._summaries: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Stop the audit writer (in-process use; a worker's process simply ends)."""
        self._audit.close()

    # -- the KMS request path -------------------------------------------------------------------------
    async def serve_kms(self, request: HTTPRequest) -> HTTPResponse:
        """One KMS API request whose body arrived in full (the ASGI path below, and in-process tests)."""
        operation = protocol.known_operation(request.header("x-amz-target"))
        call = self.runner.new_call(request.client_ip, request.header("user-agent") or "", operation)
        outcome = await self.runner.run(call, functools.partial(self._kms_step, request))
        if outcome.error is not None:
            return _error_response(outcome.error, outcome.request_id)
        assert outcome.answer is not None
        return HTTPResponse(200, outcome.answer, [*_JSON_HEADERS, (b"x-amzn-requestid", outcome.request_id.encode())])

    async def serve_sts(self, request: HTTPRequest) -> HTTPResponse:
        """One STS query-protocol request (sts/front.py): the same runner, its own step and wire format."""
        call = self.runner.new_call(
            request.client_ip, request.header("user-agent") or "", None, event_source=sts_front.EVENT_SOURCE
        )
        step = functools.partial(sts_front.step, request, self._auth, self._services)
        outcome = await self.runner.run(call, step)
        if outcome.error is not None:
            return HTTPResponse(*sts_front.error_reply(outcome.error, outcome.request_id))
        assert outcome.answer is not None
        return HTTPResponse(*outcome.answer)

    def _kms_step(self, request: HTTPRequest, call: events.Call) -> tuple[dict[str, Any], bytes]:
        """The API's part of a call: SigV4, region, ``X-Amz-Target``, content type, strict JSON; the response body."""
        svc = self._services
        signed = SignedRequest(request.method, request.path, request.query, request.headers, request.body)
        # Signatures are dated by the callers' real clocks: a dev clock offset moves key lifecycles, not them.
        signed_at = call.time - svc.settings.clock_offset_seconds
        try:
            principal, region = self._auth.authenticate(signed, signed_at, svc.settings.max_clock_skew_seconds)
        except Exception:
            call.claimed_access_key_id = events.claimed_access_key(request.header("authorization"))
            raise
        call.principal, call.region = principal, region
        if not svc.settings.serves_region(region):
            raise InvalidSignatureException("Credential should be scoped to a valid region.")
        operation = protocol.operation_from_target(request.header("x-amz-target"))
        protocol.check_content_type(request.header("content-type"))
        result = self.runner.dispatch(call, principal, operation, loads_strict(request.body), request.secure)
        return result, dumps(serialize_output(result))

    # -- ASGI -----------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        try:
            if path == "/healthz" and method in ("GET", "HEAD"):
                response = self._health()
            elif path == "/unseal" and method == "POST":
                response = await self._handle_unseal(scope, receive)
            elif path == "/" and method == "POST":
                response = await self._handle_kms_http(scope, receive)
            elif self._console is not None and (path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")):
                response = await self._handle_console(scope, receive)
            else:
                response = HTTPResponse(404, dumps({"__type": "UnknownOperationException"}), list(_JSON_HEADERS))
        except _ClientGone:
            return
        headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})

    async def _handle_kms_http(self, scope: Scope, receive: Receive) -> HTTPResponse:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await self._read_body(headers, receive)
        client = scope.get("client")
        if body is None:
            return await self._refuse_too_large(headers, client[0] if client else "")
        request = HTTPRequest(
            method=scope["method"],
            # UTF-8 with surrogateescape keeps every byte for the canonical request (auth/sigv4.py).
            path=scope.get("raw_path", b"/").decode("utf-8", "surrogateescape").split("?", 1)[0] or "/",
            query=scope.get("query_string", b"").decode("utf-8", "surrogateescape"),
            headers=headers,
            body=body,
            client_ip=client[0] if client else "",
            secure=scope.get("scheme") == "https",
        )
        if sts_front.is_sts(headers):  # STS on this endpoint, told apart by its headers (sts/front.py)
            return await self.serve_sts(request)
        return await self.serve_kms(request)

    async def _summaries_forever(self) -> None:
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL_SECONDS)
            await self.runner.write_summaries()

    def mount_console(self, console: ConsoleFront) -> None:
        """Serve ``/console`` with ``console`` (built after this app: it calls operations through :attr:`runner`)."""
        self._console = console

    async def _handle_console(self, scope: Scope, receive: Receive) -> HTTPResponse:
        assert self._console is not None
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await self._read_body(headers, receive)
        if body is None:
            return HTTPResponse(413, b"Request too large", [(b"content-type", b"text/plain; charset=utf-8")])
        client = scope.get("client")
        request = HTTPRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            client_ip=client[0] if client else "",
            secure=scope.get("scheme") == "https",
        )
        return await self._console.handle(request)

    async def _refuse_too_large(self, headers: list[tuple[str, str]], client_ip: str) -> HTTPResponse:
        """Refused unread (and unauthenticated: the signature covers a body we did not read), but recorded
        (a sealed server records nothing, and the refusal stands)."""
        error = RequestEntityTooLargeException(
            f"The request body exceeds the limit of {self._services.settings.max_body_bytes} bytes."
        )
        if self._services.keyring.sealed:
            return _error_response(error, str(uuid.uuid4()))
        found = dict(headers)
        operation = protocol.known_operation(found.get("x-amz-target"))
        call = self.runner.new_call(client_ip, found.get("user-agent", ""), operation)
        call.claimed_access_key_id = events.claimed_access_key(found.get("authorization"))

        def refuse(call: events.Call) -> tuple[dict[str, Any], bytes]:
            raise error

        outcome = await self.runner.run(call, refuse)
        assert outcome.error is not None
        return _error_response(outcome.error, outcome.request_id)

    async def _read_body(self, headers: list[tuple[str, str]], receive: Receive) -> bytes | None:
        """The body, read once; ``None`` if it is larger than allowed (refused before reading it all).

        Raises :class:`_ClientGone` if the client disconnects before the body is complete: an incomplete
        body is never executed (docs/tests.md S-3), whatever its signature covered.
        """
        limit = self._services.settings.max_body_bytes
        declared = [v for k, v in headers if k == "content-length"]
        if declared and (not declared[0].strip().isdigit() or int(declared[0]) > limit):
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _health(self) -> HTTPResponse:
        sealed = self._services.keyring.sealed
        body = dumps({"status": "sealed" if sealed else "ok", "sealed": sealed})
        return HTTPResponse(503 if sealed else 200, body, list(_JSON_HEADERS))

    async def _handle_unseal(self, scope: Scope, receive: Receive) -> HTTPResponse:
        """Try a passphrase, within the gate's bounds (server/unseal_gate.py), with an audit record either way.

        Argon2id is deliberately slow and large, so it runs off the event loop, one derivation per node.
        """
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        client = scope.get("client")
        client_ip = client[0] if client else ""
        user_agent = next((v for k, v in headers if k == "user-agent"), "")
        body = await self._read_body(headers, receive)
        if self._unseal is None or body is None:
            return _unseal_answer(400, "ValidationException", "unseal unavailable")
        gate = self._unseal_gate
        refusal: Refusal | None = None
        secret: object = None
        if not gate.allows_peer(client_ip):
            refusal = Refusal(403, "AccessDeniedException", "Unseal is not allowed from this address.")
        elif not self._services.keyring.sealed:
            refusal = Refusal(400, "ValidationException", "The service is already unsealed.")
        else:
            try:
                secret = loads_strict(body).get("passphrase")  # linear; a malformed body is not a guess
            except KMSError:
                secret = None
            if not isinstance(secret, str):
                refusal = Refusal(400, "InvalidUnsealKeyException", 'the body must be {"passphrase": "..."}')
            else:
                refusal = gate.try_begin()
        if refusal is not None:
            await self._record_unseal(client_ip, user_agent, (refusal.code, refusal.message))
            return _unseal_answer(refusal.status, refusal.code, refusal.message, refusal.retry_after)
        assert isinstance(secret, str)  # no refusal: the body held a passphrase
        try:
            root_key = await asyncio.to_thread(self._unseal, secret)
        except (UnsealError, KMSError) as exc:
            message = exc.message if isinstance(exc, KMSError) else str(exc)
            gate.finish(succeeded=False)
            await self._record_unseal(client_ip, user_agent, ("InvalidUnsealKeyException", message))
            return _unseal_answer(400, "InvalidUnsealKeyException", message)
        except BaseException:
            gate.finish(succeeded=False)
            raise
        gate.finish(succeeded=True)
        if self._services.keyring.sealed:  # another worker may have been unsealed meanwhile
            self._services.keyring.unseal(root_key)
            if self._on_unsealed is not None:
                self._on_unsealed(root_key)
        await self._record_unseal(client_ip, user_agent, None)
        return self._health()

    async def _record_unseal(self, client_ip: str, user_agent: str, error: tuple[str, str] | None) -> None:
        """Every attempt is recorded (failed ones within the unauthenticated budget). The answer does not wait
        on a failed write: the key derivation already happened, and refusing the unseal would change nothing."""
        now = self._services.clock.now()
        record = server_events.unseal_attempt(now, client_ip, user_agent, self._services.settings.default_region, error)
        if not await self.runner.record(record, budgeted=error is not None):
            log.error("the record of an unseal attempt could not be written")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._on_startup is not None:
                    self._on_startup()
                self._loop_lag.start(asyncio.get_running_loop())
                self._summaries = asyncio.create_task(self._summaries_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._loop_lag.stop()
                if self._summaries is not None:
                    self._summaries.cancel()
                await self.runner.write_summaries()
                await send({"type": "lifespan.shutdown.complete"})
                return
