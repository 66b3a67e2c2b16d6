"""Fixtures of the storage contract suites: every test gets an empty database on each engine.

A fresh SQLite file, or a fresh ``openkms_t_*`` PostgreSQL database (about 40 ms to create), so no test can
lean on another's leftovers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.storage.ports import CommitHook, Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.pg_helpers import create_temp_database, drop_database
from tests.storage.support import ENGINES, LATEST, Opener


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (unmigrated) storages on one fresh database; closes them all and drops it afterwards."""
    opened: list[Storage] = []
    if request.param == "sqlite":
        path = tmp_path / "data" / "openkms.db"

        def open_one(*, before_commit: CommitHook | None = None) -> Storage:
            opened.append(SQLiteStorage(path, before_commit=before_commit))
            return opened[-1]

        yield open_one
        for s in opened:
            s.close()
        return
    url = create_temp_database()

    def open_pg(*, before_commit: CommitHook | None = None) -> Storage:
        opened.append(PostgresStorage(url, before_commit=before_commit))
        return opened[-1]

    try:
        yield open_pg
    finally:
        for s in opened:
            s.close()
        drop_database(url)


@pytest.fixture
def pg_storage() -> Iterator[PostgresStorage]:
    url = create_temp_database()  # skips (or fails, when required) if PostgreSQL is unreachable
    s = PostgresStorage(url)
    try:
        s.migrate()
        yield s
    finally:
        s.close()
        drop_database(url)


@pytest.fixture
def storage(engine: Opener) -> Storage:
    s = engine()
    assert s.migrate() == LATEST
    return s
