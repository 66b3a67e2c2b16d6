"""Appending records to the trail inside a transaction: chain and insert.

Every appender (the node's audit hub, a state-changing request's own transaction, a background job, an
``openkms iam`` change) goes through :func:`append`, which locks the chain's head row first: on PostgreSQL
that orders the writers of every node; on SQLite ``BEGIN IMMEDIATE`` already did.
"""

from __future__ import annotations

from collections.abc import Sequence

from openkms.audit import chain
from openkms.storage.audit import AuditHead, AuditRecord, AuditRow
from openkms.storage.ports import Transaction


def append(tx: Transaction, records: Sequence[AuditRecord]) -> AuditHead:
    """Chain ``records`` after the current head and write them in ``tx``; returns the new head."""
    head = tx.audit_head()
    if not records:
        return head
    seq, previous = head.seq, head.hash
    rows: list[AuditRow] = []
    for record in records:
        seq += 1
        previous = chain.link(previous, seq, record.event)
        rows.append(AuditRow.chained(record, seq, previous))
    started_at = None if head.started_at else records[0].event_time
    tx.append_audit(rows, started_at)
    return AuditHead(seq, previous, head.started_at or records[0].event_time)
