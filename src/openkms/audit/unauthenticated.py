"""A budget for records of unauthenticated calls: recorded one by one up to a rate, counted beyond it.

Every call is recorded, but a call nobody signed costs its sender nothing: one client sending garbage wrote
about 1.7 KB of durable record per request, some 4 GiB an hour, until the full disk failed every call. So
records of calls with no verified principal (bad signature, unknown key, oversized body, unseal attempts)
draw on two token buckets per worker: one per source (an IPv4 address or an IPv6 /64) and one for all
sources together. A record that finds either bucket empty is not written; it is counted in its source's
summary, and each summary becomes one record (``UnauthenticatedRequestsSummary``, audit/server_events.py)
at the next :meth:`UnauthenticatedBudget.drain`, with the count, the time span, the error codes and
operations seen, and the first access key ids claimed. So an investigation still sees who sent how much and
when, and the trail grows by at most a few records per source per minute.

Authenticated calls never come here: each is recorded, whatever the rate.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from openkms.audit import server_events
from openkms.storage.audit import AuditRecord

PER_SOURCE_BURST = 20
PER_SOURCE_PER_SECOND = 0.5
TOTAL_BURST = 200
TOTAL_PER_SECOND = 20.0
MAX_TRACKED_SOURCES = 4096  # beyond it, buckets are forgotten and summaries go to the "*" source
MAX_DISTINCT_VALUES = 32  # per summary: error codes, operations, claimed access key ids
OVERFLOW_SOURCE = "*"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float

    def take(self, now: float, burst: float, rate: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(slots=True)
class _Summary:
    first: float
    last: float
    count: int = 0
    by_error: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    claimed_keys: list[str] = field(default_factory=list)

    def add(self, record: AuditRecord, claimed: str | None) -> None:
        self.count += 1
        self.last = record.event_time
        _count_bounded(self.by_error, record.error_code or "None")
        _count_bounded(self.by_operation, record.event_name)
        if claimed and claimed not in self.claimed_keys and len(self.claimed_keys) < MAX_DISTINCT_VALUES:
            self.claimed_keys.append(claimed)


def _count_bounded(counter: Counter[str], value: str) -> None:
    if value in counter or len(counter) < MAX_DISTINCT_VALUES:
        counter[value] += 1
    else:
        counter["(other)"] += 1


def source_of(ip: str) -> str:
    """The unit a budget is kept for: the address, or its /64 for IPv6 (one host usually holds a whole /64)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return OVERFLOW_SOURCE
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class UnauthenticatedBudget:
    """Per worker, on its event loop only (no locks): decides record or count, and drains the counts."""

    def __init__(self, region: str) -> None:
        self._region = region
        self._total = _Bucket(TOTAL_BURST, 0.0)
        self._sources: dict[str, _Bucket] = {}
        self._summaries: dict[str, _Summary] = {}

    def admit(self, record: AuditRecord, now: float, claimed_access_key_id: str | None = None) -> bool:
        """True: write ``record``. False: it was counted into a summary instead (with the access key id the
        call claimed, if any)."""
        source = source_of(record.source_ip)
        bucket = self._sources.get(source)
        if bucket is None:
            if len(self._sources) >= MAX_TRACKED_SOURCES:
                self._sources.clear()  # full buckets for all: the total bucket still bounds the rate
            bucket = self._sources[source] = _Bucket(PER_SOURCE_BURST, now)
        if bucket.take(now, PER_SOURCE_BURST, PER_SOURCE_PER_SECOND) and self._total.take(
            now, TOTAL_BURST, TOTAL_PER_SECOND
        ):
            return True
        if source not in self._summaries and len(self._summaries) >= MAX_TRACKED_SOURCES:
            source = OVERFLOW_SOURCE
        summary = self._summaries.get(source)
        if summary is None:
            summary = self._summaries[source] = _Summary(first=record.event_time, last=record.event_time)
        summary.add(record, claimed_access_key_id)
        return False

    def drain(self, now: float) -> list[AuditRecord]:
        """One summary record per source counted since the last drain, and the counts start again."""
        summaries, self._summaries = self._summaries, {}
        return [
            server_events.unauthenticated_summary(
                now,
                source,
                self._region,
                summary.count,
                summary.first,
                summary.last,
                summary.by_error,
                summary.by_operation,
                summary.claimed_keys,
            )
            for source, summary in summaries.items()
        ]
