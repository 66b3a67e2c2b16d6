"""One audit writer per node: workers hand records to the supervisor, which commits them in batches.

Why not a writer thread in each worker? Measured (docs/performance.md, "Audit"; the per-worker writer was
removed in issue 16): a writer thread shares its worker's GIL with the event loop, and each hand-over of the
GIL cost the pair more than the SQLite work itself; two workers also commit half-size batches that queue on
the same database lock. A thread in the supervisor process, which otherwise only
waits, has the GIL to itself, and every worker's records share one commit.

Wire (one ``SOCK_SEQPACKET`` socket pair per worker, so each message is one record or one ack)::

    worker -> hub   marshal((token, behind, *record))  tokens increase per worker; behind: its requests
                                                     still being served that will send a record; the
                                                     record's fields in storage.audit.RECORD_FIELDS order
    hub -> worker   marshal((last_token, ok))        settles every record of that worker up to last_token

The hub reads everything that is waiting, commits it in one transaction, acknowledges, and repeats, so
records that arrive during a commit form the next batch. Between records both ends poll for a while before
they sleep when the traffic says the next message is due soon (audit/poll.py: here a wake-up across cores
costs more than the commit's SQL). If a commit fails every record in it is acknowledged as failed (its
request answers ``KMSInternalException``); if the hub goes away, workers fail every waiting and later request
until they are replaced: nothing is answered without its record.

In-process tests run the same hub and client in one process (:func:`local_hub`), so they exercise the path
production runs.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import marshal
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from openkms.audit import log as audit_log
from openkms.audit.poll import PollWindow
from openkms.audit.writer import Reservation
from openkms.storage.audit import AuditRecord, record_from_values, record_values
from openkms.storage.ports import Storage

_log = logging.getLogger("openkms.audit")

MAX_MESSAGE = 1 << 20  # a record is at most a few tens of KiB (request parameters are bounded by the body limit)
MAX_BATCH = 2048
MAX_WAIT_SECONDS = 0.006
LINGER_SECONDS = 0.004


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(hub end, worker end)."""
    hub_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in (hub_end, worker_end):
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MAX_MESSAGE)
    return hub_end, worker_end


class NodeWriter:
    """The hub: a thread of the supervisor that owns the trail's commits for every worker of this node."""

    def __init__(self, storage: Storage, poll_seconds: float = 0.0) -> None:
        """``poll_seconds``: the longest the hub polls for the next record after a commit (audit/poll.py)."""
        self._storage = storage
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._arrivals: list[socket.socket] = []
        # Per worker: requests it is still serving that will send a record (from its latest message). While
        # any worker has some, a commit waits for them (up to MAX_WAIT_SECONDS): they share its fsync.
        self._behind: dict[socket.socket, int] = {}
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._stopping = False
        self._poll = PollWindow(poll_seconds)
        self._idle_since = 0.0  # when the last commit was acknowledged: the wait for the next record began
        self._thread = threading.Thread(target=self._run, name="openkms-audit-hub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def attach(self, hub_end: socket.socket) -> None:
        """Serve a worker's end (called by the supervisor when it spawns a worker)."""
        hub_end.setblocking(False)
        with self._lock:
            self._arrivals.append(hub_end)
        self._wake_write.send(b"\0")

    def stop(self) -> None:
        self._stopping = True
        self._wake_write.send(b"\0")
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sock in arrivals:
            sock.close()
        self._selector.close()
        self._wake_write.close()

    def _run(self) -> None:
        """Serve until stopped; an unexpected error fails the batch at hand (its requests answer 500) and the
        hub goes on: a dead hub thread would leave every worker's requests waiting for acks forever."""
        while not self._stopping:
            batch: list[tuple[socket.socket, int, AuditRecord]] = []
            try:
                self._serve(batch)
            except Exception as exc:
                _log.error("audit hub error (%s); %d waiting records fail", type(exc).__name__, len(batch))
                self._acknowledge(batch, ok=False)
                time.sleep(0.01)

    def _serve(self, batch: list[tuple[socket.socket, int, AuditRecord]]) -> None:
        due = 0.0  # the batch must be committed by then (its first record's wait is bounded)
        not_before = 0.0  # under load, commits are spaced so that each carries more records
        while not self._stopping:
            now = time.monotonic()
            timeout = 1.0 if not batch else max(0.0, min(due, max(not_before, now)) - now)
            if batch and now < not_before:
                # Lingering under load: sleep rather than wake for every record that arrives, then take
                # everything that came meanwhile in one sweep (one wake-up per commit, not per record).
                time.sleep(max(0.0, min(not_before, due) - now))
                ready = [(key, 0) for key in self._selector.get_map().values()]
            elif not batch:
                ready = self._next_ready()
            else:
                ready = self._selector.select(timeout=timeout)
            for key, _ in ready:
                if key.data is None:
                    self._drain_wakeups()
                else:
                    if not batch:
                        arrived = time.monotonic()
                        self._poll.observe(arrived - self._idle_since)
                        due = arrived + MAX_WAIT_SECONDS
                    self._read_all(key.data, batch)
            if not batch:
                continue
            now = time.monotonic()
            if len(batch) >= MAX_BATCH or now >= due or (now >= not_before and not any(self._behind.values())):
                started = now
                self._commit(batch)
                # Alone (one record per commit) nothing is delayed; under load the next commit waits for
                # records to gather, so one fsync and one set of page writes serve many of them.
                not_before = started + LINGER_SECONDS if len(batch) > 1 else 0.0
                batch.clear()
                self._idle_since = time.monotonic()

    def _next_ready(self) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for the first record of a batch: polling while one is due soon, then asleep."""
        found: list[tuple[selectors.SelectorKey, int]] = []

        def arrived() -> bool:
            found[:] = self._selector.select(timeout=0)
            return bool(found)

        if self._poll.poll(arrived, self._idle_since):
            return found
        return self._selector.select(timeout=1.0)

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sock in arrivals:  # only this thread touches the selector's registrations
            self._selector.register(sock, selectors.EVENT_READ, sock)

    def _read_all(self, sock: socket.socket, batch: list[tuple[socket.socket, int, AuditRecord]]) -> None:
        while len(batch) < MAX_BATCH:
            try:
                message = sock.recv(MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:  # the worker is gone
                self._behind.pop(sock, None)
                self._selector.unregister(sock)
                sock.close()
                return
            token, behind, *fields = marshal.loads(message)  # noqa: S302 - a worker of ours, over a private pair
            self._behind[sock] = behind
            batch.append((sock, token, record_from_values(fields)))

    def _commit(self, batch: list[tuple[socket.socket, int, AuditRecord]]) -> None:
        try:
            with self._storage.transaction() as tx:
                audit_log.append(tx, [record for _, _, record in batch])
            ok = True
        except Exception as exc:  # the requests of this batch fail closed; the next batch tries again
            _log.error("audit write of %d records failed (%s); their requests fail", len(batch), type(exc).__name__)
            ok = False
        self._acknowledge(batch, ok=ok)

    @staticmethod
    def _acknowledge(batch: list[tuple[socket.socket, int, AuditRecord]], *, ok: bool) -> None:
        last: dict[socket.socket, int] = {}
        for sock, token, _ in batch:
            last[sock] = token
        for sock, token in last.items():
            try:
                sock.send(marshal.dumps((token, ok)))
            except OSError:  # that worker died meanwhile; its requests died with it
                pass


class HubClient:
    """A worker's :class:`~openkms.audit.writer.AuditWriter` that hands records to the node's hub."""

    def __init__(
        self, worker_end: socket.socket, poll_seconds: float = 0.0, on_close: Callable[[], None] | None = None
    ) -> None:
        """``poll_seconds``: the longest a lone request waits for its ack polling (a commit: 0.2-0.5 ms)."""
        self._sock = worker_end
        self._sock.setblocking(False)
        self._tokens = itertools.count(1)
        self._waiting: deque[tuple[int, asyncio.Future[bool]]] = deque()
        self._outbox: deque[bytes] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broken = False
        self._expected = 0  # requests being served that will submit a record (told to the hub)
        self._ack_poll = PollWindow(poll_seconds)
        self._on_close = on_close

    def reserve(self) -> Reservation:
        return Reservation(self)

    def expect(self) -> None:
        self._expected += 1

    def forget(self) -> None:
        self._expected -= 1

    async def submit(self, record: AuditRecord) -> bool:
        self._expected -= 1
        if self._broken:
            return False
        loop = self._attach()
        token = next(self._tokens)
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((token, future))
        self._send(marshal.dumps((token, max(self._expected, 0), *record_values(record))))
        if self._expected > 0 or len(self._waiting) > 1:
            return await future  # the loop has other requests to serve meanwhile
        # This worker serves nothing else: poll for the ack (briefly, see audit/poll.py) rather than sleep.
        started = time.monotonic()
        self._ack_poll.poll(lambda: self._acked(future), started)
        ok = await future
        self._ack_poll.observe(time.monotonic() - started)
        return ok

    def close(self) -> None:
        self._broken = True  # a shutdown, not a failure: no error logged
        self._fail_all()
        self._sock.close()
        if self._on_close is not None:
            self._on_close()

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A worker runs one loop for its life; an in-process user may run one after another (asyncio.run
            # per call): the acks are then read on the loop that waits for them.
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
                self._loop.remove_writer(self._sock.fileno())
            self._loop = loop
            loop.add_reader(self._sock.fileno(), self._on_acks)
            if self._outbox:
                loop.add_writer(self._sock.fileno(), self._flush)
        return loop

    def _send(self, message: bytes) -> None:
        if not self._outbox:
            try:
                self._sock.send(message)
                return
            except BlockingIOError:
                pass
            except OSError:
                self._fail_all()
                return
        self._outbox.append(message)
        if len(self._outbox) == 1 and self._loop is not None:
            self._loop.add_writer(self._sock.fileno(), self._flush)

    def _flush(self) -> None:
        while self._outbox:
            try:
                self._sock.send(self._outbox[0])
            except BlockingIOError:
                return
            except OSError:
                self._fail_all()
                return
            self._outbox.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self._sock.fileno())

    def _acked(self, future: asyncio.Future[bool]) -> bool:
        self._on_acks()
        return future.done()

    def _on_acks(self) -> None:
        while True:
            try:
                message = self._sock.recv(64)
            except BlockingIOError:
                return
            except OSError:
                message = b""
            if not message:
                self._fail_all()
                return
            last_token, ok = marshal.loads(message)  # noqa: S302 - our supervisor, over a private socket pair
            while self._waiting and self._waiting[0][0] <= last_token:
                _, future = self._waiting.popleft()
                if not future.done():
                    future.set_result(bool(ok))

    def _fail_all(self) -> None:
        """The hub is gone: every waiting request fails, and so will every later one (fail closed)."""
        if not self._broken:
            _log.error("the audit hub is gone; requests fail until this worker is replaced")
        self._broken = True
        if self._loop is not None:
            for fd_remover in (self._loop.remove_reader, self._loop.remove_writer):
                try:
                    fd_remover(self._sock.fileno())
                except (ValueError, OSError):
                    pass
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(False)
        self._outbox.clear()


def local_hub(storage: Storage) -> HubClient:
    """A hub thread in this process and a client connected to it (closing the client stops the hub): the
    production writer for in-process tests and tools that serve requests without the supervisor."""
    hub = NodeWriter(storage)
    hub.start()
    hub_end, worker_end = socket_pair()
    hub.attach(hub_end)
    return HubClient(worker_end, on_close=hub.stop)
