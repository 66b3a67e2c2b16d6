"""Records of what reaches the server outside the KMS API: unseal attempts, and the unauthenticated calls that
were counted instead of recorded one by one (audit/unauthenticated.py).

Both are in CloudTrail's shape like every other record, under the event source ``openkms`` (no AWS service
has these events). Neither ever holds a passphrase, a body or a header beyond the claimed access key id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkms import ids
from openkms.audit.events import envelope, finish, iso_time
from openkms.eventnames import UNAUTHENTICATED_SUMMARY, UNSEAL
from openkms.storage.audit import AuditRecord

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
) -> AuditRecord:
    event = envelope(
        user_identity={"type": "Unknown"},
        at=at,
        source=EVENT_SOURCE,
        name=name,
        region=region,
        source_ip=source_ip,
        user_agent=user_agent[:1024],
        request_id=ids.new_request_id(at),
        read_only=False,
        event_type=event_type,
        recipient_account_id="",
        response_elements=response,
    )
    if details is not None:
        event["serviceEventDetails"] = details
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    return finish(event, at)


def unseal_attempt(
    at: float, source_ip: str, user_agent: str, region: str, error: tuple[str, str] | None
) -> AuditRecord:
    """One ``POST /unseal``: ``responseElements.Unseal`` is Success or Failure, with the error if it failed."""
    outcome = {"Unseal": "Success" if error is None else "Failure"}
    return _record(UNSEAL, at, source_ip, user_agent, region, error, outcome, None, "AwsApiCall")


def unauthenticated_summary(
    at: float, source: str, region: str, count: int, first: float, last: float, by_error: Mapping[str, int],
    by_operation: Mapping[str, int], claimed_keys: list[str],
) -> AuditRecord:  # fmt: skip
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
