"""Engine selection from a URL, and the migration runner's file handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.storage import migrate
from openkms.storage.factory import open_storage, sqlite_path_from_url
from openkms.storage.ports import StorageError, Transaction
from openkms.storage.postgres import POSTGRESQL, PostgresStorage
from openkms.storage.sqlite import SQLITE, SQLiteStorage


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/openkms/openkms.db", "/var/lib/openkms/openkms.db"),
        ("sqlite:////var/lib/openkms/openkms.db", "/var/lib/openkms/openkms.db"),  # SQLAlchemy's absolute form
        ("sqlite://localhost/var/lib/openkms.db", "/var/lib/openkms.db"),
        ("sqlite:///data%20dir/openkms.db", "/data dir/openkms.db"),
        ("sqlite:data/openkms.db", "data/openkms.db"),
        ("SQLite:data/openkms.db", "data/openkms.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize(
    "url", ["sqlite:", "sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///x.db?mode=ro", "sqlite:x.db#f"]
)
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        sqlite_path_from_url(url)


def test_open_storage_picks_sqlite(tmp_path: Path) -> None:
    for url in (f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db"), f"sqlite:{tmp_path}/c.db"):
        storage = open_storage(url)
        try:
            assert isinstance(storage, SQLiteStorage)
            assert storage.dialect == "sqlite"
            assert storage.schema_version() == 0  # opening does not migrate
        finally:
            storage.close()


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:1/db", "postgres://u:p@db.example/openkms?sslmode=require"])
def test_open_storage_picks_postgres_without_connecting(url: str) -> None:
    storage = open_storage(url)
    try:
        assert isinstance(storage, PostgresStorage)
        assert storage.dialect == "postgresql"
    finally:
        storage.close()


@pytest.mark.parametrize("url", ["", "mysql://u@h/db", "postgresql+psycopg://u@h/db", "redis://h"])
def test_open_storage_refuses_the_rest(url: str) -> None:
    with pytest.raises(ValueError, match="storage URL"):
        open_storage(url)


def test_a_postgres_server_that_is_down_is_a_storage_error() -> None:
    storage = PostgresStorage("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(StorageError) as caught:
            storage.migrate()
        assert caught.value.__cause__ is not None
    finally:
        storage.close()


def test_migrations_load_in_order_and_render_for_each_dialect() -> None:
    for dialect in (SQLITE, POSTGRESQL):
        migrations = migrate.load(dialect.name)
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        assert migrations[0].name == "initial"
        statements = migrate.split(migrate.render(migrations[0].sql, dialect.column_types))
        assert all("{{" not in s and not s.rstrip().endswith(";") for s in statements)
        assert sum(s.startswith("CREATE TABLE") for s in statements) == 8
        assert migrations[1].name == "access_control"
        statements = migrate.split(migrate.render(migrations[1].sql, dialect.column_types))
        assert all("{{" not in s and not s.rstrip().endswith(";") for s in statements)
        assert sum(s.startswith("CREATE TABLE") for s in statements) == 6
        assert statements[-1].startswith("INSERT INTO user_policies")  # AdministratorAccess for existing users
    pg = migrate.render("{{bytes}} {{time}} {{bool}} {{id}}", POSTGRESQL.column_types)
    assert pg == 'BYTEA DOUBLE PRECISION BOOLEAN TEXT COLLATE "C"'
    assert migrate.render("{{bytes}} {{ time }}", SQLITE.column_types) == "BLOB REAL"


def test_migration_runner_rejects_mistakes() -> None:
    with pytest.raises(StorageError, match="unknown migration token"):
        migrate.render("{{nope}}", SQLITE.column_types)
    with pytest.raises(StorageError, match="terminating"):
        migrate.split("CREATE TABLE a (x INTEGER);\nCREATE TABLE b (y INTEGER)")
    assert migrate.split("-- a comment; with a semicolon;\nCREATE TABLE a (\n  x INTEGER\n);\n\n") == [
        "CREATE TABLE a (\n  x INTEGER\n)"
    ]


def test_open_storage_passes_the_commit_hook_to_either_engine(tmp_path: Path) -> None:
    def hook(tx: Transaction) -> None:
        return None

    for url in (f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db"), "postgresql://u@127.0.0.1:1/db"):
        storage = open_storage(url, before_commit=hook)
        try:
            assert storage.before_commit is hook
        finally:
            storage.close()
        plain = open_storage(url)
        try:
            assert plain.before_commit is None
        finally:
            plain.close()
