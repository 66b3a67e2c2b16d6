"""Bounds on connections before any request reaches the app: head size, read deadlines, connections per worker.

uvicorn's httptools protocol parses heads of any size (32 MiB of headers were parsed, unauthenticated, and
the worker's memory stayed up) and holds a connection that never completes a request for ever (2,000
slowloris connections of 2,000 were still open after 40 s). This subclass adds what it lacks:

- **Head size.** The request line and headers are measured when the head is complete, and by the raw bytes
  of a head still incomplete after each chunk; past ``max_header_bytes`` the request is answered ``431`` and
  the connection closed, so no more is parsed and the app never sees it.
- **Read deadline.** A connection must send its first byte within ``request_read_seconds`` of opening,
  and each request must arrive whole (head and body) within ``request_read_seconds`` of its first byte. A
  request being answered is not timed: the deadline stops when the body is complete. Between requests
  uvicorn's keep-alive timeout applies.
- **Connections per worker.** At ``max_connections`` an idle connection (no request in progress) is closed
  to make room for the new one; if none is idle, the new one is closed at once.

Each costs a few attribute writes per request (``benchmarks/bench_connections.py`` measures it); nothing here
is per byte beyond the parser's own call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\n"
    b"connection: close\r\n\r\n"
    b"Request header fields are too large.\r\n"
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_header_bytes: int
    request_read_seconds: float
    max_connections: int


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools at once (it re-raises it as a parser error)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds above (set ``limits`` on a subclass: :func:`protocol_for`).

    Per request this adds a few attribute writes and one sum over the headers at their end: the read deadline
    is a timestamp that one sweep per second per worker checks (:func:`_sweep`), not a timer per request, and
    the head is measured once it is complete, not by a call per header.
    """

    limits: ConnectionLimits
    swept_loop: asyncio.AbstractEventLoop | None = None  # the loop whose sweep this class has scheduled

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0  # raw bytes of a head still incomplete after the chunks that carried it
        self._chunk_bytes = 0  # the size of the chunk being parsed
        self._head_done = False
        self._head_too_large = False
        self._refused = False
        self._reading = False  # between a request's first byte and its last
        self.read_deadline: float | None = None  # loop time by which the bytes awaited must have come

    # -- connection lifetime ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cls = type(self)
        if cls.swept_loop is not self.loop:  # the first connection of this worker's loop starts the sweep
            cls.swept_loop = self.loop
            _schedule_sweep(self.loop, self.connections, self.limits.request_read_seconds)
        if len(self.connections) > self.limits.max_connections and not self._evict_an_idle_connection():
            self._refused = True
            transport.close()
            return
        self.read_deadline = self.loop.time() + self.limits.request_read_seconds  # its first byte

    def _evict_an_idle_connection(self) -> bool:
        for other in self.connections:
            if other is not self and isinstance(other, BoundedHttpToolsProtocol) and other.idle():
                other.transport.close()
                self.connections.discard(other)  # counted out now; its connection_lost follows
                return True
        return False

    def idle(self) -> bool:
        """No request being read or answered: closing it loses nothing a client was promised."""
        return not self._reading and (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def read_timed_out(self) -> None:
        """Too slow: close. A request still arriving is never run (the app sees a disconnect, no answer)."""
        self.read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- parsing --------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._chunk_bytes = len(data)
        super().data_received(data)
        if self._reading and not self._head_done and not self._refused:
            # httptools holds an unfinished header until it ends: a head spread over chunks is counted by
            # the raw bytes that left it unfinished, so one endless header is refused, not accumulated.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers any parser error, ours included, through here: ours is a 431."""
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._refused = True
        self.read_deadline = None
        if not self.transport.is_closing():
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_done = False
        self._reading = True
        self.read_deadline = self.loop.time() + self.limits.request_read_seconds  # the whole request

    def on_headers_complete(self) -> None:
        self._head_done = True
        if self._head_bytes + self._chunk_bytes > self.limits.max_header_bytes and self._head_size() > (
            self.limits.max_header_bytes
        ):
            self._head_too_large = True
            raise _HeadTooLarge()  # httptools stops and raises its callback error; uvicorn calls send_400_response
        super().on_headers_complete()

    def _head_size(self) -> int:
        """Measured only when the chunks that carried the head were larger than the limit (rarely)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_message_complete(self) -> None:
        self._reading = False
        self.read_deadline = None  # answering is not timed; uvicorn's keep-alive timeout follows the answer
        super().on_message_complete()


def _schedule_sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], read_seconds: float) -> None:
    loop.call_later(min(1.0, read_seconds / 4), _sweep, loop, connections, read_seconds)


def _sweep(loop: asyncio.AbstractEventLoop, connections: set[Any], read_seconds: float) -> None:
    """Close every connection past its read deadline; runs about once a second while the worker serves."""
    now = loop.time()
    for connection in list(connections):
        deadline = getattr(connection, "read_deadline", None)
        if deadline is not None and now > deadline:
            connection.read_timed_out()
    _schedule_sweep(loop, connections, read_seconds)


def protocol_for(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class carrying ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("OpenKmsHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
