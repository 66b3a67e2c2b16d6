"""A database trigger that makes every audit insert fail while switched on (docs/tests.md A-3), for SQLite and
PostgreSQL: the fault the fail-closed tests of the server and of ``openkms iam`` inject."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg


def install_audit_fault(database_url: str) -> Callable[[bool], None]:
    """Install the trigger (off); the returned function switches it on (True) or off (False)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")

        def run(statement: str) -> None:
            with sqlite3.connect(path, timeout=30) as conn:
                conn.execute(statement)

        run("CREATE TABLE audit_fault (active INTEGER NOT NULL)")
        run("INSERT INTO audit_fault VALUES (0)")
        run(
            "CREATE TRIGGER audit_fault_trigger BEFORE INSERT ON audit_events"
            " WHEN (SELECT active FROM audit_fault) = 1 BEGIN SELECT RAISE(ABORT, 'injected audit fault'); END"
        )
        return lambda on: run(f"UPDATE audit_fault SET active = {1 if on else 0}")

    def run_pg(statement: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(statement)

    run_pg("CREATE TABLE audit_fault (active BOOLEAN NOT NULL)")
    run_pg("INSERT INTO audit_fault VALUES (false)")
    run_pg(
        "CREATE FUNCTION audit_fault_raise() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF (SELECT active FROM audit_fault) THEN RAISE EXCEPTION 'injected audit fault'; END IF;"
        " RETURN NEW; END $$"
    )
    run_pg(
        "CREATE TRIGGER audit_fault_trigger BEFORE INSERT ON audit_events FOR EACH ROW"
        " EXECUTE FUNCTION audit_fault_raise()"
    )
    return lambda on: run_pg(f"UPDATE audit_fault SET active = {'true' if on else 'false'}")
