"""Making records durable before answers leave: group commit off the event loop (docs/design.md section 8).

A request's record is handed to :class:`GroupCommitWriter`; the request waits (``await``, the event loop
keeps serving others) until the transaction holding its record committed. One writer thread per worker
process drains everything queued while the previous commit was on disk, so under load one fsync carries
hundreds of records (docs/performance.md: ~6x cheaper per record) and there is never an fsync per request, nor
any fsync on the event loop. If the commit fails (disk full, database gone), every waiting request is told
so and answers ``KMSInternalException``; the next batch simply tries again, so the service recovers by
itself once the fault clears.

:class:`MemoryWriter` keeps records in memory only: the benchmark's baseline, refused outside dev mode.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from openkms.audit import log as audit_log
from openkms.audit.events import AuditEvent
from openkms.storage.ports import Storage

_log = logging.getLogger("openkms.audit")

MAX_BATCH = 512
# The longest a commit waits for requests still being served to add their records (a slow client's body,
# a key generation in a thread): bounded so that one slow request cannot hold up the others' answers.
MAX_WAIT_SECONDS = 0.002


class AuditWriter(Protocol):
    def expect(self) -> None:
        """A request arrived that will :meth:`submit` a record (or :meth:`forget` if it will not)."""
        ...

    def forget(self) -> None: ...

    async def submit(self, event: AuditEvent) -> bool:
        """True once ``event`` is durable; False if it could not be written."""
        ...

    def write_now(self, event: AuditEvent) -> None:
        """Write ``event`` durably in the calling thread (never on the event loop); raises on failure."""
        ...

    def close(self) -> None: ...


def _settle(futures: Sequence[asyncio.Future[bool]], ok: bool) -> None:
    for future in futures:
        if not future.done():  # a request whose client went away may have been cancelled
            future.set_result(ok)


class GroupCommitWriter:
    def __init__(self, storage: Storage, max_batch: int = MAX_BATCH, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self._storage = storage
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: deque[tuple[AuditEvent, asyncio.AbstractEventLoop, asyncio.Future[bool]]] = deque()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._expected = 0  # requests in this process that will submit a record but have not yet

    def expect(self) -> None:
        with self._wakeup:
            self._expected += 1

    def forget(self) -> None:
        with self._wakeup:
            self._expected -= 1
            if self._expected <= 0:
                self._wakeup.notify()

    async def submit(self, event: AuditEvent) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._wakeup:
            self._expected -= 1
            if self._closed:
                return False
            self._queue.append((event, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="openkms-audit", daemon=True)
                self._thread.start()
            # Wake the writer only when it can act: each needless wake-up costs a GIL hand-over.
            if len(self._queue) == 1 or self._expected <= 0 or len(self._queue) >= self._max_batch:
                self._wakeup.notify()
        return await future

    def write_now(self, event: AuditEvent) -> None:
        with self._storage.transaction() as tx:
            audit_log.append(tx, [event])

    def close(self) -> None:
        """Stop after writing what is queued (what arrives later is refused)."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._closed:
                    self._wakeup.wait()
                if not self._queue:
                    return
                self._gather()
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._max_batch))]
            ok = self._write([event for event, _, _ in batch])
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
            for _, loop, future in batch:
                by_loop.setdefault(loop, []).append(future)
            for loop, futures in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle, futures, ok)
                except RuntimeError:  # that loop has closed: nobody is waiting any more
                    pass

    def _gather(self) -> None:
        """Wait (briefly, holding the condition) while requests that arrived are still being served: their
        records then share this commit. Alone (concurrency 1) nothing is waited for."""
        deadline = time.monotonic() + self._max_wait
        while self._expected > 0 and len(self._queue) < self._max_batch and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.wait(remaining)

    def _write(self, events: list[AuditEvent]) -> bool:
        try:
            with self._storage.transaction() as tx:
                audit_log.append(tx, events)
        except Exception as exc:  # any failure: the waiting requests fail closed
            _log.error("audit write of %d records failed (%s); their requests fail", len(events), type(exc).__name__)
            return False
        return True


class MemoryWriter:
    """Records kept in a bounded in-memory deque: the baseline of the audit benchmark, never for real use."""

    def __init__(self, keep: int = 10_000) -> None:
        self.events: deque[AuditEvent] = deque(maxlen=keep)

    def expect(self) -> None:
        pass

    def forget(self) -> None:
        pass

    async def submit(self, event: AuditEvent) -> bool:
        self.events.append(event)
        return True

    def write_now(self, event: AuditEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass
