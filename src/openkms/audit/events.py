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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openkms import apimodel as model
from openkms import ids, opfacts
from openkms.audit.chain import canonical_json
from openkms.context import ROOT, AuditNote, Principal, ServiceAction
from openkms.eventnames import IAM_EVENT_NAMES
from openkms.storage.audit import AuditRecord

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


def envelope(
    *,
    user_identity: Mapping[str, Any],
    at: float,
    source: str,
    name: str,
    region: str,
    source_ip: str,
    user_agent: str,
    request_id: str,
    read_only: bool,
    event_type: str,
    recipient_account_id: str,
    request_parameters: Mapping[str, Any] | None = None,
    response_elements: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields every CloudTrail event has, in one place for every kind of record openkms writes (API calls,
    console sign-ins, service events, ``openkms iam`` changes, unseal attempts, summaries); each builder adds
    its own (``resources``, ``errorCode``, ``serviceEventDetails``, ...) and hands the event to :func:`finish`."""
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity,
        "eventTime": iso_time(at),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request_parameters,
        "responseElements": response_elements,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": event_type,
        "managementEvent": True,
        "recipientAccountId": recipient_account_id,
        "eventCategory": "Management",
    }


def finish(event: Mapping[str, Any], at: float, usage_family: str | None = None) -> AuditRecord:
    """The record of ``event``: its canonical text, made once here, and the indexed fields copied from the
    event itself (so an index can never disagree with the event it indexes; audit verify checks it)."""
    resources: Sequence[Mapping[str, Any]] = event.get("resources") or ()
    return AuditRecord(
        event_time=at,
        event_name=event["eventName"],
        request_id=event["requestID"],
        principal_arn=event["userIdentity"].get("arn", ""),
        key_id=_key_id_of(resources[0]["ARN"]) if resources else None,
        other_key_id=_key_id_of(resources[1]["ARN"]) if len(resources) > 1 else None,
        source_ip=event["sourceIPAddress"],
        error_code=event.get("errorCode"),
        usage_family=usage_family,
        event=canonical_json(event),
    )


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
    if principal.kind == ROOT:  # the account itself, at the command line: userName is the OS user
        return {
            "type": "Root",
            "principalId": principal.account_id,
            "arn": principal.arn,
            "accountId": principal.account_id,
            "userName": principal.user_name,
        }
    return {
        "type": "IAMUser",
        "principalId": principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
        "userName": principal.user_name,
    }


def _response_elements(call: Call, result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A KMS call's from its result (redacted by the model); another service's from the note alone, never
    from the result (CreateAccessKey's carries the secret the command line prints once)."""
    if call.operation is None:
        return None
    if call.event_source != EVENT_SOURCE:
        return dict(call.note.result) if call.note.result is not None else None
    return response_elements(call.operation, call.note.result or result or {})


def _key_id_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]  # key ARNs end in key/<id>


def build(
    call: Call,
    error_code: str | None,
    error_message: str | None,
    result: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """The record of ``call``, which succeeded if ``error_code`` is None."""
    operation = call.operation
    event_name = operation if operation is not None else "Unknown"
    principal = call.principal
    account = principal.account_id if principal is not None else ""
    resources = call.note.resources
    event = envelope(
        user_identity=_user_identity(call),
        at=call.time,
        source=call.event_source,
        name=event_name,
        region=call.region,
        source_ip=call.source_ip,
        user_agent=call.user_agent,
        request_id=call.request_id,
        read_only=event_name not in MUTATING and event_name not in IAM_EVENT_NAMES,
        event_type="AwsApiCall",
        recipient_account_id=account or (resources[0][0].split(":")[4] if resources else ""),
        request_parameters=_request_parameters(call),
        response_elements=_response_elements(call, result),
    )
    event["resources"] = [
        {"accountId": arn.split(":")[4], "type": KEY_RESOURCE_TYPE, "ARN": arn} for arn, _ in resources
    ]
    if error_code is not None:
        event["errorCode"] = error_code
        if error_message:
            event["errorMessage"] = error_message
    if call.note.key_material_id is not None:
        event["additionalEventData"] = {"keyMaterialId": call.note.key_material_id}
    family = usage_family(event_name, resources[0][1]) if resources else None
    return finish(event, call.time, family)


def console_login(call: Call, succeeded: bool) -> AuditRecord:
    """A console sign-in, as CloudTrail records AWS's: ``ConsoleLogin`` from ``signin.amazonaws.com`` with
    ``responseElements.ConsoleLogin`` Success or Failure. The secret typed in is never part of it."""
    event = envelope(
        user_identity=_user_identity(call),
        at=call.time,
        source=SIGNIN_SOURCE,
        name="ConsoleLogin",
        region=call.region,
        source_ip=call.source_ip,
        user_agent=call.user_agent,
        request_id=call.request_id,
        read_only=False,
        event_type="AwsConsoleSignIn",
        recipient_account_id=call.principal.account_id if call.principal is not None else "",
        response_elements={"ConsoleLogin": "Success" if succeeded else "Failure"},
    )
    event["additionalEventData"] = {"LoginTo": "/console", "MFAUsed": "No"}
    if not succeeded:  # CloudTrail has only the message; the code makes --outcome failure find it
        event["errorCode"] = "UnrecognizedClientException"
        event["errorMessage"] = "Failed authentication"
    return finish(event, call.time)


def service_event(action: ServiceAction) -> AuditRecord:
    """A change the service made by itself (automatic rotation, deletion after the waiting period, expiry of
    imported material), in CloudTrail's shape for AWS service events."""
    account = action.key_arn.split(":")[4]
    event = envelope(
        user_identity={"accountId": account, "invokedBy": EVENT_SOURCE},
        at=action.at,
        source=EVENT_SOURCE,
        name=action.event_name,
        region=action.key_arn.split(":")[3],
        source_ip=EVENT_SOURCE,
        user_agent=EVENT_SOURCE,
        request_id=ids.new_request_id(action.at),
        read_only=False,
        event_type="AwsServiceEvent",
        recipient_account_id=account,
    )
    event["resources"] = [{"accountId": account, "type": KEY_RESOURCE_TYPE, "ARN": action.key_arn}]
    event["serviceEventDetails"] = dict(action.details)
    return finish(event, action.at)
