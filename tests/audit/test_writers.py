"""How records become durable before answers: the node hub (a supervisor thread fed over socket pairs by every
worker, or run in one process for in-process use) batches, fails closed and recovers by itself; a reservation
ends exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from openkms.audit import events, verify
from openkms.audit.hub import HubClient, NodeWriter, local_hub, socket_pair
from openkms.audit.writer import AuditWriter, MemoryWriter
from openkms.context import Principal
from openkms.storage.audit import AuditRecord
from openkms.storage.sqlite import SQLiteStorage

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/w", "w", "AKIAWRITERTESTS00001", "AIDAW")


def _event(n: int) -> AuditRecord:
    # A millisecond apart: a trail whose calls span more than two digest intervals unsigned is stale (verify.py).
    when = 1_790_000_000.0 + n / 1000
    call = events.Call(f"req-{n}", when, "127.0.0.1", "t", "us-east-1", "Encrypt", PRINCIPAL, None, {})
    return events.build(call, None, None)


@pytest.fixture
def storage(tmp_path: Path) -> SQLiteStorage:
    store = SQLiteStorage(tmp_path / "openkms.db")
    store.migrate()
    return store


def _fault(storage: SQLiteStorage, on: bool) -> None:
    with sqlite3.connect(storage.path) as conn:
        if on:
            conn.execute(
                "CREATE TRIGGER fault BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'injected'); END"
            )
        else:
            conn.execute("DROP TRIGGER fault")


async def _submit_all(writer: AuditWriter, start: int, count: int) -> list[bool]:
    reservations = [writer.reserve() for _ in range(count)]
    return list(await asyncio.gather(*(r.submit(_event(start + i)) for i, r in enumerate(reservations))))


def _count(storage: SQLiteStorage) -> int:
    with storage.read() as tx:
        return len(tx.audit_range(0, 100_000))


def test_the_hub_in_one_process_batches_fails_closed_and_recovers(storage: SQLiteStorage) -> None:
    writer = local_hub(storage)

    async def scenario() -> None:  # one event loop, as in a worker
        assert await _submit_all(writer, 0, 200) == [True] * 200
        _fault(storage, True)
        assert await _submit_all(writer, 200, 50) == [False] * 50
        _fault(storage, False)
        assert await _submit_all(writer, 250, 50) == [True] * 50

    asyncio.run(scenario())
    writer.close()
    assert _count(storage) == 250
    assert verify.verify_storage(storage).ok


class _Counting(MemoryWriter):
    """Counts the records its reservations promised and have not yet delivered or cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.outstanding = 0

    def expect(self) -> None:
        self.outstanding += 1

    def forget(self) -> None:
        self.outstanding -= 1

    async def submit(self, record: AuditRecord) -> bool:
        self.outstanding -= 1
        return await super().submit(record)


def test_a_reservation_ends_once_whatever_happens_inside_it() -> None:
    writer = _Counting()

    async def scenario() -> None:
        with writer.reserve() as reservation:
            assert writer.outstanding == 1
            assert await reservation.submit(_event(1))
            with pytest.raises(RuntimeError, match="already ended"):
                await reservation.submit(_event(2))
        assert writer.outstanding == 0 and len(writer.records) == 1
        with pytest.raises(ValueError), writer.reserve():
            raise ValueError("the operation failed before its record was built")
        assert writer.outstanding == 0  # cancelled on the way out
        with writer.reserve() as reservation:
            reservation.cancel()
            reservation.cancel()  # a second cancel changes nothing
        assert writer.outstanding == 0 and len(writer.records) == 1

    asyncio.run(scenario())


def test_hub_commits_for_several_workers_and_fails_closed(storage: SQLiteStorage) -> None:
    hub = NodeWriter(storage)
    hub.start()
    clients = []
    for _ in range(3):
        hub_end, worker_end = socket_pair()
        hub.attach(hub_end)
        clients.append(HubClient(worker_end))

    async def from_every_worker(start: int) -> list[bool]:
        results = await asyncio.gather(*(_submit_all(c, start + 1000 * i, 100) for i, c in enumerate(clients)))
        return [ok for batch in results for ok in batch]

    async def scenario() -> None:  # one event loop, as in a worker
        assert await from_every_worker(0) == [True] * 300
        _fault(storage, True)
        assert await from_every_worker(10_000) == [False] * 300
        _fault(storage, False)
        assert await from_every_worker(20_000) == [True] * 300
        for client in clients:
            client.close()

    try:
        asyncio.run(scenario())
    finally:
        hub.stop()
    assert _count(storage) == 600
    report = verify.verify_storage(storage)
    assert report.ok and report.records == 600, report.problems


def test_a_worker_whose_hub_is_gone_answers_nothing() -> None:
    hub_end, worker_end = socket_pair()
    client = HubClient(worker_end)
    hub_end.close()  # the supervisor died

    async def run() -> list[bool]:
        first = await _submit_all(client, 0, 5)
        second = await _submit_all(client, 5, 5)
        client.close()
        return first + second

    assert asyncio.run(run()) == [False] * 10
