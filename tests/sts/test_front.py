"""Which requests are STS's (on headers alone, before authentication), and one STS request run in process
through the server's operation runner: its answer and its record in the trail."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.operations.services import Services
from openkms.server.app import HTTPRequest, HTTPResponse
from openkms.sts import front
from openkms.wiring import build_app
from tests.inprocess import ACCOUNT_ID, InProcessKMS

FORM = "application/x-www-form-urlencoded; charset=utf-8"
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


def _authorization(service: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("content-type", FORM)], True),  # unsigned form: STS answers MissingAuthenticationToken
        ([("content-type", "Application/X-WWW-Form-Urlencoded")], True),
        ([("authorization", _authorization("sts"))], True),  # scoped to sts, whatever the body
        ([("content-type", FORM), ("authorization", _authorization("kms"))], True),  # refused there for its scope
        ([("content-type", FORM), ("x-amz-target", "TrentService.ListKeys")], False),  # a KMS call names itself
        ([("authorization", _authorization("sts")), ("x-amz-target", "TrentService.ListKeys")], False),
        ([("content-type", "application/x-amz-json-1.1"), ("authorization", _authorization("kms"))], False),
        ([("content-type", "application/x-amz-json-1.1")], False),
        ([], False),
        ([("authorization", "AWS4-HMAC-SHA256 Credential=broken")], False),
        ([("authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/sts")], False),  # four elements: not a scope
        ([("authorization", " " * 4096 + "Credential=a/b/c/sts/aws4_request")], False),  # beyond the scan
    ],
)
def test_sts_requests_are_told_apart_by_their_headers(headers: list[tuple[str, str]], expected: bool) -> None:
    assert front.is_sts(headers) is expected


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[InProcessKMS]:
    app = InProcessKMS(tmp_path)
    yield app
    app.close()


def _request(
    kms: InProcessKMS,
    body: bytes = BODY,
    *,
    sign: bool = True,
    region: str = "us-east-1",
    content_type: str | None = FORM,
) -> HTTPRequest:
    headers = {} if content_type is None else {"Content-Type": content_type}
    raw = AWSRequest(method="POST", url="https://sts.amazonaws.com/", data=body, headers=headers)
    if sign:
        SigV4Auth(kms.credentials, "sts", region).add_auth(raw)
    sent = [(k.lower(), v) for k, v in raw.headers.items()]
    sent.append(("host", "sts.amazonaws.com"))
    return HTTPRequest("POST", "/", "", sent, body, "192.0.2.7")


def _serve(kms: InProcessKMS, request: HTTPRequest, services: Services | None = None) -> HTTPResponse:
    """The request as the server runs it (with other ``services``: another app on the same storage)."""
    if services is None:
        return kms.run(kms.app.serve_sts(request))
    app = build_app(services)
    try:
        return kms.run(app.serve_sts(request))
    finally:
        app.close()


def _handle(kms: InProcessKMS, request: HTTPRequest) -> tuple[HTTPResponse, dict[str, Any] | None]:
    """The answer and the trail's record of it (None if nothing was recorded)."""
    reply = _serve(kms, request)
    request_id = dict(reply.headers)[b"x-amzn-requestid"].decode()
    with kms.storage.read() as tx:
        recorded = tx.audit_by_request(request_id)
    return reply, (json.loads(recorded[0].event) if recorded else None)


def test_a_signed_call_answers_xml_and_hands_back_its_record(kms: InProcessKMS) -> None:
    reply, record = _handle(kms, _request(kms))
    assert reply.status == 200
    assert dict(reply.headers)[b"content-type"] == b"text/xml"
    request_id = dict(reply.headers)[b"x-amzn-requestid"].decode()
    assert f"<RequestId>{request_id}</RequestId>".encode() in reply.body
    assert f"<Account>{ACCOUNT_ID}</Account>".encode() in reply.body
    assert record is not None
    assert (record["eventName"], record["requestID"], record.get("errorCode")) == (
        "GetCallerIdentity",
        request_id,
        None,
    )
    assert record["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
    event = record
    assert event["eventSource"] == "sts.amazonaws.com"
    assert (event["sourceIPAddress"], event["awsRegion"]) == ("192.0.2.7", "us-east-1")
    assert event["userIdentity"]["type"] == "IAMUser"


def test_an_unsigned_call_is_recorded_without_a_principal(kms: InProcessKMS) -> None:
    reply, record = _handle(kms, _request(kms, sign=False))
    assert reply.status == 403 and b"<Code>MissingAuthenticationToken</Code>" in reply.body
    assert record is not None and "arn" not in record["userIdentity"]  # within the unauthenticated budget
    assert record["errorCode"] == "MissingAuthenticationToken"


@pytest.mark.parametrize(
    ("service", "secret", "message"),
    [
        ("sts", None, "Credential should be scoped to a valid region. "),
        ("sts", "not-the-secret", "Credential should be scoped to a valid region. "),  # before the signature
        (
            "kms",
            None,
            "Credential should be scoped to a valid region. Credential should be scoped to correct service: 'sts'. ",
        ),
    ],
)
def test_the_scope_region_is_judged_with_the_service_before_the_signature(
    kms: InProcessKMS, service: str, secret: str | None, message: str
) -> None:
    """As the real STS answers (recorded): a region it does not serve fails the scope check, whatever the
    signature, and comes before a wrong service in one message."""
    settings = dataclasses.replace(kms.services.settings, regions=frozenset({"eu-west-3"}))
    services = dataclasses.replace(kms.services, settings=settings)
    credentials = Credentials(kms.credentials.access_key, secret or kms.credentials.secret_key)
    raw = AWSRequest(method="POST", url="https://sts.amazonaws.com/", data=BODY, headers={"Content-Type": FORM})
    SigV4Auth(credentials, service, "eu-west-1").add_auth(raw)
    headers = [*((k.lower(), v) for k, v in raw.headers.items()), ("host", "sts.amazonaws.com")]
    request = HTTPRequest("POST", "/", "", headers, BODY, "192.0.2.7")
    reply = _serve(kms, request, services)
    assert reply.status == 403
    assert f"<Code>SignatureDoesNotMatch</Code><Message>{message}</Message>".encode() in reply.body


@pytest.mark.parametrize(("body", "content_type"), [(b"Version=2011-06-15", FORM), (BODY, None)])
def test_a_call_naming_no_action_is_redirected_as_at_aws(
    kms: InProcessKMS, body: bytes, content_type: str | None
) -> None:
    """AWS answers 302 to https://aws.amazon.com/iam, without a body, when no Action can be read (none given,
    or a body that is not a form); the trail records it as MissingAction."""
    request = _request(kms, body, content_type=content_type)
    reply, record = _handle(kms, request)
    headers = dict(reply.headers)
    assert (reply.status, reply.body, headers[b"location"]) == (302, b"", b"https://aws.amazon.com/iam")
    assert record is not None and (record["errorCode"], record["eventName"]) == ("MissingAction", "Unknown")
    assert record["requestID"] == headers[b"x-amzn-requestid"].decode()


def test_the_global_signing_region_is_accepted_even_where_not_served(kms: InProcessKMS) -> None:
    settings = dataclasses.replace(kms.services.settings, regions=frozenset({"eu-west-3"}))
    services = dataclasses.replace(kms.services, settings=settings)
    for region, status in (("eu-west-3", 200), ("us-east-1", 200), ("eu-west-1", 403)):
        reply = _serve(kms, _request(kms, region=region), services)
        assert reply.status == status, region
    assert b"Credential should be scoped to a valid region." in reply.body


def test_a_sealed_server_answers_service_unavailable_and_records_nothing(kms: InProcessKMS) -> None:
    kms.services.keyring.seal()
    reply, record = _handle(kms, _request(kms))
    assert reply.status == 503 and b"<Code>ServiceUnavailable</Code>" in reply.body
    assert b"<Type>Receiver</Type>" in reply.body
    assert record is None
