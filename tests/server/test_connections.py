"""The connection bounds (server/connections.py) in-process: a head is measured, not guessed, however the bytes
arrive, so a large body right after a head split across reads is never taken for a large head."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from openkms.server.connections import ConnectionLimits, protocol_for

LIMIT = 2048


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _exchange(chunks: list[bytes]) -> tuple[bytes, bool, list[bytes]]:
    """Feed ``chunks``; (bytes written back, closed, bodies the app received)."""
    bodies: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    loop = asyncio.new_event_loop()
    try:
        config = Config(app=app, lifespan="off", log_level="critical")
        config.load()
        protocol_class = protocol_for(ConnectionLimits(LIMIT, 15.0, 64))
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        transport = _Transport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
            loop.run_until_complete(asyncio.sleep(0.01))
        return transport.written, transport.closed, bodies
    finally:
        loop.close()


def _head(padding: int, body_length: int) -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Pad: "
        + b"a" * padding
        + f"\r\nContent-Length: {body_length}\r\n\r\n".encode()
    )


def test_a_split_head_followed_by_a_large_body_is_served() -> None:
    body = b"b" * 100_000
    head = _head(1500, len(body))
    written, _, bodies = _exchange([head[:700], head[700:] + body])
    assert written.startswith(b"HTTP/1.1 200 "), written[:80]
    assert bodies == [body]


@pytest.mark.parametrize("split", [None, 100, 1000], ids=["one-read", "two-reads", "late-split"])
def test_a_head_over_the_limit_is_refused_with_431_and_never_reaches_the_app(split: int | None) -> None:
    head = _head(LIMIT, 0)
    chunks = [head] if split is None else [head[:split], head[split:]]
    written, closed, bodies = _exchange(chunks)
    assert written.startswith(b"HTTP/1.1 431 "), written[:80]
    assert closed and bodies == []


def test_an_endless_header_is_refused_before_it_ends() -> None:
    written, closed, bodies = _exchange([b"POST / HTTP/1.1\r\nX-Big: ", *[b"a" * 1000] * 5])
    assert written.startswith(b"HTTP/1.1 431 ") and closed and bodies == []


def test_a_head_within_the_limit_is_served() -> None:
    written, _, bodies = _exchange([_head(LIMIT - 200, 2) + b"{}"])
    assert written.startswith(b"HTTP/1.1 200 ") and bodies == [b"{}"]
