"""The STS query protocol: form parsing (bounded, strict, linear), STS's error names, and XML that botocore's
own query parser reads back as AWS's."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import create_parser

from openkms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    KMSInternalException,
    MissingAuthenticationTokenException,
    ServiceSealedException,
    UnrecognizedClientException,
)
from openkms.sts import protocol
from openkms.sts.protocol import Form, InvalidAction, InvalidParameterValue, WireError

FORM = "application/x-www-form-urlencoded; charset=utf-8"
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
STS_MODEL = ServiceModel(Loader().load_service_model("sts", "service-2"))


def _parse(status: int, body: bytes) -> dict[str, Any]:
    """What boto3's ``sts`` client makes of an answer (botocore's query parser and the STS model)."""
    output = STS_MODEL.operation_model("GetCallerIdentity").output_shape
    parsed: dict[str, Any] = create_parser("query").parse({"status_code": status, "headers": {}, "body": body}, output)
    return parsed


# -- parsing ------------------------------------------------------------------------------------------------


def test_a_botocore_form_is_parsed() -> None:
    form = protocol.parse_form(b"Action=GetCallerIdentity&Version=2011-06-15", FORM)
    assert form == Form("GetCallerIdentity", "2011-06-15", {})


def test_values_are_form_decoded_and_blank_values_kept() -> None:
    form = protocol.parse_form(b"Action=A&Version=V&RoleSessionName=a%2Fb+c&Empty=", FORM)
    assert form.params == {"RoleSessionName": "a/b c", "Empty": ""}


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-amz-json-1.1", "text/plain"])
def test_a_body_that_is_not_a_form_holds_no_parameters(content_type: str | None) -> None:
    assert protocol.parse_form(b"Action=GetCallerIdentity&Version=2011-06-15", content_type) == Form(None, None, {})


def test_the_media_type_ignores_parameters_and_case() -> None:
    assert protocol.parse_form(b"Action=X", "Application/X-WWW-Form-URLEncoded ; charset=UTF-8").action == "X"


@pytest.mark.parametrize(
    "body",
    [
        "Action=Caf\u00e9".encode(),  # not percent-encoded: not a form
        b"Action=%FF%FE",  # percent-encoded bytes that are not UTF-8
    ],
)
def test_a_body_that_is_not_a_valid_form_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidParameterValue, match="not a valid URL-encoded form"):
        protocol.parse_form(body, FORM)


def test_percent_encoded_utf8_is_decoded() -> None:
    assert protocol.parse_form(b"RoleSessionName=caf%C3%A9", FORM).params == {"RoleSessionName": "caf\u00e9"}


def test_the_number_of_fields_is_bounded() -> None:
    at_limit = b"&".join(b"p%d=1" % n for n in range(protocol.MAX_FIELDS))
    assert len(protocol.parse_form(at_limit, FORM).params) == protocol.MAX_FIELDS
    with pytest.raises(InvalidParameterValue, match="more than 1000 parameters"):
        protocol.parse_form(at_limit + b"&one=more", FORM)


def test_a_repeated_parameter_takes_its_first_value_as_at_aws() -> None:
    form = protocol.parse_form(
        b"Action=GetCallerIdentity&Action=NoSuchAction&Version=2000-01-01&Version=x&A=1&A=2", FORM
    )
    assert form == Form("GetCallerIdentity", "2000-01-01", {"A": "1"})


def test_empty_action_and_version_are_kept_apart_from_absent_ones() -> None:
    assert protocol.parse_form(b"Action=&Version=", FORM)[:2] == ("", "")
    assert protocol.parse_form(b"Other=1", FORM)[:2] == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        b"&" * (128 * 1024),  # separators only: refused by the field count before any decoding
        b"x=" + b"%" * (128 * 1024),  # a lone percent run: left as it is, one pass
        b"x=" + b"%41" * (40 * 1024),
        b"x=" + b"=" * (128 * 1024),
    ],
)
def test_hostile_bodies_at_the_size_limit_parse_in_linear_time(body: bytes) -> None:
    started = time.perf_counter()
    try:
        protocol.parse_form(body, FORM)
    except InvalidParameterValue:
        pass
    assert time.perf_counter() - started < 0.5


# -- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidSignatureException(), (403, "SignatureDoesNotMatch")),
        (IncompleteSignatureException("x"), (400, "IncompleteSignature")),
        (UnrecognizedClientException(), (403, "InvalidClientTokenId")),
        (MissingAuthenticationTokenException(), (403, "MissingAuthenticationToken")),
        (ServiceSealedException(), (503, "ServiceUnavailable")),
        (KMSInternalException(), (500, "InternalFailure")),
        (InvalidAction("x"), (400, "InvalidAction")),
    ],
)
def test_errors_take_sts_names(error: Exception, expected: tuple[int, str]) -> None:
    wire = protocol.wire_error(error)
    assert (wire.status, wire.code) == expected
    assert wire.message == str(error)


def test_invalid_action_comes_in_aws_fault_namespace_and_the_rest_in_sts() -> None:
    assert protocol.wire_error(InvalidAction("x")).namespace == "http://webservices.amazon.com/AWSFault/2005-15-09"
    assert protocol.wire_error(UnrecognizedClientException()).namespace == protocol.XML_NAMESPACE
    body = protocol.error_xml(protocol.wire_error(InvalidAction("x")), "r")
    assert body.startswith(b'<ErrorResponse xmlns="http://webservices.amazon.com/AWSFault/2005-15-09">')


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Credential should be scoped to correct service: 'sts'.",
            "Credential should be scoped to correct service: 'sts'. ",
        ),
        ("Credential should be scoped to a valid region.", "Credential should be scoped to a valid region. "),
        (
            "Signature expired: 20260101T000000Z is now earlier than ...",
            "Signature expired: 20260101T000000Z is now earlier than ...",
        ),
    ],
)
def test_scope_messages_end_with_a_space_as_sts_sends_them(message: str, expected: str) -> None:
    assert protocol.wire_error(InvalidSignatureException(message)).message == expected


def test_a_foreign_exception_is_an_internal_failure_without_detail() -> None:
    wire = protocol.wire_error(RuntimeError("secret detail"))
    assert wire == WireError(500, "InternalFailure", KMSInternalException().message, False, protocol.XML_NAMESPACE)


# -- XML ----------------------------------------------------------------------------------------------------


def test_a_result_is_what_botocore_reads_as_get_caller_identity() -> None:
    result = {"Arn": "arn:aws:iam::111122223333:user/alice", "UserId": "AIDAEXAMPLE", "Account": "111122223333"}
    body = protocol.result_xml("GetCallerIdentity", result, "req-1")
    root = ET.fromstring(body)  # noqa: S314 - our own output
    assert root.tag == f"{NS}GetCallerIdentityResponse"
    assert [child.tag for child in root] == [f"{NS}GetCallerIdentityResult", f"{NS}ResponseMetadata"]
    parsed = _parse(200, body)
    assert {k: parsed[k] for k in result} == result
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_values_are_escaped_not_interpreted() -> None:
    hostile = '</Arn><Account>999999999999</Account><!-- & "'
    body = protocol.result_xml("GetCallerIdentity", {"Arn": hostile, "UserId": "u", "Account": "1"}, "r")
    parsed = _parse(200, body)
    assert (parsed["Arn"], parsed["Account"]) == (hostile, "1")


def test_an_error_is_what_botocore_reads_as_sts_error() -> None:
    wire = protocol.wire_error(UnrecognizedClientException())
    body = protocol.error_xml(wire, "req-2")
    parsed = _parse(403, body)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "InvalidClientTokenId",
        "Message": "The security token included in the request is invalid.",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"


def test_a_server_fault_is_typed_receiver_and_an_empty_message_is_left_out() -> None:
    body = protocol.error_xml(WireError(500, "InternalFailure", "", False), "r")
    root = ET.fromstring(body)  # noqa: S314 - our own output
    assert root.findtext(f"{NS}Error/{NS}Type") == "Receiver"
    assert root.find(f"{NS}Error/{NS}Message") is None
