"""Two nodes on one PostgreSQL database, each with its own anchor directory: the audit-maintenance job signs each
digest once, on schedule, on whichever node holds its lease, and the audit-anchor job of each node delivers
every digest to that node's directory (jobs/audit_maintenance.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.audit import anchor, verify
from openkms.storage.factory import open_storage
from tests.e2e.server import ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_nodes_database() -> Iterator[str]:
    """A throwaway PostgreSQL database: several nodes need one they share."""
    postgres_or_skip()
    created = create_temp_database()
    yield created
    drop_database(created)


def _anchored(directory: Path) -> set[int]:
    if not directory.exists():
        return set()
    return {seq for seq in map(anchor.parse_file_name, (p.name for p in directory.iterdir())) if seq}


def test_two_nodes_sign_digests_on_schedule_and_each_anchors_every_one(two_nodes_database: str, tmp_path: Path) -> None:
    database = two_nodes_database
    data_dir = tmp_path / "data"  # one dev seal (its key file) for both nodes, as one cluster has one root key
    anchors = [tmp_path / "anchor-a", tmp_path / "anchor-b"]
    nodes = [
        ServerProcess(data_dir, database, free_port(), workers=2,
                      extra_args=["--audit-digest-interval", "1", "--audit-anchor-dir", str(directory)])
        for directory in anchors
    ]  # fmt: skip
    nodes[0].start()
    try:
        nodes[1].start()
        clients = [node.client() for node in nodes]
        key = clients[0].create_key()["KeyMetadata"]["KeyId"]
        for _round in range(3):  # calls on both nodes, digests signed meanwhile
            for client in clients:
                for _ in range(5):
                    client.encrypt(KeyId=key, Plaintext=b"x")
            time.sleep(1.2)
        storage = open_storage(database)
        try:
            with storage.read() as tx:
                head = tx.audit_head().seq
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with storage.read() as tx:
                    last = tx.last_digest()
                if (
                    last is not None
                    and last.to_seq >= head
                    and all(last.digest_seq in _anchored(directory) for directory in anchors)
                ):
                    break
                time.sleep(0.2)
        finally:
            storage.close()
    finally:
        for node in nodes:
            node.stop()
    assert last is not None and last.to_seq >= head, "no digest covered the calls within 20 s"
    storage = open_storage(database)
    try:
        with storage.read() as tx:
            seqs = [digest.digest_seq for digest in tx.list_digests(0, 1000)]
        report = verify.verify_storage(storage)
    finally:
        storage.close()
    assert report.ok, report.problems
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3  # about one a second, none twice
    # Each node's directory holds every digest from the first it saw on, whichever node signed it: none skipped.
    for directory in anchors:
        held = sorted(_anchored(directory))
        assert held and held == list(range(held[0], held[-1] + 1)), (directory.name, held)
        assert last.digest_seq <= held[-1] <= seqs[-1], (directory.name, held, seqs)
