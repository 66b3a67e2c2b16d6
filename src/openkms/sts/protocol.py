"""The AWS query protocol as STS speaks it: a form-encoded request in, XML out.

botocore's STS model (``data/sts/2011-06-15``) selects ``query`` and nothing else, so that is all this module
speaks: ``POST /`` with ``Action=...&Version=2011-06-15&...`` as ``application/x-www-form-urlencoded``, answered
with ``<{Action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{Action}Result>...`` and
``<ResponseMetadata><RequestId>``, or ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>``.

What AWS does with an odd form is followed as recorded against the real STS endpoint (probes published with
an STS emulator's test suite): a repeated parameter takes its first value, a parameter the action does not
know is ignored, a request without ``Action`` (or whose body is not a form) is redirected to the IAM page,
and ``InvalidAction`` comes in the ``AWSFault`` namespace, the service's own errors in STS's.

The body is parsed once, linearly and bounded: it is already within the server's body limit, ``parse_qsl``
splits on ``&`` and ``=`` and percent-decodes (no backtracking), and ``MAX_FIELDS`` caps the pairs before
any is decoded (AWS takes millions; decoding 60,000 here would hold the event loop for 70 ms).
XML is written with ``xml.etree`` (escaping is the library's, not ours).

Errors keep openkms's taxonomy (errors.py) up to the wire, where :func:`wire_error` gives them STS's names:
the SigV4 verifier's ``InvalidSignatureException`` is STS's ``SignatureDoesNotMatch`` (403), an unknown
access key ``InvalidClientTokenId`` (403), ``IncompleteSignatureException`` ``IncompleteSignature``.
"""

from __future__ import annotations

import logging
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import NamedTuple

from openkms.errors import ClientError, KMSError, KMSInternalException

log = logging.getLogger("openkms.sts")

API_VERSION = "2011-06-15"
XML_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
FAULT_NAMESPACE = "http://webservices.amazon.com/AWSFault/2005-15-09"  # AWS's front's errors, not STS's own
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
XML_CONTENT_TYPE = "text/xml"
# GetCallerIdentity sends two fields; AssumeRole with 50 session tags and 10 policy ARNs about 130.
MAX_FIELDS = 1000
NO_VERSION = "NO_VERSION_SPECIFIED"  # what AWS prints for a request without Version
# Where AWS sends a request that names no Action (302, empty body).
NO_ACTION_LOCATION = "https://aws.amazon.com/iam"


class InvalidAction(ClientError):
    """An Action this API version does not have (AWS dispatches on the pair Action, Version)."""

    code = "InvalidAction"


class MissingAction(ClientError):
    """No Action: AWS answers with a redirect (:data:`NO_ACTION_LOCATION`); the trail records it by this code."""

    code = "MissingAction"
    status = 302
    default_message = "Missing Action"


class InvalidParameterValue(ClientError):
    code = "InvalidParameterValue"


class Form(NamedTuple):
    """A parsed request: the ``Action``, the ``Version`` (None if absent) and every other parameter."""

    action: str | None
    version: str | None
    params: dict[str, str]


def media_type(content_type: str | None) -> str:
    """``application/x-www-form-urlencoded; charset=utf-8`` -> ``application/x-www-form-urlencoded``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_form(body: bytes, content_type: str | None) -> Form:
    """The request's parameters, the first value of each name (as AWS takes them). A body that is not a form
    holds none (AWS reads no Action from it); a form that is not ASCII, decodes to invalid UTF-8 or has more
    than ``MAX_FIELDS`` pairs is refused with InvalidParameterValue."""
    if media_type(content_type) != FORM_CONTENT_TYPE or not body:
        return Form(None, None, {})
    try:
        text = body.decode("ascii")  # a form is percent-encoded ASCII; anything else is not one
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_FIELDS, encoding="utf-8", errors="strict"
        )
    except UnicodeError:
        raise InvalidParameterValue("The request body is not a valid URL-encoded form.") from None
    except ValueError:  # parse_qsl's "Max number of fields exceeded"
        raise InvalidParameterValue(f"The request has more than {MAX_FIELDS} parameters.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    action = params.pop("Action", None)
    version = params.pop("Version", None)
    return Form(action, version, params)


class WireError(NamedTuple):
    """An error as STS sends it."""

    status: int
    code: str
    message: str
    sender_fault: bool
    namespace: str = XML_NAMESPACE


class STSError(KMSError):
    """An error already under STS's name: what the answer and the call's audit record both show."""

    def __init__(self, wire: WireError) -> None:
        self.code = wire.code
        self.status = wire.status
        self.sender_fault = wire.sender_fault
        self.namespace = wire.namespace
        super().__init__(wire.message)


# openkms's code -> (STS's code, HTTP status), where the two differ.
_STS_NAMES: Mapping[str, tuple[str, int]] = {
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "ServiceUnavailableException": ("ServiceUnavailable", 503),
    "KMSInternalException": ("InternalFailure", 500),
}


_SCOPE_PROBLEM = "Credential should be scoped"
_FAULT_CODES = frozenset({InvalidAction.code})


def wire_error(exc: BaseException) -> WireError:
    """``exc`` under STS's name; anything not an openkms error is an internal failure, logged without detail."""
    if isinstance(exc, STSError):  # named already
        return WireError(exc.status, exc.code, exc.message, exc.sender_fault, exc.namespace)
    if not isinstance(exc, KMSError):
        log.error("internal error (%s) in an STS request", type(exc).__name__, exc_info=exc)
        exc = KMSInternalException()
    code, status = _STS_NAMES.get(exc.code, (exc.code, exc.status))
    message = exc.message
    if code == "SignatureDoesNotMatch" and message.startswith(_SCOPE_PROBLEM):
        message += " "  # STS ends each scope sentence with a space: "...correct service: 'sts'. "
    namespace = FAULT_NAMESPACE if code in _FAULT_CODES else XML_NAMESPACE
    return WireError(status, code, message, exc.sender_fault, namespace)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _serialise(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return data


def result_xml(action: str, result: Mapping[str, str], request_id: str) -> bytes:
    """``<{action}Response>`` with the result's members in ``<{action}Result>``, then the request id."""
    root = ET.Element(f"{action}Response", {"xmlns": XML_NAMESPACE})
    wrapper = ET.SubElement(root, f"{action}Result")
    for name, value in result.items():
        _text(wrapper, name, value)
    _text(ET.SubElement(root, "ResponseMetadata"), "RequestId", request_id)
    return _serialise(root)


def error_xml(error: WireError, request_id: str) -> bytes:
    """STS's error document: Type (Sender or Receiver), Code, Message, and the request id beside Error."""
    root = ET.Element("ErrorResponse", {"xmlns": error.namespace})
    detail = ET.SubElement(root, "Error")
    _text(detail, "Type", "Sender" if error.sender_fault else "Receiver")
    _text(detail, "Code", error.code)
    if error.message:
        _text(detail, "Message", error.message)
    _text(root, "RequestId", request_id)
    return _serialise(root)
