"""Requests per key, day and pricing family, rolled up from the trail (``openkms usage``).

Counting happens here, off the request path: each roll-up counts the records after a watermark and moves
the watermark in the same transaction, so every record is counted exactly once whatever crashes, and the
counts can always be recomputed from the trail. Holding the chain head while doing so means no record
below the new watermark can still be uncommitted.
"""

from __future__ import annotations

import time
from collections import Counter

from openkms.audit.scope import outside_call
from openkms.storage.ports import Storage

PAGE = 20_000


def utc_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def roll_up(storage: Storage, max_records: int = 1_000_000) -> int:
    """Count records not yet counted (up to ``max_records``); returns how many records were looked at.

    Also run inside a call (the console's usage page): counting is not that call's change, so it runs
    outside the call's audit scope."""
    looked_at = 0
    while looked_at < max_records:
        with outside_call(), storage.transaction() as tx:
            head = tx.audit_head()
            start = tx.usage_watermark()
            through = min(head.seq, start + PAGE)
            if through <= start:
                return looked_at
            counts: Counter[tuple[str, str, str]] = Counter()
            for _, key_id, event_time, family in tx.usage_after(start, through - start):
                counts[(key_id, utc_day(event_time), family)] += 1
            tx.add_key_usage(counts, through)
        looked_at += through - start
    return looked_at
