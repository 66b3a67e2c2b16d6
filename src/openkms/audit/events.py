"""From one API call to one audit record in CloudTrail's event shape (docs/audit.md lists the fields).

What may be recorded is decided by botocore's model, not by a list kept here: a request or response member
is left out if its shape is ``sensitive`` (plaintexts, secrets) or a ``blob`` (ciphertexts, signatures, MACs,
public keys, key material), at any depth. Error messages are our own and never carry request data
(errors.py). Member names become CloudTrail's lower camel case (``KeyId`` -> ``keyId``).
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openkms import apimodel as model
from openkms import ids, opfacts
from openkms.context import AuditNote, Principal, ServiceAction

EVENT_VERSION = "1.08"
EVENT_SOURCE = "kms.amazonaws.com"
SIGNIN_SOURCE = "signin.amazonaws.com"  # the console's sign-in, as CloudTrail names AWS's (ConsoleLogin)
KEY_RESOURCE_TYPE = "AWS::KMS::Key"

# Operations that change state (CloudTrail's readOnly=false), declared with each operation's other facts in
# openkms/opfacts.py; everything else only reads or computes.
MUTATING = opfacts.MUTATING

# Members AWS records with their default when the caller left them out (docs/tests.md A-1: Decrypt records
# carry the algorithm used).
_DEFAULTED = {
    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
}

_ACCESS_KEY_IN_HEADER = re.compile(r"Credential=([A-Z0-9]{16,128})/")


@dataclass(slots=True)
class Call:
    """The facts of one request the server gathered, however far it got."""

    request_id: str
    time: float
    source_ip: str
    user_agent: str
    region: str
    operation: str | None = None  # None until X-Amz-Target named a known operation
    principal: Principal | None = None  # None until the signature verified
    claimed_access_key_id: str | None = None  # from the Authorization header, for unauthenticated calls
    params: Mapping[str, Any] | None = None  # the validated request; None if it never validated
    note: AuditNote = field(default_factory=AuditNote)
    # Another service's API the console calls (cloudtrail LookupEvents, ce GetCostAndUsage: operations/
    # registry.py admin operations): its parameters are recorded as given, they hold no secrets.
    event_source: str = EVENT_SOURCE


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """A record before it is chained: the event and the indexed fields copied from it."""

    event: dict[str, Any]
    event_time: float
    event_name: str
    request_id: str
    principal_arn: str
    key_id: str | None
    other_key_id: str | None
    source_ip: str
    error_code: str | None
    usage_family: str | None  # pricing class of a call on a key (audit/usage.py), None if it names none


def claimed_access_key(authorization_header: str | None) -> str | None:
    """The access key id an unauthenticated request claims (an identifier, never a secret)."""
    if not authorization_header:
        return None
    found = _ACCESS_KEY_IN_HEADER.search(authorization_header[:2048])
    return found.group(1) if found else None


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _recordable(shape_name: str) -> bool:
    shape = model.shape(shape_name)
    return not shape.get("sensitive", False) and shape.get("type") != "blob"


@functools.cache
def _members(shape_name: str) -> Mapping[str, tuple[str, str] | None]:
    """Member -> (lower camel name, shape) for a structure, None for members never recorded."""
    members = model.shape(shape_name).get("members", {})
    return {
        name: ((lower_camel(name), ref["shape"]) if _recordable(ref["shape"]) else None)
        for name, ref in members.items()
    }


@functools.cache
def _kind(shape_name: str) -> str:
    return str(model.shape(shape_name).get("type"))


def redact(shape_name: str, value: Any) -> Any:
    """``value`` (of model shape ``shape_name``) with what must not be recorded removed, names in lower camel."""
    kind = _kind(shape_name)
    if kind == "structure" and isinstance(value, Mapping):
        members = _members(shape_name)
        out: dict[str, Any] = {}
        for name, item in value.items():
            plan = members.get(name)
            if plan is not None:
                out[plan[0]] = redact(plan[1], item)
        return out
    if kind == "list" and isinstance(value, list):
        member = model.shape(shape_name)["member"]["shape"]
        return [redact(member, item) for item in value] if _recordable(member) else []
    if kind == "map" and isinstance(value, Mapping):
        return dict(value) if _recordable(model.shape(shape_name)["value"]["shape"]) else {}
    if kind == "timestamp" and isinstance(value, (int, float)):
        return iso_time(float(value))
    return value


@functools.cache
def _input_members(operation: str) -> frozenset[str]:
    name = model.input_shape(operation)
    return frozenset() if name is None else frozenset(model.shape(name).get("members", {}))


def request_parameters(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    shape_name = model.input_shape(operation)
    if shape_name is None:
        return {}
    recorded: dict[str, Any] = redact(shape_name, params)
    for member, default in _DEFAULTED.items():
        if member in _input_members(operation) and member not in params:
            recorded[lower_camel(member)] = default
    return recorded


def _request_parameters(call: Call) -> dict[str, Any] | None:
    if call.operation is None or call.params is None:
        return None
    if call.event_source != EVENT_SOURCE:
        return dict(call.params)
    return request_parameters(call.operation, call.params)


def response_elements(operation: str, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """What AWS logs of a response: nothing for reads and cryptography, the redacted output for changes."""
    if operation not in MUTATING:
        return None
    shape_name = model.output_shape(operation)
    if shape_name is None or not result:
        return None
    recorded: dict[str, Any] = redact(shape_name, result)
    return recorded or None


def iso_time(epoch: float) -> str:
    return _iso_second(int(epoch))


@functools.lru_cache(maxsize=8)
def _iso_second(second: int) -> str:  # many records share a second
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def usage_family(operation: str, key_spec: str) -> str:
    """The request class AWS prices separately (docs/audit.md, "Usage counts")."""
    priced_apart = opfacts.of(operation).usage_family  # data key pairs, whatever the key
    if priced_apart is not None:
        return priced_apart
    if key_spec == "SYMMETRIC_DEFAULT" or key_spec.startswith("HMAC_"):
        return "symmetric"
    if key_spec == "RSA_2048":
        return "rsa_2048"
    return "asymmetric"


def _user_identity(call: Call) -> dict[str, Any]:
    principal = call.principal
    if principal is None:
        identity: dict[str, Any] = {"type": "Unknown"}
        if call.claimed_access_key_id:
            identity["accessKeyId"] = call.claimed_access_key_id
        return identity
    return _known_identity(principal)


@functools.lru_cache(maxsize=1024)
def _known_identity(principal: Principal) -> dict[str, Any]:  # shared: serialised, never mutated
    return {
        "type": "IAMUser",
        "principalId": principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
        "userName": principal.user_name,
    }


def _key_id_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]  # key ARNs end in key/<id>


def build(
    call: Call,
    error_code: str | None,
    error_message: str | None,
    result: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """The record of ``call``, which succeeded if ``error_code`` is None."""
    operation = call.operation
    event_name = operation if operation is not None else "Unknown"
    principal = call.principal
    account = principal.account_id if principal is not None else ""
    resources = call.note.resources
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": _user_identity(call),
        "eventTime": iso_time(call.time),
        "eventSource": call.event_source,
        "eventName": event_name,
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": _request_parameters(call),
        "responseElements": (
            response_elements(operation, call.note.result or result or {})
            if operation is not None and call.event_source == EVENT_SOURCE
            else None
        ),
        "requestID": call.request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": event_name not in MUTATING,
        "resources": [{"accountId": arn.split(":")[4], "type": KEY_RESOURCE_TYPE, "ARN": arn} for arn, _ in resources],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account or (resources[0][0].split(":")[4] if resources else ""),
        "eventCategory": "Management",
    }
    if error_code is not None:
        event["errorCode"] = error_code
        if error_message:
            event["errorMessage"] = error_message
    if call.note.key_material_id is not None:
        event["additionalEventData"] = {"keyMaterialId": call.note.key_material_id}
    key_id = _key_id_of(resources[0][0]) if resources else None
    return AuditEvent(
        event=event,
        event_time=call.time,
        event_name=event_name,
        request_id=call.request_id,
        principal_arn=principal.arn if principal is not None else "",
        key_id=key_id,
        other_key_id=_key_id_of(resources[1][0]) if len(resources) > 1 else None,
        source_ip=call.source_ip,
        error_code=error_code,
        usage_family=usage_family(event_name, resources[0][1]) if key_id is not None else None,
    )


def console_login(call: Call, succeeded: bool) -> AuditEvent:
    """A console sign-in, as CloudTrail records AWS's: ``ConsoleLogin`` from ``signin.amazonaws.com`` with
    ``responseElements.ConsoleLogin`` Success or Failure. The secret typed in is never part of it."""
    account = call.principal.account_id if call.principal is not None else ""
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": _user_identity(call),
        "eventTime": iso_time(call.time),
        "eventSource": SIGNIN_SOURCE,
        "eventName": "ConsoleLogin",
        "awsRegion": call.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if succeeded else "Failure"},
        "additionalEventData": {"LoginTo": "/console", "MFAUsed": "No"},
        "requestID": call.request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsConsoleSignIn",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    error_code = None if succeeded else "UnrecognizedClientException"
    if not succeeded:  # CloudTrail has only the message; the code makes --outcome failure find it
        event["errorCode"] = error_code
        event["errorMessage"] = "Failed authentication"
    return AuditEvent(
        event=event,
        event_time=call.time,
        event_name="ConsoleLogin",
        request_id=call.request_id,
        principal_arn=call.principal.arn if call.principal is not None else "",
        key_id=None,
        other_key_id=None,
        source_ip=call.source_ip,
        error_code=error_code,
        usage_family=None,
    )


def service_event(action: ServiceAction) -> AuditEvent:
    """A change the service made by itself (automatic rotation, deletion after the waiting period, expiry of
    imported material), in CloudTrail's shape for AWS service events."""
    account = action.key_arn.split(":")[4]
    request_id = ids.new_request_id(action.at)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account, "invokedBy": EVENT_SOURCE},
        "eventTime": iso_time(action.at),
        "eventSource": EVENT_SOURCE,
        "eventName": action.event_name,
        "awsRegion": action.key_arn.split(":")[3],
        "sourceIPAddress": EVENT_SOURCE,
        "userAgent": EVENT_SOURCE,
        "requestParameters": None,
        "responseElements": None,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [{"accountId": account, "type": KEY_RESOURCE_TYPE, "ARN": action.key_arn}],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "serviceEventDetails": dict(action.details),
        "eventCategory": "Management",
    }
    return AuditEvent(
        event=event,
        event_time=action.at,
        event_name=action.event_name,
        request_id=request_id,
        principal_arn="",
        key_id=_key_id_of(action.key_arn),
        other_key_id=None,
        source_ip=EVENT_SOURCE,
        error_code=None,
        usage_family=None,
    )
