"""An in-process openkms with an injected :class:`FrozenClock` on each engine, for the lifecycle rules.

Operations run through the operation runner as the console's calls do (model validation, the registered handlers,
the audit record made durable through the node's hub, run in this process), without HTTP or SigV4, so a test can
move the clock by a year between two calls and call a job directly. Jobs record their changes as they do in a
server.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from openkms import identity
from openkms.audit import scope as audit_scope
from openkms.audit.hub import local_hub
from openkms.audit.usage import roll_up
from openkms.audit.writer import AuditWriter
from openkms.clock import FrozenClock
from openkms.context import Principal
from openkms.crypto.rand import random_bytes
from openkms.operations.materials import MaterialCache
from openkms.operations.services import Services
from openkms.seal.keyring import Keyring
from openkms.server.operation_runner import Caller, OperationRunner
from openkms.settings import Settings
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.loop_thread import LoopThread
from tests.pg_helpers import create_temp_database, drop_database

ACCOUNT_ID = "111122223333"
REGION = "us-east-1"
START = 1_750_000_000.0  # 2025-06-15, a fixed "now" the tests move by hand
DAY = 86400.0


VIA = Caller("127.0.0.1", "tests/jobs", False)


@dataclasses.dataclass
class Lifecycle:
    """One account with an administrator, and a clock that moves only when told."""

    svc: Services
    clock: FrozenClock
    principal: Principal
    audit: AuditWriter
    loop: LoopThread

    @property
    def storage(self) -> Storage:
        return self.svc.storage

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run ``operation`` as the administrator at the clock's time; blobs are given as bytes. An AWS error
        is raised, as the handler raised it."""
        wire = {name: base64.b64encode(v).decode() if isinstance(v, bytes) else v for name, v in params.items()}
        runner = OperationRunner(self.svc, self.audit)
        outcome = self.loop.run(runner.run_as(self.principal, operation, wire, VIA))
        if outcome.error is not None:
            raise outcome.error
        assert outcome.result is not None
        return outcome.result

    def close(self) -> None:
        self.loop.close()
        self.audit.close()

    def new_key(self, **params: Any) -> str:
        key_id: str = self.call("CreateKey", **params)["KeyMetadata"]["KeyId"]
        return key_id

    def with_settings(self, **changes: Any) -> Lifecycle:
        settings = dataclasses.replace(self.svc.settings, **changes)
        return dataclasses.replace(self, svc=dataclasses.replace(self.svc, settings=settings))


def build(storage: Storage, data_dir: Path, **settings: Any) -> Lifecycle:
    """``storage`` opened with ``before_commit=audit_scope.before_commit``, as a server opens it."""
    storage.migrate()
    keyring = Keyring()
    keyring.unseal(random_bytes(32))
    clock = FrozenClock(START)
    identity.ensure_account(storage, ACCOUNT_ID, clock)
    user = identity.create_user(storage, ACCOUNT_ID, "admin", clock)
    identity.ensure_administrator_policy(storage, ACCOUNT_ID, "admin")
    config = Settings(data_dir=data_dir, database_url="unused", job_poll_seconds=0.05, **settings)
    svc = Services(storage, keyring, clock, config, MaterialCache(keyring), roll_up)
    principal = Principal(ACCOUNT_ID, user.arn, "admin", "AKIATESTTESTTESTTEST")
    return Lifecycle(svc, clock, principal, local_hub(storage), LoopThread())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def lifecycle(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lifecycle]:
    if request.param == "sqlite":
        storage: Storage = SQLiteStorage(tmp_path / "openkms.db", before_commit=audit_scope.before_commit)
        life = build(storage, tmp_path)
        try:
            yield life
        finally:
            life.close()
            storage.close()
        return
    url = create_temp_database()
    storage = PostgresStorage(url, before_commit=audit_scope.before_commit)
    life = build(storage, tmp_path)
    try:
        yield life
    finally:
        life.close()
        storage.close()
        drop_database(url)


def run_concurrently(step: Callable[[str], bool], key_ids: Sequence[str], workers: int = 4) -> list[bool]:
    """Every worker thread runs ``step`` on every key at once (a barrier starts them together): what two
    nodes whose leases overlapped would do. Returns every step's answer."""
    results: list[bool] = []
    barrier = threading.Barrier(workers)

    def worker() -> None:
        barrier.wait()
        for key_id in key_ids:
            results.append(step(key_id))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
