"""The two ways records become durable before answers: the in-process group-commit thread and the node hub
(a supervisor thread fed over socket pairs). Both batch, both fail closed, both recover by themselves."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from openkms.audit import events, verify
from openkms.audit.hub import HubClient, NodeWriter, socket_pair
from openkms.audit.writer import GroupCommitWriter
from openkms.context import Principal
from openkms.storage.sqlite import SQLiteStorage

PRINCIPAL = Principal("111122223333", "arn:aws:iam::111122223333:user/w", "w", "AKIAWRITERTESTS00001", "AIDAW")


def _event(n: int) -> events.AuditEvent:
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


async def _submit_all(writer: GroupCommitWriter | HubClient, start: int, count: int) -> list[bool]:
    for _ in range(count):
        writer.expect()
    return list(await asyncio.gather(*(writer.submit(_event(start + i)) for i in range(count))))


def _count(storage: SQLiteStorage) -> int:
    with storage.read() as tx:
        return len(tx.audit_range(0, 100_000))


def test_group_commit_thread_batches_fails_closed_and_recovers(storage: SQLiteStorage) -> None:
    writer = GroupCommitWriter(storage)
    assert asyncio.run(_submit_all(writer, 0, 200)) == [True] * 200
    _fault(storage, True)
    assert asyncio.run(_submit_all(writer, 200, 50)) == [False] * 50
    _fault(storage, False)
    assert asyncio.run(_submit_all(writer, 250, 50)) == [True] * 50
    writer.close()
    assert _count(storage) == 250
    assert verify.verify_storage(storage).ok


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
