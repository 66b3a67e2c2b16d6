"""Micro-benchmark: what the connection bounds (server/connections.py) add to parsing one request.

Feeds the same boto3-shaped Encrypt request (head with a SigV4 Authorization, 4 KiB plaintext body) to uvicorn's
plain httptools protocol and to openkms's bounded subclass, each on a fake transport with an ASGI app that answers
nothing, on one event loop. Rounds are interleaved; the median per-request time of each and their ratio are
printed. No assertions: the figure belongs in an issue note.

    .venv/bin/python benchmarks/bench_connections.py [--rounds 7] [--number 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from openkms.server.connections import ConnectionLimits, protocol_for


class _Transport(asyncio.Transport):
    """Accepts writes and forgets them; never closing."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _request() -> bytes:
    body = json.dumps({"KeyId": "alias/bench", "Plaintext": base64.b64encode(os.urandom(4096)).decode()}).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept-Encoding: identity\r\n"
        "X-Amz-Target: TrentService.Encrypt\r\nContent-Type: application/x-amz-json-1.1\r\n"
        "User-Agent: Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7\r\n"
        "X-Amz-Date: 20261207T120000Z\r\n"
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAOPENKMSBENCH0001/20261207/us-east-1/kms/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "ab" * 32 + "\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _per_request(protocol_class: type[HttpToolsProtocol], payload: bytes, number: int) -> float:
    loop = asyncio.new_event_loop()
    try:
        config = Config(app=_app, lifespan="off", log_level="warning")
        config.load()
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        protocol.connection_made(_Transport())
        started = time.perf_counter()
        for _ in range(number):
            protocol.data_received(payload)
            loop.run_until_complete(asyncio.sleep(0))  # let the request's task run and answer
        elapsed = time.perf_counter() - started
        protocol.connection_lost(None)
        return elapsed / number
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=5000)
    args = parser.parse_args()
    payload = _request()
    bounded = protocol_for(ConnectionLimits(16 * 1024, 15.0, 1024))
    plain: list[float] = []
    ours: list[float] = []
    for _ in range(args.rounds):
        plain.append(_per_request(HttpToolsProtocol, payload, args.number))
        ours.append(_per_request(bounded, payload, args.number))
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"request of {len(payload)} bytes, {args.rounds} rounds x {args.number}")
    print(f"uvicorn httptools protocol: {p * 1e6:7.2f} us per request")
    print(f"openkms bounded protocol:   {o * 1e6:7.2f} us per request  (+{(o - p) * 1e6:.2f} us, ratio {o / p:.3f})")


if __name__ == "__main__":
    main()
