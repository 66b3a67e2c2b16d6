"""Injected time: every component that needs "now" takes a :class:`Clock` (docs/design.md section 6)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """Wall-clock time, optionally moved forward by a fixed offset (dev mode's ``--dev-clock-offset``)."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset = offset_seconds

    def now(self) -> float:
        return time.time() + self._offset


class FrozenClock:
    """A clock tests move by hand."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def set(self, value: float) -> None:
        self._now = value

    def advance(self, seconds: float) -> None:
        self._now += seconds
