"""The one entry point for STS on the KMS endpoint: which requests are STS's, and running one.

**Telling STS from KMS** (:func:`is_sts`), on the headers alone, before authentication and before the body is
parsed, in one linear pass: every KMS call names its operation in ``X-Amz-Target`` (AWS JSON 1.1), and no
STS call does (the query protocol names it in the body). So a request without ``X-Amz-Target`` is STS's
when its body is a form (``application/x-www-form-urlencoded``) or its SigV4 credential scope names ``sts``.
Anything else stays with KMS, as before. A form signed for ``kms`` therefore comes here and is refused for
its scope (``SignatureDoesNotMatch``), and a KMS call signed for ``sts`` stays with KMS and is refused there:
each API accepts only signatures scoped to itself, as AWS's endpoints do.

**Running one** (:func:`handle`): sealed? -> form (bounded, sts/protocol.py) -> SigV4 scoped to ``sts`` and
a region this node serves or ``us-east-1`` (the global endpoint's) -> Action and Version -> the operation
-> XML. The server writes the returned audit record as it writes a KMS call's (an unauthenticated call
within the unauthenticated budget). The record is kept because
AWS keeps it: CloudTrail "logs all authenticated API requests to IAM and AWS STS API operations" (IAM User
Guide, "Logging IAM and AWS STS API calls with AWS CloudTrail"), GetCallerIdentity included, with
``eventSource`` ``sts.amazonaws.com``, read-only, no request parameters and no response elements.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from openkms import ids
from openkms.audit import events
from openkms.audit.events import AuditEvent
from openkms.auth.credentials import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import ServiceSealedException
from openkms.operations.services import Services
from openkms.sts import operations, protocol

SERVICE = "sts"
EVENT_SOURCE = "sts.amazonaws.com"
# SDKs sign for the global endpoint (sts.amazonaws.com) in us-east-1, whichever regions this node serves.
GLOBAL_SIGNING_REGION = "us-east-1"
_SCAN_LIMIT = 2048  # of the Authorization header, for its scope; SigV4 refuses a longer Credential anyway


class Inbound(Protocol):
    """The request as the server received it (server/app.py ``HttpRequest`` is one)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...  # lower-case names, in arrival order
    @property
    def body(self) -> bytes: ...
    @property
    def client_ip(self) -> str: ...
    def header(self, name: str) -> str | None: ...


class Reply(NamedTuple):
    """Status, body, headers: the fields of server/app.py ``HttpResponse``, in its order."""

    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


def _scope_service(authorization: str) -> str | None:
    """The service of ``Credential=<key>/<date>/<region>/<service>/aws4_request``, found without a regex."""
    text = authorization[:_SCAN_LIMIT]
    start = text.find("Credential=")
    if start < 0:
        return None
    value = text[start + len("Credential=") :].split(",", 1)[0].strip()
    parts = value.split("/")
    return parts[3] if len(parts) == 5 else None


def is_sts(headers: Sequence[tuple[str, str]]) -> bool:
    """Whether a ``POST /`` is an STS call (the module docstring says how, and why that is safe)."""
    content_type: str | None = None
    authorization: str | None = None
    for name, value in headers:
        if name == "x-amz-target":
            return False
        if name == "content-type":
            content_type = value
        elif name == "authorization":
            authorization = value
    if protocol.media_type(content_type) == protocol.FORM_CONTENT_TYPE:
        return True
    return authorization is not None and _scope_service(authorization) == SERVICE


def _reply(status: int, body: bytes, request_id: str) -> Reply:
    headers = [(b"content-type", protocol.XML_CONTENT_TYPE.encode()), (b"x-amzn-requestid", request_id.encode())]
    return Reply(status, body, headers)


def handle(request: Inbound, authenticator: Authenticator, services: Services) -> tuple[Reply, AuditEvent | None]:
    """Run one STS request; returns the answer and its audit record, still to be written (None when sealed:
    a sealed server touches no storage and records nothing, as for KMS)."""
    svc = services
    if svc.keyring.sealed:
        error = protocol.wire_error(ServiceSealedException())
        request_id = str(uuid.uuid4())
        return _reply(error.status, protocol.error_xml(error, request_id), request_id), None
    now = svc.clock.now()
    call = events.Call(
        request_id=ids.new_request_id(now),
        time=now,
        source_ip=request.client_ip,
        user_agent=(request.header("user-agent") or "")[:1024],
        region=svc.settings.default_region,
        event_source=EVENT_SOURCE,
    )
    try:
        form = protocol.parse_form(request.body, request.header("content-type"))
        call.operation = operations.known(form.action)
        signed = SignedRequest(request.method, request.path, request.query, request.headers, request.body)
        # Signatures are dated by the callers' real clocks: a dev clock offset moves key lifecycles, not them.
        signed_at = now - svc.settings.clock_offset_seconds
        principal, region = authenticator.authenticate(
            signed,
            signed_at,
            svc.settings.max_clock_skew_seconds,
            service=SERVICE,
            region_ok=lambda scoped: scoped == GLOBAL_SIGNING_REGION or svc.settings.serves_region(scoped),
        )
        call.principal, call.region = principal, region
        found = operations.resolve(form.action, form.version)
        ctx = operations.StsContext(call.request_id, principal, region, now, svc)
        result = found.handler(ctx, form.params)
        reply = _reply(200, protocol.result_xml(found.action, result, call.request_id), call.request_id)
        error_code: str | None = None
        error_message: str | None = None
    except protocol.MissingAction as exc:  # AWS redirects a request that names no action, with no body
        location = (b"location", protocol.NO_ACTION_LOCATION.encode())
        reply = Reply(exc.status, b"", [location, (b"x-amzn-requestid", call.request_id.encode())])
        error_code, error_message = exc.code, exc.message
    except Exception as exc:  # every other failure leaves as STS names it
        error = protocol.wire_error(exc)
        reply = _reply(error.status, protocol.error_xml(error, call.request_id), call.request_id)
        error_code, error_message = error.code, error.message
    if call.principal is None:
        call.claimed_access_key_id = events.claimed_access_key(request.header("authorization"))
    return reply, events.build(call, error_code, error_message)
