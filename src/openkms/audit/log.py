"""Appending records to the trail inside a transaction: chain, insert, move the head, count usage.

Every appender (the group-commit writer, a state-changing request's own transaction, a background job)
goes through :func:`append`, which locks the chain's head row first: on PostgreSQL that orders the writers
of every node; on SQLite ``BEGIN IMMEDIATE`` already did.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from openkms.audit import chain
from openkms.audit.events import AuditEvent
from openkms.storage.audit import AuditHead, AuditRow
from openkms.storage.ports import Transaction


def utc_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def append(tx: Transaction, events: Sequence[AuditEvent]) -> AuditHead:
    """Chain ``events`` after the current head and write them in ``tx``; returns the new head."""
    if not events:
        return tx.audit_head()
    head = tx.audit_head()
    seq, previous = head.seq, head.hash
    rows: list[AuditRow] = []
    usage: Counter[tuple[str, str, str]] = Counter()
    for event in events:
        seq += 1
        text = chain.canonical_json(event.event)
        previous = chain.link(previous, seq, text)
        rows.append(
            AuditRow(
                seq=seq,
                event_time=event.event_time,
                event_name=event.event_name,
                request_id=event.request_id,
                principal_arn=event.principal_arn,
                key_id=event.key_id,
                other_key_id=event.other_key_id,
                source_ip=event.source_ip,
                error_code=event.error_code,
                event=text,
                hash=previous,
            )
        )
        if event.usage is not None:
            usage[(event.usage[0], utc_day(event.event_time), event.usage[1])] += 1
    new_head = AuditHead(seq, previous, head.started_at or events[0].event_time)
    tx.append_audit(rows, new_head)
    if usage:
        tx.add_key_usage(usage)
    return new_head
