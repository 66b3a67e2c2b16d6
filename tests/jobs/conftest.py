"""An in-process openkms with an injected :class:`FrozenClock` on each engine, for the lifecycle rules.

Operations run through the model validation and the registered handlers, as the server runs them, but without
HTTP or SigV4, so a test can move the clock by a year between two calls and call a job directly.
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
from openkms.audit.usage import roll_up
from openkms.clock import FrozenClock
from openkms.context import Principal, RequestContext
from openkms.crypto.rand import random_bytes
from openkms.operations.materials import MaterialCache
from openkms.operations.registry import handler_for
from openkms.operations.services import Services
from openkms.seal.keyring import Keyring
from openkms.server.validate import validate_input
from openkms.settings import Settings
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.pg_helpers import create_temp_database, drop_database

ACCOUNT_ID = "111122223333"
REGION = "us-east-1"
START = 1_750_000_000.0  # 2025-06-15, a fixed "now" the tests move by hand
DAY = 86400.0


@dataclasses.dataclass
class Lifecycle:
    """One account with an administrator, and a clock that moves only when told."""

    svc: Services
    clock: FrozenClock
    principal: Principal

    @property
    def storage(self) -> Storage:
        return self.svc.storage

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Run ``operation`` as the administrator at the clock's time; blobs are given as bytes."""
        wire = {name: base64.b64encode(v).decode() if isinstance(v, bytes) else v for name, v in params.items()}
        checked = validate_input(operation, wire)
        ctx = RequestContext(
            request_id="test",
            operation=operation,
            principal=self.principal,
            region=REGION,
            source_ip="127.0.0.1",
            user_agent="tests/jobs",
            now=self.clock.now(),
            params=checked,
        )
        handler = handler_for(operation)
        assert handler is not None, operation
        return handler(self.svc, ctx, checked)

    def new_key(self, **params: Any) -> str:
        key_id: str = self.call("CreateKey", **params)["KeyMetadata"]["KeyId"]
        return key_id

    def with_settings(self, **changes: Any) -> Lifecycle:
        settings = dataclasses.replace(self.svc.settings, **changes)
        return dataclasses.replace(self, svc=dataclasses.replace(self.svc, settings=settings))


def build(storage: Storage, data_dir: Path, **settings: Any) -> Lifecycle:
    storage.migrate()
    keyring = Keyring()
    keyring.unseal(random_bytes(32))
    clock = FrozenClock(START)
    identity.ensure_account(storage, ACCOUNT_ID, clock)
    user = identity.create_user(storage, ACCOUNT_ID, "admin", clock)
    identity.ensure_administrator_policy(storage, ACCOUNT_ID, "admin")
    config = Settings(data_dir=data_dir, database_url="unused", job_poll_seconds=0.05, **settings)
    svc = Services(storage, keyring, clock, config, MaterialCache(keyring), roll_up)
    return Lifecycle(svc, clock, Principal(ACCOUNT_ID, user.arn, "admin", "AKIATESTTESTTESTTEST"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def lifecycle(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lifecycle]:
    if request.param == "sqlite":
        storage: Storage = SQLiteStorage(tmp_path / "openkms.db")
        try:
            yield build(storage, tmp_path)
        finally:
            storage.close()
        return
    url = create_temp_database()
    storage = PostgresStorage(url)
    try:
        yield build(storage, tmp_path)
    finally:
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
