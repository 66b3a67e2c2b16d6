"""Who used which key when: the audit trail, queried for the console as CloudTrail's LookupEvents is.

An admin operation (registry.py): authorised as ``cloudtrail:LookupEvents`` on ``*`` by the caller's identity
policies, recorded in the trail like every call, and confined to the caller's account (a record belongs to
the account that received the call, ``recipientAccountId``). Filters are those of ``openkms audit query``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from openkms import ids
from openkms.context import RequestContext
from openkms.errors import ValidationException
from openkms.operations import authorization, registry
from openkms.operations.registry import Params, Result, admin_operation
from openkms.operations.services import Services
from openkms.storage.audit import AuditFilter, AuditRow
from openkms.storage.ports import Transaction

EVENT_SOURCE = "cloudtrail.amazonaws.com"
ACTION = "cloudtrail:LookupEvents"
DEFAULT_RESULTS = 25
MAX_RESULTS = 200
_SCAN_ROUNDS = 8  # pages read to fill one answer before handing back a token (other accounts' records)
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,127}$")
_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_IP = re.compile(r"^[0-9A-Fa-f:.]{1,45}$")
_KNOWN_FILTERS = frozenset(
    {"KeyId", "Principal", "Operation", "Outcome", "SourceIp", "StartTime", "EndTime", "BeforeSeq", "MaxResults"}
)


@admin_operation("LookupEvents", EVENT_SOURCE)
def lookup_events(svc: Services, ctx: RequestContext, params: Params) -> Result:
    unknown = sorted(set(params) - _KNOWN_FILTERS)
    if unknown:
        raise ValidationException(f"Unknown parameter: {unknown[0]}")
    limit = _int(params, "MaxResults", DEFAULT_RESULTS, 1, MAX_RESULTS) or DEFAULT_RESULTS
    before = _int(params, "BeforeSeq", None, 1, 2**63 - 1)
    with svc.storage.read() as tx:
        authorization.authorize_account(tx, ctx, action=ACTION)
        where = AuditFilter(
            key_id=_key_id(tx, ctx, params.get("KeyId")),
            principal_arn=_principal(ctx, params.get("Principal")),
            event_name=_operation(params.get("Operation")),
            outcome=_outcome(params.get("Outcome")),
            source_ip=_text(params, "SourceIp", _IP, "an IP address"),
            since=_time(params, "StartTime"),
            until=_time(params, "EndTime"),
            before_seq=before,
        )
        found, next_before = _own_records(tx, ctx.principal.account_id, where, limit)
    result: Result = {"Events": [_summary(row) for row in found]}
    if next_before is not None:
        result["NextBeforeSeq"] = next_before
    return result


def _own_records(tx: Transaction, account: str, where: AuditFilter, limit: int) -> tuple[list[AuditRow], int | None]:
    """Up to ``limit`` records of ``account``, newest first, and the seq to continue below (None: no more)."""
    found: list[AuditRow] = []
    cursor = where.before_seq
    for _ in range(_SCAN_ROUNDS):
        page = tx.query_audit(_below(where, cursor), limit + 1)
        for row in page[:limit]:
            if _account_of(row) == account:
                found.append(row)
                if len(found) == limit:
                    return found, row.seq if _more(tx, where, row.seq) else None
        if len(page) <= limit:
            return found, None
        cursor = page[limit - 1].seq
    return found, cursor  # many other accounts' records in a row: the caller pages on


def _below(where: AuditFilter, seq: int | None) -> AuditFilter:
    return AuditFilter(
        key_id=where.key_id,
        principal_arn=where.principal_arn,
        event_name=where.event_name,
        outcome=where.outcome,
        source_ip=where.source_ip,
        since=where.since,
        until=where.until,
        before_seq=seq,
    )


def _more(tx: Transaction, where: AuditFilter, seq: int) -> bool:
    return bool(tx.query_audit(_below(where, seq), 1))


def _account_of(row: AuditRow) -> str:
    if row.principal_arn.startswith("arn:aws:iam::"):
        return row.principal_arn.split(":")[4]
    return str(json.loads(row.event).get("recipientAccountId", ""))


def _summary(row: AuditRow) -> dict[str, Any]:
    event = json.loads(row.event)
    return {
        "Seq": row.seq,
        "EventTime": row.event_time,
        "EventName": row.event_name,
        "EventSource": event.get("eventSource", ""),
        "Username": row.principal_arn or event.get("userIdentity", {}).get("accessKeyId", ""),
        "KeyId": row.key_id,
        "SourceIp": row.source_ip,
        "ErrorCode": row.error_code,
        "RequestId": row.request_id,
        "ReadOnly": bool(event.get("readOnly", True)),
        "CloudTrailEvent": row.event,
    }


# ---- parameters --------------------------------------------------------------------------------------------


def _int(params: Params, name: str, default: int | None, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationException(f"{name} must be a whole number from {low} to {high}.")
    return value


def _time(params: Params, name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**40:
        raise ValidationException(f"{name} must be a time in epoch seconds.")
    return float(value)


def _text(params: Params, name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise ValidationException(f"{name} must be {what}.")
    return value


def _key_id(tx: Transaction, ctx: RequestContext, value: Any) -> str | None:
    """A key id or key ARN as given; an alias through its current target (records name keys, not aliases)."""
    if value is None or value == "":
        return None
    ref = ids.parse_key_reference(value) if isinstance(value, str) else None
    if ref is None:
        raise ValidationException("KeyId must be a key id, key ARN, alias name or alias ARN.")
    if ref.key_id is not None:
        return ref.key_id
    assert ref.alias_name is not None
    alias = tx.get_alias(ref.account or ctx.principal.account_id, ref.region or ctx.region, ref.alias_name)
    if alias is None:
        raise ValidationException(f"Alias {ref.alias_name} does not exist.")
    return alias.target_key_id


def _principal(ctx: RequestContext, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("arn:") and len(value) <= 2048:
        return value
    if isinstance(value, str) and _USER_NAME.match(value):
        return ids.user_arn(ctx.principal.account_id, value)
    raise ValidationException("Principal must be an IAM ARN or a user name.")


def _operation(value: Any) -> str | None:
    if value is None or value == "":
        return None
    known = {name.lower(): name for name in registry.recorded_event_names()}
    found = known.get(value.lower()) if isinstance(value, str) else None
    if found is None:
        raise ValidationException(f"Operation {str(value)[:64]!r} is not an operation of this service.")
    return found


def _outcome(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not (value in ("success", "failure") or _ERROR_CODE.match(value)):
        raise ValidationException("Outcome must be success, failure or an error code.")
    return value
