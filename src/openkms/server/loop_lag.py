"""Notices when a worker's event loop was blocked, and says so in the log.

Nothing heavy may run on the event loop: while it runs, every connection of the worker waits, health probes
included. A timer asks to run every :data:`INTERVAL_SECONDS`; when it runs later than that by more than
:data:`WARN_AFTER_SECONDS` *and* the worker process spent more than that on the CPU meanwhile, work held the
loop (on the loop itself, or in a thread that kept the GIL), and a warning names for how long. Lateness
without the process's CPU (it was not scheduled on a busy machine) is only noted at debug level: it is not
the code's doing. The hostile-input tests
read these warnings to prove that no input blocks a loop; operators see them when something does.
Cost: one timer callback per interval per worker.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("openkms.loop")

INTERVAL_SECONDS = 0.05
WARN_AFTER_SECONDS = 0.1
WARNING_TEXT = "event loop blocked for"  # what the tests look for


class LoopLagMonitor:
    def __init__(self, interval: float = INTERVAL_SECONDS, warn_after: float = WARN_AFTER_SECONDS) -> None:
        self._interval = interval
        self._warn_after = warn_after
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._cpu_at_schedule = 0.0
        self.worst_seconds = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._schedule(loop)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = time.monotonic() + self._interval
        self._cpu_at_schedule = time.process_time()
        self._handle = loop.call_later(self._interval, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        lag = time.monotonic() - self._due
        busy = time.process_time() - self._cpu_at_schedule  # CPU of every thread of the worker since then
        if lag > self._warn_after:
            if busy > self._warn_after:
                self.worst_seconds = max(self.worst_seconds, lag)
                log.warning("%s %.0f ms (%.0f ms of the worker's CPU)", WARNING_TEXT, lag * 1000, busy * 1000)
            else:
                log.debug("event loop late by %.0f ms, not running (the process waited for a CPU)", lag * 1000)
        self._schedule(loop)
