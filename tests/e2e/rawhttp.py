"""Raw HTTP for the protocol and security end-to-end tests: sign with botocore, then send the exact bytes we choose.

``http.client`` carries ordinary requests (``Host`` and ``Content-Length`` are only what we put there);
a plain socket carries what ``http.client`` refuses to write (pipelined bytes, half-closed bodies), and
:func:`exchange` parses every response that comes back on it with ``http.client`` itself.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.auth import sigv4
from tests.e2e.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

JSON_1_1 = "application/x-amz-json-1.1"
Header = tuple[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        try:
            value = self.json()
        except ValueError:
            return None
        kind = value.get("__type") if isinstance(value, dict) else None
        return kind if isinstance(kind, str) else None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-amzn-requestid")

    def describe(self) -> str:
        return f"HTTP {self.status} {self.body[:300]!r}"


def host_of(port: int) -> str:
    return f"127.0.0.1:{port}"


def sign(
    port: int,
    body: bytes,
    target: str | None = "TrentService.Encrypt",
    *,
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    region: str = REGION,
    service: str = "kms",
    content_type: str | None = JSON_1_1,
    extra: dict[str, str] | None = None,
    at: datetime.datetime | None = None,
) -> list[Header]:
    """Headers exactly as botocore signs a KMS request (at ``at`` if given, else now), ``Host`` first.

    ``Content-Length`` and ``Transfer-Encoding`` are not signed (as with boto3); the sender adds them.
    """
    headers: dict[str, str] = {}
    if target is not None:
        headers["X-Amz-Target"] = target
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra or {})
    request = AWSRequest(method="POST", url=f"http://{host_of(port)}/", data=body, headers=headers)
    signer = SigV4Auth(Credentials(access_key_id, secret), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        fixed = at.astimezone(datetime.UTC).replace(tzinfo=None)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
            signer.add_auth(request)
    return [("Host", host_of(port)), *request.headers.items()]


def self_sign(
    port: int,
    body: bytes,
    headers: Sequence[Header],
    signed: Sequence[str],
    *,
    amz_date: str,
    scope_date: str | None = None,
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    region: str = REGION,
    service: str = "kms",
) -> list[Header]:
    """A *valid* signature over a shape botocore never produces (``host`` unsigned, scope date off, ...).

    ``headers`` must already hold every header to send except Authorization; ``signed`` names the ones covered.
    """
    request = sigv4.SignedRequest("POST", "/", "", list(headers), body)
    names = sorted(name.lower() for name in signed)
    credential = sigv4.Credential(access_key_id, scope_date or amz_date[:8], region, service)
    canonical = sigv4.canonical_request(request, names)
    signature = sigv4.compute_signature(secret, credential, sigv4.string_to_sign(amz_date, credential.scope, canonical))
    authorization = (
        f"{sigv4.ALGORITHM} Credential={access_key_id}/{credential.scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return [*headers, ("Authorization", authorization)]


def amz_date(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def replace_header(headers: Sequence[Header], name: str, value: str | None) -> list[Header]:
    """Drop every header called ``name`` and, unless ``value`` is None, append it with ``value``."""
    kept = [(n, v) for n, v in headers if n.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


def header(headers: Sequence[Header], name: str) -> str:
    return next(v for n, v in headers if n.lower() == name.lower())


def _read(response: http.client.HTTPResponse) -> Reply:
    body = response.read()
    return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def post(
    port: int,
    headers: Sequence[Header],
    body: bytes,
    *,
    content_length: int | None = -1,
    timeout: float = 30,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    """POST ``/`` with exactly ``headers`` plus ``Content-Length`` (``len(body)`` by default, ``None``: omit it)."""
    own = conn is None
    connection = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if content_length is not None:
            connection.putheader("Content-Length", str(len(body) if content_length < 0 else content_length))
        connection.endheaders()
        if body:
            connection.send(body)
        return _read(connection.getresponse())
    finally:
        if own:
            connection.close()


def chunked(parts: Iterable[bytes], *, terminate: bool = True) -> bytes:
    """``Transfer-Encoding: chunked`` framing of ``parts`` (an empty part would end the body, so none is)."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part)
    return out + (b"0\r\n\r\n" if terminate else b"")


def head_bytes(headers: Sequence[Header], *, path: str = "/", method: str = "POST") -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode("latin-1")


class _KeepOpen:
    """One buffered reader shared by successive ``HTTPResponse`` objects (they close theirs when done)."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def makefile(self, *_args: Any, **_kwargs: Any) -> _KeepOpen:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def close(self) -> None:
        """Kept open for the next response."""


def exchange(
    port: int,
    data: bytes,
    *,
    half_close: bool = False,
    timeout: float = 3,
    more: Iterable[bytes] = (),
    delay: float = 0,
    expect: int | None = None,
) -> list[Reply]:
    """Write raw bytes on one connection and parse every response until the server closes it or goes quiet.

    ``more`` is written piece by piece after ``data`` (``delay`` seconds later) and stops quietly if the server
    has hung up. Reading stops after ``expect`` responses, if given, instead of waiting for the server to close.
    """
    replies: list[Reply] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if delay:
            time.sleep(delay)
        try:
            for piece in more:
                sock.sendall(piece)
        except OSError:  # the server answered and closed: what follows is unread, by design
            pass
        if half_close:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        reader = _KeepOpen(sock)
        while True:
            response = http.client.HTTPResponse(reader)  # type: ignore[arg-type]
            try:
                response.begin()
            except (TimeoutError, http.client.RemoteDisconnected, ConnectionError):
                break
            except http.client.BadStatusLine:
                break
            replies.append(_read(response))
            if response.will_close or len(replies) == expect:
                break
    return replies


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the server's workers), from ``/proc``; empty where there is no ``/proc``."""
    children = []
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == str(pid):
                children.append(int(entry.name))
    return children


def serving_pid(server_port: int, conn: http.client.HTTPConnection, candidates: Iterable[int]) -> int | None:
    """Which of ``candidates`` holds the server end of ``conn`` (Linux ``/proc/net/tcp``), if it can be told."""
    if conn.sock is None:
        return None
    client_port = conn.sock.getsockname()[1]
    inode = None
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if local == server_port and remote == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None
