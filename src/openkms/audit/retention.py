"""The trail's background work: sign digests, anchor them, roll up usage counts, prune what retention lets go.

:func:`run_once` is one pass: the job ``audit-maintenance`` (jobs/audit_maintenance.py) runs it on one node at a
time, through its lease, every half :func:`period`. Each step is its own transaction that re-checks whether it
is due while holding the chain head, so passes on several nodes (a lease can run out under a stalled worker) or
a pass cut short by kill -9 never sign twice or prune what is still needed.

Pruning removes only whole digest intervals older than the retention period: the last pruned interval's
digest stays and stands for everything before it (its signed head hash is where the remaining chain
continues), so the trail still verifies, and the head remembers the pruned point should every record go.

Anchoring (audit/anchor.py) is the one part that belongs to a node: its sinks are that node's directory and
syslog. Every node runs :class:`NodeAnchor` (the job ``audit-anchor``, in the node's first worker) every
:func:`period`, which delivers each digest, whichever node signed it, and catches up on any a sink missed.
A sealed server runs no job at all: it touches no storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.audit import digests, usage
from openkms.audit.anchor import Anchor
from openkms.storage.audit import DigestRow
from openkms.storage.ports import Storage

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Pass:
    digest_seq: int | None  # the digest signed in this pass, if one was due
    anchored: int  # deliveries to the anchor's sinks
    usage_records: int  # records counted into key_usage_daily
    pruned: int  # records removed by retention


def prune(storage: Storage, now: float, retention_days: float) -> int:
    """Delete records of digest intervals that ended more than ``retention_days`` ago; returns how many."""
    cutoff = now - retention_days * DAY
    with storage.transaction() as tx:
        tx.audit_head()  # holds appenders and digest writers while the boundary is chosen
        through = 0
        after = 0
        while True:
            page = tx.list_digests(after, 1000)
            for digest in page:
                if digest.period_end <= cutoff:
                    through = max(through, digest.to_seq)
            if len(page) < 1000:
                break
            after = page[-1].digest_seq
        if through == 0 or tx.usage_watermark() < through:
            return 0  # nothing old enough, or not yet counted (usage would lose it)
        return tx.prune_audit(through)


def run_once(
    storage: Storage,
    root_key: bytes,
    now: float,
    digest_interval: float,
    retention_days: float | None,
    anchor: Anchor | None = None,
) -> Pass:
    digest = digests.write_digest(storage, root_key, now, digest_interval)
    anchored = anchor.deliver(storage, digest) if anchor is not None else 0
    counted = usage.roll_up(storage)
    pruned = prune(storage, now, retention_days) if retention_days is not None else 0
    return Pass(digest.digest_seq if digest is not None else None, anchored, counted, pruned)


def period(digest_interval: float) -> float:
    """How often the trail is looked after: a quarter of the digest interval, from 0.2 s to a minute, so a
    digest is signed (and anchored) at most that late."""
    return max(0.2, min(60.0, digest_interval / 4))


class NodeAnchor:
    """This node's anchor, fed from the database: every digest any node signed reaches its sinks. The newest
    digest is offered again whenever it changes, even to a sink past its seq, so digests re-signed over a
    rolled-back database meet the anchored ones and the conflict is logged (audit/anchor.py)."""

    def __init__(self, anchor: Anchor) -> None:
        self.anchor = anchor
        self._offered: DigestRow | None = None

    def deliver(self, storage: Storage) -> int:
        with storage.read() as tx:
            newest = tx.last_digest()
        fresh = newest if newest is not None and newest != self._offered else None
        self._offered = newest
        return self.anchor.deliver(storage, fresh)
