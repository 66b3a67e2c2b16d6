"""One real server per storage engine for the whole session; every e2e test runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database, postgres_or_skip


def _start(engine: str, base: Path) -> tuple[ServerProcess, str | None]:
    data_dir = base / engine
    temp_db: str | None = None
    if engine == "postgres":
        postgres_or_skip()
        temp_db = create_temp_database()
        url = temp_db
    else:
        url = f"sqlite:///{data_dir / 'openkms.db'}"
    return ServerProcess(data_dir, url, free_port()).start(), temp_db


ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def serve_engine(engine: str, base: Path) -> Iterator[ServerProcess]:
    """A dev server on ``engine``, stopped (and its PostgreSQL database dropped) when the fixture ends."""
    process, temp_db = _start(engine, base)
    try:
        yield process
    finally:
        process.stop()
        if temp_db is not None:
            drop_database(temp_db)


@pytest.fixture(scope="session", params=ENGINES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve_engine(request.param, tmp_path_factory.mktemp("e2e"))


@pytest.fixture
def kms(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture
def key_id(kms: Any) -> str:
    key: str = kms.create_key(Description="e2e")["KeyMetadata"]["KeyId"]
    return key
