"""GetKeyLastUsage: the last successful cryptographic use of a key, answered from the audit trail.

AWS's rules (API reference, GetKeyLastUsage): ``KeyId`` is a key id or key ARN, never an alias; the answer
names the newest *successful* record of one of the cryptographic operations AWS tracks (the model's
``KeyLastUsageTrackingOperation`` enum) on the key, as source or destination (ReEncrypt counts for both);
``KeyLastUsage`` is ``{}`` when there is none since ``TrackingStartDate``, which is the later of the key's
creation and the start of what the trail still holds. The call itself is recorded as a read, and a read is
not a use, so asking never changes the answer.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from openkms import apimodel
from openkms.context import RequestContext
from openkms.operations import keyrefs
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.audit import AuditRow
from openkms.storage.ports import Transaction


@functools.cache
def tracked_operations() -> tuple[str, ...]:
    """The operations whose successful calls count as a use (from the model, not retyped here)."""
    return tuple(apimodel.shape("KeyLastUsageTrackingOperation")["enum"])


def _trail_start(tx: Transaction) -> float:
    """When the records the trail still holds begin: its start, or its oldest record once older ones were pruned."""
    head = tx.audit_head()
    first = tx.first_audit_seq()
    if first is None or first <= 1:
        return head.started_at
    oldest = tx.audit_range(first - 1, 1)
    return oldest[0].event_time if oldest else head.started_at


def last_usage_entry(row: AuditRow | None) -> dict[str, Any]:
    if row is None:
        return {}
    event = json.loads(row.event)
    return {
        "Operation": row.event_name,
        "Timestamp": row.event_time,
        "CloudTrailEventId": event.get("eventID"),
        "KmsRequestId": event.get("requestID", row.request_id),
    }


@operation("GetKeyLastUsage")
def get_key_last_usage(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        last = tx.last_key_use(key.key_id, tracked_operations())
        tracking_start = max(key.creation_date, _trail_start(tx))
    return {
        "KeyId": key.arn,
        "KeyLastUsage": last_usage_entry(last),
        "TrackingStartDate": tracking_start,
        "KeyCreationDate": key.creation_date,
    }
