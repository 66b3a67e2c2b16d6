"""Adaptive polling before sleeping: what the audit hub and a worker waiting for its ack do between messages.

Why poll at all? Waking a thread that sleeps on another core costs an inter-processor interrupt, and on a
virtual machine without guest halt-polling (this project's machines: ``guest_halt_poll_ns = 0``) each one
is a VM exit: measured here, a ``send`` to a sleeping peer takes 55 us instead of 8, and a wake-up round
trip between two processes 85-125 us. A record's trip through the hub needs two of them, which at
concurrency 1 cost a third of the durable trail's overhead (docs/benchmarks.md, "Audit trail").

The window adapts as the kernel's haltpoll governor does: it grows to cover the waits that ended soon after
the poll gave up, and halves after each wait longer than the limit, so a steady stream is caught by
polling while a trickle (or an idle server) is waited for asleep and costs no CPU. Polling yields the core
(``sched_yield``) between checks, so a runnable request on the same core is never held up by it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

# Below this a window is not worth its CPU: one check already takes a few microseconds.
SMALLEST_WINDOW_SECONDS = 0.000_05
GROWTH = 1.25  # a window covers the wait that just ended plus a quarter, for jitter


class PollWindow:
    """How long to poll for the next message before sleeping, learned from the waits seen so far."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit = limit_seconds
        self.seconds = 0.0

    def observe(self, waited: float) -> None:
        """A wait ended ``waited`` seconds after it began (polling or asleep)."""
        if waited <= self.seconds:
            return
        if waited <= self.limit:
            self.seconds = min(self.limit, waited * GROWTH)
        else:
            halved = self.seconds / 2
            self.seconds = halved if halved >= SMALLEST_WINDOW_SECONDS else 0.0

    def poll(self, check: Callable[[], bool], started: float) -> bool:
        """Call ``check`` until it is true or the window from ``started`` (``time.monotonic()``) has passed;
        True if ``check`` came true. A zero window checks nothing."""
        if self.seconds <= 0.0:
            return False
        deadline = started + self.seconds
        while True:
            if check():
                return True
            if time.monotonic() >= deadline:
                return False
            os.sched_yield()
