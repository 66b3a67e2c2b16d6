"""Process model: one supervisor, N worker processes sharing one listening socket.

The supervisor holds the root key once unsealed and hands it to each worker over a private pipe, so an
unseal request answered by one worker reaches every worker, and a worker that dies is replaced already
unsealed. The root key crosses only these pipes; it is never written to disk.

Background work, the audit trail's upkeep included, runs as jobs in the workers (jobs/): the first worker of
each node (index 0, and its replacement) also runs the jobs each node runs for itself (anchoring digests to
this node's sinks).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import os
import signal
import socket
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from openkms.audit.hub import NodeWriter, socket_pair
from openkms.server.unseal_gate import UnsealGate
from openkms.settings import Settings
from openkms.storage.ports import Storage

log = logging.getLogger("openkms.runner")


def bind_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def worker_main(
    settings: Settings,
    sock: socket.socket,
    conn: Connection,
    root_key: bytes | None,
    audit_end: socket.socket | None = None,
    unseal_gate: UnsealGate | None = None,
    first_of_node: bool = False,
) -> None:
    """Entry point of a worker process (spawned, so it starts with no inherited state but what it is given).
    ``first_of_node``: this worker also runs the node's own jobs."""
    import uvicorn

    from openkms.audit import scope as audit_scope
    from openkms.audit.hub import HubClient
    from openkms.jobs.registry import node_jobs
    from openkms.jobs.scheduler import Scheduler
    from openkms.seal.keyring import Keyring
    from openkms.server.connections import ConnectionLimits, protocol_for
    from openkms.storage.factory import open_storage
    from openkms.wiring import build_app, build_services

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keyring = Keyring()
    if root_key is not None:
        keyring.unseal(root_key)
    storage = open_storage(settings.database_url, before_commit=audit_scope.before_commit)
    services = build_services(settings, storage, keyring)
    # Every worker polls for background jobs; the job_leases table lets one run each job at a time, and a
    # sealed worker runs none (jobs/scheduler.py). The node's own jobs run in its first worker.
    scheduler = Scheduler(services, node_jobs=node_jobs() if first_of_node else ())

    def on_message() -> None:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(conn.fileno())
            os.kill(os.getpid(), signal.SIGTERM)  # the supervisor is gone: stop serving
            return
        if kind == "root":
            keyring.unseal(payload)

    def on_startup() -> None:
        asyncio.get_running_loop().add_reader(conn.fileno(), on_message)
        scheduler.start()

    def on_unsealed(key: bytes) -> None:
        conn.send(("unsealed", key))

    ack_poll = settings.audit_poll_microseconds / 2e6  # half the hub's: a commit is shorter than a request
    audit = HubClient(audit_end, ack_poll) if audit_end is not None else None
    app = build_app(services, on_unsealed=on_unsealed, on_startup=on_startup, audit=audit, unseal_gate=unseal_gate)
    limits = ConnectionLimits(
        settings.max_header_bytes, settings.request_read_seconds, settings.max_connections_per_worker
    )
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=protocol_for(limits),  # httptools, with head, read-time and connection bounds (connections.py)
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=int(settings.keep_alive_seconds),
        backlog=2048,
        # Forwarded headers only from the proxies the operator named (uvicorn would trust loopback).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    uvicorn.Server(config).run(sockets=[sock])
    scheduler.stop()
    storage.close()


class Supervisor:
    def __init__(self, settings: Settings, sockets: list[socket.socket], root_key: bytes | None) -> None:
        self._settings = settings
        self._sockets = sockets
        self._root_key = root_key
        self._ctx = multiprocessing.get_context("spawn")
        self._unseal_gate = UnsealGate(settings.unseal_networks, self._ctx)  # shared by every worker
        self._workers: list[tuple[BaseProcess, Connection]] = []
        self._stopping = False
        self._audit: NodeWriter | None = None
        self._audit_storage: Storage | None = None

    def _spawn(self, index: int) -> tuple[BaseProcess, Connection]:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        hub_end: socket.socket | None = None
        worker_end: socket.socket | None = None
        if self._audit is not None:
            hub_end, worker_end = socket_pair()
        process = self._ctx.Process(
            target=worker_main,
            args=(
                self._settings,
                self._sockets[index],
                child_end,
                self._root_key,
                worker_end,
                self._unseal_gate,
                index == 0,
            ),
            name="openkms-worker",
            daemon=False,
        )
        process.start()
        child_end.close()
        if self._audit is not None and hub_end is not None and worker_end is not None:
            worker_end.close()
            self._audit.attach(hub_end)
        return process, parent_end

    def _start_audit(self) -> None:
        """The node's audit writer (audit/hub.py); the in-memory dev sink keeps records in each worker."""
        if self._settings.audit_sink != "database":
            return
        from openkms.storage.factory import open_storage

        self._audit_storage = open_storage(self._settings.database_url)
        self._audit = NodeWriter(self._audit_storage, self._settings.audit_poll_microseconds / 1e6)
        self._audit.start()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._start_audit()
        self._workers = [self._spawn(index) for index in range(self._settings.workers)]
        while not self._stopping:
            ready: list[Any] = wait([c for _, c in self._workers] + [p.sentinel for p, _ in self._workers], 1.0)
            for item in ready:
                self._handle_ready(item)
        self._shutdown()
        return 0

    def _handle_ready(self, item: Any) -> None:
        for index, (process, conn) in enumerate(self._workers):
            if item is conn:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    continue
                if kind == "unsealed":
                    self._root_key = payload
                    for other_process, other in self._workers:
                        if other is not conn and other_process.is_alive():
                            other.send(("root", payload))
            elif item == process.sentinel and not self._stopping:
                process.join()
                conn.close()
                log.warning("worker %s exited with %s; starting a new one", process.pid, process.exitcode)
                self._workers[index] = self._spawn(index)

    def _stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _shutdown(self) -> None:
        for process, _ in self._workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process, conn in self._workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
            conn.close()
        if self._audit is not None:  # after the workers: their last records are written first
            self._audit.stop()
        if self._audit_storage is not None:
            self._audit_storage.close()


def bind_worker_sockets(settings: Settings) -> list[socket.socket]:
    """One listening socket per worker on the same port (SO_REUSEPORT), so the kernel spreads connections
    evenly; one shared socket let whichever worker woke first accept nearly every connection
    (benchmarks: up to 2x at concurrency 32). The supervisor keeps them, so a replaced worker reuses its own."""
    if settings.workers == 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [bind_socket(settings.host, settings.port)] * settings.workers
    _refuse_port_in_use(settings.host, settings.port)
    sockets: list[socket.socket] = []
    try:
        for _ in range(settings.workers):
            sockets.append(bind_socket(settings.host, settings.port, reuse_port=True))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _refuse_port_in_use(host: str, port: int) -> None:
    """SO_REUSEPORT would let a second server silently share a port with a running one: refuse instead."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((probe_host, port), timeout=0.5):
            pass
    except OSError:
        return
    raise OSError(errno.EADDRINUSE, f"address already in use: {host}:{port}")


def serve(settings: Settings, root_key: bytes | None, sockets: list[socket.socket]) -> int:
    """Run the supervisor on sockets from :func:`bind_worker_sockets` (bound before any state is touched)."""
    try:
        return Supervisor(settings, sockets, root_key).run()
    finally:
        for sock in set(sockets):
            sock.close()
