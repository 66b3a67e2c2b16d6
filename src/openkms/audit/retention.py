"""The trail's background work: sign digests, anchor them, roll up usage counts, prune what retention lets go.

:func:`run_once` is one pass; each node's supervisor runs it from a :class:`Maintenance` thread, and each step
is its own transaction that re-checks whether it is due while holding the chain head, so passes on several
nodes (or a pass cut short by kill -9) never sign twice or prune what is still needed.

Pruning removes only whole digest intervals older than the retention period: the last pruned interval's
digest stays and stands for everything before it (its signed head hash is where the remaining chain
continues), so the trail still verifies, and the head remembers the pruned point should every record go.

Anchoring (audit/anchor.py) delivers each digest to the sinks outside the database right after it is
signed, and catches up on any a sink missed. A sealed server runs no pass at all: it touches no storage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from openkms.audit import digests, usage
from openkms.audit.anchor import Anchor
from openkms.storage.ports import Storage

DAY = 86_400.0
_log = logging.getLogger("openkms.audit")


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


class Maintenance:
    """Runs :func:`run_once` every ``period`` seconds in a thread (the supervisor's, one per node)."""

    def __init__(
        self,
        storage: Storage,
        root_key: Callable[[], bytes | None],
        clock: Callable[[], float],
        digest_interval: float,
        retention_days: float | None,
        anchor: Anchor | None = None,
    ) -> None:
        self._storage = storage
        self._anchor = anchor
        self._root_key = root_key
        self._clock = clock
        self._digest_interval = digest_interval
        self._retention_days = retention_days
        self._period = max(0.2, min(60.0, digest_interval / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openkms-audit-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._anchor is not None and not self._thread.is_alive():
            self._anchor.close()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            root = self._root_key()
            if root is None:  # sealed: nothing can be signed yet (a sealed server touches no storage)
                continue
            try:
                run_once(self._storage, root, self._clock(), self._digest_interval, self._retention_days, self._anchor)
            except Exception as exc:  # the next pass retries; requests are not affected
                _log.error("audit maintenance failed (%s); retrying in %.0f s", type(exc).__name__, self._period)
