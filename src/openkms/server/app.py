"""The HTTP front of openkms: one ASGI app serving the KMS API, ``/healthz``, ``/unseal`` and the console.

A KMS request, from the socket in (server/connections.py bounds what comes before the app):

    head size and read deadline (connections.py) -> body size -> sealed? -> SigV4 -> region -> X-Amz-Target
    -> strict JSON -> model validation -> operation (resolve key, authorise, crypto, storage) -> JSON response
    -> its audit record made durable (or counted, for an unauthenticated call over its budget) -> the answer

:meth:`execute` runs it; :meth:`_handle_kms_http` adds the body, the thread hop for slow operations and the
record. Everything after the body is read is synchronous and runs on the event loop (each step costs
microseconds, docs/performance.md), except operations registered as slow, which run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from openkms import ids
from openkms.audit import events, server_events
from openkms.audit import scope as audit_scope
from openkms.audit.events import AuditEvent
from openkms.audit.unauthenticated import UnauthenticatedBudget
from openkms.audit.writer import AuditWriter
from openkms.auth.credentials import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.context import Principal, RequestContext
from openkms.errors import (
    InvalidSignatureException,
    KmsError,
    KMSInternalException,
    RequestEntityTooLargeException,
    ServiceSealedException,
    UnsupportedOperationException,
)
from openkms.operations import registry
from openkms.operations.services import Services
from openkms.seal.base import UnsealError
from openkms.server import protocol
from openkms.server.error_map import as_kms_error, error_body
from openkms.server.jsonio import dumps, loads_strict
from openkms.server.loop_lag import LoopLagMonitor
from openkms.server.unseal_gate import Refusal, UnsealGate
from openkms.server.validate import serialize_output, validate_input
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
class HttpRequest:
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
class Caller:
    """Where a call made through another front (the console) comes from, for its audit record."""

    source_ip: str
    user_agent: str
    secure: bool


@dataclass(frozen=True, slots=True)
class Invocation:
    """One operation's outcome: ``result`` if it succeeded, else ``error``; ``record`` if still to write."""

    request_id: str
    result: dict[str, Any] | None
    error: KmsError | None
    record: AuditEvent | None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _error_response(error: KmsError, request_id: str) -> HttpResponse:
    headers = [*_JSON_HEADERS, (b"x-amzn-requestid", request_id.encode()), (b"x-amzn-errortype", error.code.encode())]
    return HttpResponse(error.status, error_body(error), headers)


def _unseal_answer(status: int, code: str, message: str, retry_after: int | None = None) -> HttpResponse:
    headers = list(_JSON_HEADERS)
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    return HttpResponse(status, dumps({"__type": code, "message": message}), headers)


def _audit_failed(record: AuditEvent, exc: BaseException | None) -> HttpResponse:
    """The answer when a record could not be written: fail closed, same request id, no detail."""
    log.error("request %s failed: its audit record could not be written (%s)", record.request_id, type(exc).__name__)
    return _error_response(KMSInternalException(), record.request_id)


CONSOLE_PATH = "/console"


class ConsoleFront(Protocol):
    """The web console (openkms.console), mounted at ``/console``."""

    async def handle(self, request: HttpRequest) -> HttpResponse: ...


class KmsApplication:
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
        self._unseal = unseal
        self._on_unsealed = on_unsealed
        self._on_startup = on_startup
        self._console: ConsoleFront | None = None
        self._unseal_gate = unseal_gate if unseal_gate is not None else UnsealGate(services.settings.unseal_networks)
        self._unauthenticated = UnauthenticatedBudget(services.settings.default_region)
        self._loop_lag = LoopLagMonitor()
        self._summaries: asyncio.Task[None] | None = None

    # -- the KMS request path -------------------------------------------------------------------------
    def execute(self, request: HttpRequest) -> tuple[HttpResponse, AuditEvent | None]:
        """Run one KMS request; returns the response and its audit record if that is still to be written
        (a state change wrote its record in its own transaction; a sealed server records nothing)."""
        svc = self._services
        if svc.keyring.sealed:  # a sealed server answers nothing and touches no storage (docs/tests.md P-4)
            return _error_response(ServiceSealedException(), str(uuid.uuid4())), None
        now = svc.clock.now()
        call = events.Call(
            request_id=ids.new_request_id(now),
            time=now,
            source_ip=request.client_ip,
            user_agent=(request.header("user-agent") or "")[:1024],
            region=svc.settings.default_region,
            operation=protocol.known_operation(request.header("x-amz-target")),
        )
        pending, token = audit_scope.begin(call)
        result: dict[str, Any] | None = None
        try:
            signed = SignedRequest(request.method, request.path, request.query, request.headers, request.body)
            # Signatures are dated by the callers' real clocks: a dev clock offset moves key lifecycles, not them.
            signed_at = now - svc.settings.clock_offset_seconds
            principal, region = self._auth.authenticate(signed, signed_at, svc.settings.max_clock_skew_seconds)
            call.principal, call.region = principal, region
            if not svc.settings.serves_region(region):
                raise InvalidSignatureException("Credential should be scoped to a valid region.")
            operation = protocol.operation_from_target(request.header("x-amz-target"))
            protocol.check_content_type(request.header("content-type"))
            result = self._dispatch(call, principal, operation, loads_strict(request.body), request.secure)
            body = dumps(serialize_output(result))
            response = HttpResponse(200, body, [*_JSON_HEADERS, (b"x-amzn-requestid", call.request_id.encode())])
            error: KmsError | None = None
        except Exception as exc:  # every failure leaves through the one error map
            error = as_kms_error(exc, call.operation)
            response = _error_response(error, call.request_id)
        finally:
            audit_scope.end(token)
        if call.principal is None:
            call.claimed_access_key_id = events.claimed_access_key(request.header("authorization"))
        if pending.written:
            return response, None
        if error is None:
            return response, events.build(call, None, None, result)
        return response, events.build(call, error.code, error.message)

    def _dispatch(
        self, call: events.Call, principal: Principal, operation: str, raw: dict[str, Any], secure: bool
    ) -> dict[str, Any]:
        """Validate and run ``operation`` for an authenticated caller (the API and the console alike)."""
        admin = registry.admin_operation_for(operation) if call.event_source != events.EVENT_SOURCE else None
        if admin is not None:
            handler = admin.handler
            params = dict(raw)  # an admin operation validates its own parameters
        else:
            found = registry.handler_for(operation)
            if found is None:
                raise UnsupportedOperationException(f"{operation} is not supported by this version of openkms.")
            handler = found
            params = validate_input(operation, raw)
        call.params = params
        ctx = RequestContext(
            request_id=call.request_id,
            operation=operation,
            principal=principal,
            region=call.region,
            source_ip=call.source_ip,
            user_agent=call.user_agent,
            now=call.time,
            params=params,
            secure_transport=secure,
            audit=call.note,
        )
        return handler(self._services, ctx, params)

    def invoke(self, principal: Principal, operation: str, raw: dict[str, Any], via: Caller) -> Invocation:
        """Run ``operation`` as ``principal`` for another front of this process (the console): the same
        validation, authorisation and audit record as an API call; the record is returned, still to write."""
        svc = self._services
        if svc.keyring.sealed:
            raise ServiceSealedException()
        now = svc.clock.now()
        admin = registry.admin_operation_for(operation)
        call = events.Call(
            request_id=ids.new_request_id(now),
            time=now,
            source_ip=via.source_ip,
            user_agent=via.user_agent[:1024],
            region=svc.settings.default_region,
            operation=operation,
            principal=principal,
            event_source=admin.event_source if admin is not None else events.EVENT_SOURCE,
        )
        pending, token = audit_scope.begin(call)
        result: dict[str, Any] | None = None
        error: KmsError | None = None
        try:
            result = self._dispatch(call, principal, operation, raw, via.secure)
        except Exception as exc:
            error = as_kms_error(exc, operation)
        finally:
            audit_scope.end(token)
        if pending.written:
            record = None
        elif error is None:
            record = events.build(call, None, None, result)
        else:
            record = events.build(call, error.code, error.message)
        return Invocation(call.request_id, result, error, record)

    async def call_operation(
        self, principal: Principal, operation: str, raw: dict[str, Any], via: Caller
    ) -> Invocation:
        """:meth:`invoke` with its record made durable before the result is handed back (fail closed: if the
        record cannot be written, the result is dropped and the error is KMSInternalException)."""
        self._audit.expect()
        try:
            if registry.is_slow(operation):
                invocation = await asyncio.to_thread(self.invoke, principal, operation, raw, via)
            else:
                invocation = self.invoke(principal, operation, raw, via)
        except BaseException:
            self._audit.forget()
            raise
        return await self.record(invocation)

    async def record(self, invocation: Invocation) -> Invocation:
        """Write ``invocation``'s record (one :meth:`AuditWriter.expect` must be outstanding for it)."""
        if invocation.record is None:
            self._audit.forget()
            return invocation
        if await self._audit.submit(invocation.record):
            return invocation
        log.error("request %s failed: its audit record could not be written", invocation.request_id)
        return Invocation(invocation.request_id, None, KMSInternalException(), invocation.record)

    async def write_record(self, record: AuditEvent) -> bool:
        """Make a record of this front's own (a console sign-in) durable; False if it could not be written.

        A failed sign-in has no principal: like any unauthenticated call it is recorded within the budget and
        counted into a summary beyond it (True: accounted for)."""
        if not self._admitted(record):
            return True
        self._audit.expect()
        return await self._audit.submit(record)

    def handle_kms(self, request: HttpRequest) -> HttpResponse:
        """The whole request with its record written in this thread (in-process tests; never on the loop)."""
        response, record = self.execute(request)
        if record is not None:
            try:
                self._audit.write_now(record)
            except Exception as exc:
                return _audit_failed(record, exc)
        return response

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
                response = HttpResponse(404, dumps({"__type": "UnknownOperationException"}), list(_JSON_HEADERS))
        except _ClientGone:
            return
        headers = [*response.headers, (b"content-length", str(len(response.body)).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})

    async def _handle_kms_http(self, scope: Scope, receive: Receive) -> HttpResponse:
        self._audit.expect()  # from here every path submits a record or forgets it
        try:
            headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
            body = await self._read_body(headers, receive)
        except BaseException:
            self._audit.forget()
            raise
        client = scope.get("client")
        if body is None:
            return await self._refuse_too_large(headers, client[0] if client else "")
        request = HttpRequest(
            method=scope["method"],
            # UTF-8 with surrogateescape keeps every byte for the canonical request (auth/sigv4.py).
            path=scope.get("raw_path", b"/").decode("utf-8", "surrogateescape").split("?", 1)[0] or "/",
            query=scope.get("query_string", b"").decode("utf-8", "surrogateescape"),
            headers=headers,
            body=body,
            client_ip=client[0] if client else "",
            secure=scope.get("scheme") == "https",
        )
        target = request.header("x-amz-target") or ""
        try:
            if sts_front.is_sts(headers):  # STS on this endpoint, told apart by its headers (sts/front.py)
                reply, record = sts_front.handle(request, self._auth, self._services)
                response = HttpResponse(*reply)
            elif target.startswith(protocol.TARGET_PREFIX) and registry.is_slow(target[len(protocol.TARGET_PREFIX) :]):
                # Key generation can hold a CPU for a second: keep this worker's other connections moving.
                response, record = await asyncio.to_thread(self.execute, request)
            else:
                response, record = self.execute(request)
        except BaseException:  # cancelled while a thread ran it: the record is lost with the answer
            self._audit.forget()
            raise
        if record is None or not self._admitted(record):
            self._audit.forget()
            return response
        if not await self._audit.submit(record):
            return _audit_failed(record, None)  # no answer, least of all a secret, leaves without its record
        return response

    def _admitted(self, record: AuditEvent) -> bool:
        """Whether to write ``record`` now: always for a verified caller; for a call nobody signed, within
        the unauthenticated budget (audit/unauthenticated.py), else it is counted into a summary record."""
        return bool(record.principal_arn) or self._unauthenticated.admit(record, record.event_time)

    async def _write_summaries(self) -> None:
        """The counted unauthenticated calls as summary records (fail-open here: their answers are gone)."""
        for summary in self._unauthenticated.drain(self._services.clock.now()):
            self._audit.expect()
            if not await self._audit.submit(summary):
                log.error(
                    "a summary of %s unauthenticated requests could not be written",
                    summary.event.get("serviceEventDetails", {}).get("count"),
                )

    async def _summaries_forever(self) -> None:
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL_SECONDS)
            await self._write_summaries()

    def mount_console(self, console: ConsoleFront) -> None:
        """Serve ``/console`` with ``console`` (built after this app: it calls :meth:`call_operation`)."""
        self._console = console

    async def _handle_console(self, scope: Scope, receive: Receive) -> HttpResponse:
        assert self._console is not None
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await self._read_body(headers, receive)
        if body is None:
            return HttpResponse(413, b"Request too large", [(b"content-type", b"text/plain; charset=utf-8")])
        client = scope.get("client")
        request = HttpRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            client_ip=client[0] if client else "",
            secure=scope.get("scheme") == "https",
        )
        return await self._console.handle(request)

    async def _refuse_too_large(self, headers: list[tuple[str, str]], client_ip: str) -> HttpResponse:
        """Refused unread (and unauthenticated: the signature covers a body we did not read), but recorded."""
        svc = self._services
        error = RequestEntityTooLargeException(
            f"The request body exceeds the limit of {svc.settings.max_body_bytes} bytes."
        )
        if svc.keyring.sealed:
            self._audit.forget()
            return _error_response(error, str(uuid.uuid4()))
        found = dict(headers)
        now = svc.clock.now()
        call = events.Call(
            request_id=ids.new_request_id(now),
            time=now,
            source_ip=client_ip,
            user_agent=found.get("user-agent", "")[:1024],
            region=svc.settings.default_region,
            operation=protocol.known_operation(found.get("x-amz-target")),
            claimed_access_key_id=events.claimed_access_key(found.get("authorization")),
        )
        record = events.build(call, error.code, error.message)
        if not self._admitted(record):
            self._audit.forget()
        elif not await self._audit.submit(record):
            return _audit_failed(record, None)
        return _error_response(error, call.request_id)

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

    def _health(self) -> HttpResponse:
        sealed = self._services.keyring.sealed
        body = dumps({"status": "sealed" if sealed else "ok", "sealed": sealed})
        return HttpResponse(503 if sealed else 200, body, list(_JSON_HEADERS))

    async def _handle_unseal(self, scope: Scope, receive: Receive) -> HttpResponse:
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
            except KmsError:
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
        except (UnsealError, KmsError) as exc:
            message = exc.message if isinstance(exc, KmsError) else str(exc)
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
        if error is not None and not self._unauthenticated.admit(record, now):
            return
        self._audit.expect()
        if not await self._audit.submit(record):
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
                await self._write_summaries()
                await send({"type": "lifespan.shutdown.complete"})
                return
