"""Every table of the schema is either backed up or omitted with a reason, on both engines; the BOOLEAN columns
the restore converts are exactly PostgreSQL's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from openkms.backup.tables import OMITTED, TABLES
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.pg_helpers import create_temp_database, drop_database


def test_every_sqlite_table_is_backed_up_or_omitted(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "openkms.db")
    storage.migrate()
    storage.close()
    with sqlite3.connect(tmp_path / "openkms.db") as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert names == {t.name for t in TABLES} | set(OMITTED)


@pytest.mark.postgres
def test_every_postgresql_table_is_backed_up_or_omitted_and_the_booleans_are_known() -> None:
    url = create_temp_database()
    try:
        storage = PostgresStorage(url)
        storage.migrate()
        storage.close()
        with psycopg.connect(url) as conn:
            names = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            booleans = set(
                conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type = 'boolean'"
                ).fetchall()
            )
    finally:
        drop_database(url)
    assert names == {t.name for t in TABLES} | set(OMITTED)
    assert booleans == {(t.name, column) for t in TABLES for column in t.booleans}
