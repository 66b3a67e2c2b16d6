"""Bounds on connections before any request reaches the app: head size, read deadlines, connections per worker.

uvicorn's httptools protocol parses heads of any size (32 MiB of headers were parsed, unauthenticated, and
the worker's memory stayed up) and holds a connection that never completes a request for ever (2,000
slowloris connections of 2,000 were still open after 40 s). This subclass adds what it lacks:

- **Head size.** The request line and headers are counted as the parser hands them over; past
  ``max_header_bytes`` the request is answered ``431`` and the connection closed, so no more is parsed.
- **Read deadline.** A connection must send its first byte within ``request_read_seconds`` of opening,
  and each request must arrive whole (head and body) within ``request_read_seconds`` of its first byte. A
  request being answered is not timed: the deadline stops when the body is complete. Between requests
  uvicorn's keep-alive timeout applies.
- **Connections per worker.** At ``max_connections`` an idle connection (no request in progress) is closed
  to make room for the new one; if none is idle, the new one is closed at once.

Each costs a counter or a timer handle per connection; nothing here is per byte beyond the parser's own call.
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
    """uvicorn's httptools protocol with the bounds above (set ``limits`` on a subclass: :func:`protocol_for`)."""

    limits: ConnectionLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_done = False
        self._head_too_large = False
        self._refused = False
        self._read_deadline: asyncio.TimerHandle | None = None
        self._reading = False  # between a request's first byte and its last

    # -- connection lifetime ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_an_idle_connection():
            self._refused = True
            transport.close()
            return
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

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

    # -- the read deadline --------------------------------------------------------------------------
    def _arm_read_deadline(self) -> None:
        self._cancel_read_deadline()
        self._read_deadline = self.loop.call_later(self.limits.request_read_seconds, self._read_timed_out)

    def _cancel_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        """Too slow: close. A request still arriving is never run (the app sees a disconnect, no answer)."""
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- parsing --------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading and not self._head_done:
            # httptools holds a header's value until it ends, so a head is also counted by the raw bytes that
            # arrive while it is incomplete: one endless header is refused, not accumulated.
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers any parser error, ours included, through here: ours is a 431."""
        if self._head_too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._refused = True
        self._cancel_read_deadline()
        if not self.transport.is_closing():
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_done = False
        self._reading = True
        self._arm_read_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge()  # httptools stops and raises its callback error; uvicorn calls send_400_response

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading = False
        self._cancel_read_deadline()
        super().on_message_complete()


def protocol_for(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class carrying ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("OpenKmsHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
