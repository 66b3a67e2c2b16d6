"""The audit part of the storage port: rows of the trail, digests, signing keys and usage counters.

Kept apart from ``ports.py`` because it is one concern with its own tables (migration 0003); the
:class:`~openkms.storage.ports.Transaction` port includes :class:`AuditTransaction`.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record, the one type every writer, the chain and the storage share (its fields are listed
    once, here). ``event`` is the CloudTrail event as canonical JSON, made once when the record is built
    (audit/events.py); the other fields are indexed copies of it, taken from the event, so they cannot disagree."""

    event_time: float
    event_name: str
    request_id: str
    principal_arn: str
    key_id: str | None
    other_key_id: str | None
    source_ip: str
    error_code: str | None
    usage_family: str | None  # pricing class (not part of the event; audit/usage.py rolls it up)
    event: str


RECORD_FIELDS = tuple(f.name for f in fields(AuditRecord))
_RECORD_VALUES = operator.attrgetter(*RECORD_FIELDS)  # one C call per record: every request's record takes it


def record_values(record: AuditRecord) -> tuple[Any, ...]:
    """The record as plain values in :data:`RECORD_FIELDS` order (to cross a process boundary with marshal);
    :func:`record_from_values` is its inverse."""
    values: tuple[Any, ...] = _RECORD_VALUES(record)
    return values


def record_from_values(values: Sequence[Any]) -> AuditRecord:
    return AuditRecord(*values)


@dataclass(frozen=True, slots=True)
class AuditRow(AuditRecord):
    """A record as stored: the record's own fields, then its place in the chain and its link hash (the storage
    selects and inserts columns in this dataclass's field order)."""

    seq: int
    hash: str

    @classmethod
    def chained(cls, record: AuditRecord, seq: int, hash_: str) -> AuditRow:
        return cls(**{name: getattr(record, name) for name in RECORD_FIELDS}, seq=seq, hash=hash_)


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The chain's end: the last record's seq and hash (or where pruning left it) and when the trail began."""

    seq: int
    hash: str
    started_at: float  # 0 until the first record


@dataclass(frozen=True, slots=True)
class DigestRow:
    digest_seq: int
    from_seq: int
    to_seq: int
    period_end: float
    body: str  # canonical JSON of the signed fields (audit/digests.py)
    signature: str  # base64


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    key_id: str
    algorithm: str
    public_key: bytes  # DER SubjectPublicKeyInfo
    wrapped_private_key: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``openkms audit query``: every given field must match; ``None`` means any."""

    key_id: str | None = None  # matches either resource of the record (ReEncrypt names two keys)
    principal_arn: str | None = None
    event_name: str | None = None
    outcome: str | None = None  # "success", "failure", or an error code
    source_ip: str | None = None
    since: float | None = None  # event_time >= since
    until: float | None = None  # event_time < until
    before_seq: int | None = None  # paging: only records older than this seq


@dataclass(frozen=True, slots=True)
class UsageRow:
    key_id: str
    day: str  # YYYY-MM-DD, UTC
    family: str
    requests: int


class AuditTransaction(Protocol):
    def audit_head(self) -> AuditHead:
        """The chain's head; in a write transaction the row stays locked until commit (orders all appenders)."""
        ...

    def append_audit(self, rows: Sequence[AuditRow], started_at: float | None) -> None:
        """Insert ``rows`` (already chained after the locked head); ``started_at`` records when the trail began
        (only with the very first records)."""
        ...

    def usage_watermark(self) -> int:
        """The last seq already counted in key_usage_daily."""
        ...

    def usage_after(self, after_seq: int, limit: int) -> list[tuple[int, str, float, str]]:
        """(seq, key id, event time, family) of records after ``after_seq`` that count, in seq order, and at most
        ``limit`` records looked at."""
        ...

    def add_key_usage(self, counts: Mapping[tuple[str, str, str], int], through_seq: int) -> None:
        """Add request counts per (key id, day, family) and move the watermark to ``through_seq``."""
        ...

    def query_audit(self, where: AuditFilter, limit: int) -> list[AuditRow]:
        """Matching records, newest first (highest seq first)."""
        ...

    def audit_range(self, after_seq: int, limit: int) -> list[AuditRow]:
        """Records with seq > ``after_seq`` in seq order (verification and export walk the chain this way)."""
        ...

    def audit_by_request(self, request_id: str) -> list[AuditRow]: ...
    def first_audit_seq(self) -> int | None: ...
    def prune_audit(self, through_seq: int) -> int:
        """Delete records with seq <= ``through_seq`` (the head remembers where the chain continues if that was
        all of them); returns how many."""
        ...

    def last_key_use(self, key_id: str, event_names: Sequence[str]) -> AuditRow | None:
        """The newest successful record of ``key_id`` (either resource) among ``event_names``."""
        ...

    def insert_digest(self, digest: DigestRow) -> None: ...
    def last_digest(self) -> DigestRow | None:
        """In a write transaction, call after :meth:`audit_head`, whose lock serialises digest writers."""
        ...

    def list_digests(self, after_digest_seq: int, limit: int) -> list[DigestRow]: ...
    def insert_signing_key(self, key: SigningKeyRow) -> None: ...
    def get_signing_key(self, key_id: str) -> SigningKeyRow | None: ...
    def list_signing_keys(self) -> list[SigningKeyRow]: ...
    def list_key_usage(self, key_id: str | None, since_day: str | None) -> list[UsageRow]:
        """Ordered by key id, day and family."""
        ...
