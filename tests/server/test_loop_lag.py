"""The loop-lag monitor (server/loop_lag.py) names work that held the loop, and only that: the hostile-input tests
rely on it, so it must see a real block and must not blame the code for a busy machine."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest

from openkms.server.loop_lag import WARNING_TEXT, LoopLagMonitor


def _run_with(blocker: Callable[[], object]) -> LoopLagMonitor:
    async def main() -> LoopLagMonitor:
        monitor = LoopLagMonitor(interval=0.02, warn_after=0.1)
        monitor.start(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        blocker()
        await asyncio.sleep(0.1)
        monitor.stop()
        return monitor

    return asyncio.run(main())


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_cpu_work_in_a_thread_that_keeps_the_gil_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    """A regex in a worker thread holds the GIL as surely as one on the loop: the loop waits either way."""

    def spin_in_a_thread() -> None:
        thread = threading.Thread(target=_spin, args=(0.3,))
        thread.start()
        thread.join()

    with caplog.at_level(logging.WARNING, logger="openkms.loop"):
        _run_with(spin_in_a_thread)
    assert any(WARNING_TEXT in record.getMessage() for record in caplog.records)


def test_cpu_work_on_the_loop_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="openkms.loop"):
        monitor = _run_with(lambda: _spin(0.3))
    assert any(WARNING_TEXT in record.getMessage() for record in caplog.records)
    assert monitor.worst_seconds >= 0.2


def test_lateness_without_cpu_on_the_loop_is_not_blamed(caplog: pytest.LogCaptureFixture) -> None:
    """time.sleep stands for a process the machine did not schedule: late, but not running."""
    with caplog.at_level(logging.WARNING, logger="openkms.loop"):
        monitor = _run_with(lambda: time.sleep(0.3))
    assert not any(WARNING_TEXT in record.getMessage() for record in caplog.records)
    assert monitor.worst_seconds == 0.0
