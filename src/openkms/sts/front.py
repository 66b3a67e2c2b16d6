"""The one entry point for STS on the KMS endpoint: which requests are STS's, and running one.

**Telling STS from KMS** (:func:`is_sts`), on the headers alone, before authentication and before the body is
parsed, in one linear pass: every KMS call names its operation in ``X-Amz-Target`` (AWS JSON 1.1), and no
STS call does (the query protocol names it in the body). So a request without ``X-Amz-Target`` is STS's
when its body is a form (``application/x-www-form-urlencoded``) or its SigV4 credential scope names ``sts``.
Anything else stays with KMS, as before. A form signed for ``kms`` therefore comes here and is refused for
its scope (``SignatureDoesNotMatch``), and a KMS call signed for ``sts`` stays with KMS and is refused there:
each API accepts only signatures scoped to itself, as AWS's endpoints do.

**Running one**: the server's operation runner (server/operation_runner.py) runs :func:`step` as it runs a KMS
call's, so the seal, the record and its durability are the same: form (bounded, sts/protocol.py) -> SigV4
scoped to ``sts`` and a region this node serves or ``us-east-1`` (the global endpoint's) -> Action and
Version -> the operation -> XML; :func:`error_reply` renders a failure. An unauthenticated call is recorded
within the unauthenticated budget, as for KMS. The record is kept because
AWS keeps it: CloudTrail "logs all authenticated API requests to IAM and AWS STS API operations" (IAM User
Guide, "Logging IAM and AWS STS API calls with AWS CloudTrail"), GetCallerIdentity included, with
``eventSource`` ``sts.amazonaws.com``, read-only, no request parameters and no response elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from openkms.audit import events
from openkms.auth.credentials import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import KMSError
from openkms.operations.services import Services
from openkms.sts import operations, protocol

SERVICE = "sts"
EVENT_SOURCE = "sts.amazonaws.com"
# SDKs sign for the global endpoint (sts.amazonaws.com) in us-east-1, whichever regions this node serves.
GLOBAL_SIGNING_REGION = "us-east-1"
_SCAN_LIMIT = 2048  # of the Authorization header, for its scope; SigV4 refuses a longer Credential anyway


class Inbound(Protocol):
    """The request as the server received it (server/app.py ``HTTPRequest`` is one)."""

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
    """Status, body, headers: the fields of server/app.py ``HTTPResponse``, in its order."""

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


def step(
    request: Inbound, authenticator: Authenticator, services: Services, call: events.Call
) -> tuple[dict[str, str], Reply]:
    """STS's part of a call run by the server's operation runner (which checked the seal and makes the record
    durable): the form, SigV4 scoped to ``sts``, the action; returns the result and the XML answer. A failure
    is raised under STS's name (:class:`protocol.STSError`), so that the record names it as the answer does;
    :func:`error_reply` renders it."""
    try:
        return _run(request, authenticator, services, call)
    except Exception as exc:
        raise protocol.STSError(protocol.wire_error(exc)) from exc


def _run(
    request: Inbound, authenticator: Authenticator, services: Services, call: events.Call
) -> tuple[dict[str, str], Reply]:
    svc = services
    form = protocol.parse_form(request.body, request.header("content-type"))
    call.operation = operations.known(form.action)
    signed = SignedRequest(request.method, request.path, request.query, request.headers, request.body)
    # Signatures are dated by the callers' real clocks: a dev clock offset moves key lifecycles, not them.
    signed_at = call.time - svc.settings.clock_offset_seconds
    try:
        principal, region = authenticator.authenticate(
            signed,
            signed_at,
            svc.settings.max_clock_skew_seconds,
            service=SERVICE,
            region_ok=lambda scoped: scoped == GLOBAL_SIGNING_REGION or svc.settings.serves_region(scoped),
        )
    except Exception:
        call.claimed_access_key_id = events.claimed_access_key(request.header("authorization"))
        raise
    call.principal, call.region = principal, region
    found = operations.resolve(form.action, form.version)
    ctx = operations.STSContext(call.request_id, principal, region, call.time, svc)
    result = found.handler(ctx, form.params)
    return result, _reply(200, protocol.result_xml(found.action, result, call.request_id), call.request_id)


def error_reply(error: KMSError, request_id: str) -> Reply:
    """A failed call's answer as STS sends it (a request that names no action is redirected, with no body)."""
    if error.code == protocol.MissingAction.code:
        location = (b"location", protocol.NO_ACTION_LOCATION.encode())
        return Reply(error.status, b"", [location, (b"x-amzn-requestid", request_id.encode())])
    wire = protocol.wire_error(error)
    return _reply(wire.status, protocol.error_xml(wire, request_id), request_id)
