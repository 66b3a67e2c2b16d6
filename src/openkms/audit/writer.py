"""Making records durable before answers leave (docs/design.md section 8): the writer interface and its
reservation.

A request that will produce a record first takes a :class:`Reservation`: the writer then knows a record is
coming and lets a commit wait briefly for it, so one fsync carries the records of many requests. The
reservation ends exactly once, by :meth:`Reservation.submit` (the request waits, ``await``, until its record is
durable or known lost) or by :meth:`Reservation.cancel`; used as a context manager, leaving the block without
submitting cancels it, whatever happened in between (an error, a cancelled task, a thread that raised), so the
writer's count of records still to come can never drift.

Production runs one writer per node, the supervisor's hub (audit/hub.py); in-process tests run the same hub in
their own process. :class:`MemoryWriter` keeps records in memory only: the benchmark's baseline, refused
outside dev mode.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Protocol

from openkms.storage.audit import AuditRecord


class RecordSink(Protocol):
    """What a writer does for its reservations (only :class:`Reservation` calls these)."""

    def expect(self) -> None:
        """A request will submit a record (or cancel)."""
        ...

    def forget(self) -> None:
        """An expected record will not come."""
        ...

    async def submit(self, record: AuditRecord) -> bool:
        """True once the expected ``record`` is durable; False if it could not be written."""
        ...


class Reservation:
    """One request's promise of one record to its writer; ends by :meth:`submit` or :meth:`cancel`, once."""

    __slots__ = ("_open", "_sink")

    def __init__(self, sink: RecordSink) -> None:
        sink.expect()
        self._sink = sink
        self._open = True

    async def submit(self, record: AuditRecord) -> bool:
        """True once ``record`` is durable; False if it could not be written (the caller fails closed)."""
        if not self._open:
            raise RuntimeError("this reservation has already ended")
        self._open = False
        return await self._sink.submit(record)

    def cancel(self) -> None:
        """No record will come (nothing to record, or it is counted into a summary instead)."""
        if self._open:
            self._open = False
            self._sink.forget()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.cancel()


class AuditWriter(Protocol):
    def reserve(self) -> Reservation:
        """A request that will make a record begins (use the reservation as a context manager)."""
        ...

    def close(self) -> None: ...


class MemoryWriter:
    """Records kept in a bounded in-memory deque: the baseline of the audit benchmark, never for real use."""

    def __init__(self, keep: int = 10_000) -> None:
        self.records: deque[AuditRecord] = deque(maxlen=keep)

    def reserve(self) -> Reservation:
        return Reservation(self)

    def expect(self) -> None:
        pass

    def forget(self) -> None:
        pass

    async def submit(self, record: AuditRecord) -> bool:
        self.records.append(record)
        return True

    def close(self) -> None:
        pass
