"""Appending records to the trail inside a transaction: chain and insert.

Every appender (the group-commit writer, a state-changing request's own transaction, a background job)
goes through :func:`append`, which locks the chain's head row first: on PostgreSQL that orders the writers
of every node; on SQLite ``BEGIN IMMEDIATE`` already did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from openkms.audit import chain
from openkms.audit.events import AuditEvent
from openkms.storage.audit import AuditHead, AuditRow
from openkms.storage.ports import Transaction


class Prepared(NamedTuple):
    """A record ready to chain: the event as canonical text and its indexed copies (plain values, so it can
    cross a process boundary with :mod:`marshal`)."""

    event_time: float
    event_name: str
    request_id: str
    principal_arn: str
    key_id: str | None
    other_key_id: str | None
    source_ip: str
    error_code: str | None
    usage_family: str | None
    text: str


def prepare(event: AuditEvent) -> Prepared:
    return Prepared(
        event.event_time,
        event.event_name,
        event.request_id,
        event.principal_arn,
        event.key_id,
        event.other_key_id,
        event.source_ip,
        event.error_code,
        event.usage_family,
        chain.canonical_json(event.event),
    )


def append(tx: Transaction, events: Sequence[AuditEvent]) -> AuditHead:
    """Chain ``events`` after the current head and write them in ``tx``; returns the new head."""
    return append_prepared(tx, [prepare(e) for e in events])


def append_prepared(tx: Transaction, records: Sequence[Prepared]) -> AuditHead:
    head = tx.audit_head()
    if not records:
        return head
    seq, previous = head.seq, head.hash
    rows: list[AuditRow] = []
    for record in records:
        seq += 1
        previous = chain.link(previous, seq, record.text)
        rows.append(AuditRow(seq, *record[:-1], record.text, previous))
    started_at = None if head.started_at else records[0].event_time
    tx.append_audit(rows, started_at)
    return AuditHead(seq, previous, head.started_at or records[0].event_time)
