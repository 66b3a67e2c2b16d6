"""The adaptive poll window (audit/poll.py) and a lone request's worker polling for its ack (audit/hub.py)."""

from __future__ import annotations

import asyncio
import marshal
import socket
import threading
import time

from openkms.audit import events
from openkms.audit.hub import HubClient, socket_pair
from openkms.audit.poll import GROWTH, SMALLEST_WINDOW_SECONDS, PollWindow
from openkms.context import Principal
from openkms.storage.audit import AuditRecord

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/p", "p", "AKIAPOLLTESTS0000001", "AIDAP")


def test_a_new_window_polls_nothing() -> None:
    window = PollWindow(0.002)
    calls: list[int] = []

    def never_ready() -> bool:
        calls.append(1)
        return False

    assert window.poll(never_ready, time.monotonic()) is False
    assert calls == []


def test_the_window_grows_to_cover_short_waits_and_no_further_than_the_limit() -> None:
    window = PollWindow(0.002)
    window.observe(0.0008)
    assert window.seconds == 0.0008 * GROWTH
    window.observe(0.0005)  # caught inside the window: unchanged
    assert window.seconds == 0.0008 * GROWTH
    window.observe(0.0019)
    assert window.seconds == 0.002


def test_long_waits_halve_the_window_down_to_nothing() -> None:
    window = PollWindow(0.002)
    window.observe(0.0015)
    halvings = 0
    while window.seconds:
        window.observe(0.5)  # a trickle: the next message came long after the limit
        halvings += 1
    assert 1 < halvings < 10
    window.observe(0.5)
    assert window.seconds == 0.0
    assert SMALLEST_WINDOW_SECONDS > 0


def test_poll_stops_when_the_check_comes_true_or_the_window_has_passed() -> None:
    window = PollWindow(10.0)
    window.observe(8.0)
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) == 3

    assert window.poll(third_time, time.monotonic()) is True
    assert len(calls) == 3
    calls.clear()
    expired = time.monotonic() - window.seconds - 1.0

    def counted_not_ready() -> bool:
        calls.append(1)
        return False

    assert window.poll(counted_not_ready, expired) is False
    assert calls == [1]  # checked once, then gave up


def _event() -> AuditRecord:
    call = events.Call("req-poll", 1_790_000_000.0, "127.0.0.1", "t", "us-east-1", "Encrypt", PRINCIPAL, None, {})
    return events.build(call, None, None)


def _fake_hub(hub_end: socket.socket, answers: list[tuple[float, bool | None]]) -> threading.Thread:
    """Answer each record after its delay with its outcome (None: close the socket)."""

    def serve() -> None:
        for delay, outcome in answers:
            token, *_ = marshal.loads(hub_end.recv(1 << 20))  # noqa: S302 - our own test message
            time.sleep(delay)
            if outcome is None:
                hub_end.close()
                return
            hub_end.send(marshal.dumps((token, outcome)))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_lone_request_polls_for_its_ack_and_gets_its_outcome() -> None:
    hub_end, worker_end = socket_pair()
    client = HubClient(worker_end, poll_seconds=0.001)
    client._ack_poll.observe(0.0009)  # a window as learned under steady traffic
    # Inside the window (taken by polling), then after it (taken by the event loop's reader).
    server = _fake_hub(hub_end, [(0.0001, True), (0.0001, False), (0.005, True), (0.0001, None)])

    async def one() -> bool:
        with client.reserve() as reservation:
            return await reservation.submit(_event())

    async def scenario() -> list[bool]:
        return [await one() for _ in range(5)]

    # A closed hub fails the request at hand and every later one.
    assert asyncio.run(scenario()) == [True, False, True, False, False]
    server.join(timeout=5)
    client.close()
