"""Records of what reaches the server outside the KMS API: unseal attempts, and the unauthenticated calls that
were counted instead of recorded one by one (audit/unauthenticated.py).

Both are in CloudTrail's shape like every other record, under the event source ``openkms`` (no AWS service
has these events). Neither ever holds a passphrase, a body or a header beyond the claimed access key id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from openkms import ids
from openkms.audit.events import EVENT_VERSION, AuditEvent, iso_time
from openkms.eventnames import UNAUTHENTICATED_SUMMARY, UNSEAL

EVENT_SOURCE = "openkms"


def _record(
    name: str,
    at: float,
    source_ip: str,
    user_agent: str,
    region: str,
    error: tuple[str, str] | None,
    response: dict[str, Any] | None,
    details: dict[str, Any] | None,
    event_type: str,
) -> AuditEvent:
    request_id = ids.new_request_id(at)
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"type": "Unknown"},
        "eventTime": iso_time(at),
        "eventSource": EVENT_SOURCE,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent[:1024],
        "requestParameters": None,
        "responseElements": response,
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": event_type,
        "managementEvent": True,
        "recipientAccountId": "",
        "eventCategory": "Management",
    }
    if details is not None:
        event["serviceEventDetails"] = details
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    return AuditEvent(
        event=event,
        event_time=at,
        event_name=name,
        request_id=request_id,
        principal_arn="",
        key_id=None,
        other_key_id=None,
        source_ip=source_ip,
        error_code=error[0] if error is not None else None,
        usage_family=None,
    )


def unseal_attempt(
    at: float, source_ip: str, user_agent: str, region: str, error: tuple[str, str] | None
) -> AuditEvent:
    """One ``POST /unseal``: ``responseElements.Unseal`` is Success or Failure, with the error if it failed."""
    outcome = {"Unseal": "Success" if error is None else "Failure"}
    return _record(UNSEAL, at, source_ip, user_agent, region, error, outcome, None, "AwsApiCall")


def unauthenticated_summary(
    at: float, source: str, region: str, count: int, first: float, last: float, by_error: Mapping[str, int],
    by_operation: Mapping[str, int], claimed_keys: list[str],
) -> AuditEvent:  # fmt: skip
    """``count`` unauthenticated calls from ``source`` (an address, a /64, or ``*`` for the overflow) between
    ``first`` and ``last`` that were not recorded one by one."""
    details = {
        "count": count,
        "firstEventTime": iso_time(first),
        "lastEventTime": iso_time(last),
        "errorCodes": dict(by_error),
        "eventNames": dict(by_operation),
        "claimedAccessKeyIds": claimed_keys,
    }
    error = ("UnauthenticatedRequestsSummarized", f"{count} unauthenticated requests were counted, not recorded.")
    return _record(UNAUTHENTICATED_SUMMARY, at, source, "", region, error, None, details, "AwsServiceEvent")
