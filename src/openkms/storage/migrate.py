"""Versioned schema migrations: the files in ``migrations/``, applied in order, each exactly once.

File names are ``NNNN_description.sql`` (portable, with ``{{token}}`` column types substituted per dialect)
or ``NNNN_description.<dialect>.sql`` when one engine needs its own text; a dialect-specific file wins over
the portable one of the same version. Released files are never edited: a change is a new version.

Applied versions are recorded in ``schema_migrations(version, applied_at)`` in the same transaction as the
DDL (both engines have transactional DDL), so a crash leaves either all of a migration or none of it. The
engine opens that transaction holding a lock that makes concurrent starters queue: SQLite
``BEGIN IMMEDIATE``, PostgreSQL ``pg_advisory_xact_lock`` taken as the first statement of a READ COMMITTED
transaction (so the statements after it see what the previous holder committed). Whoever comes second
finds nothing left to do.

Nothing here opens or commits transactions; :meth:`openkms.storage.sql.SQLStorage.migrate` does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from openkms.storage.ports import StorageError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from openkms.storage.sql import Cursor, Dialect

# A fixed 64-bit key for pg_advisory_xact_lock: the ASCII of "okmsmigr". Only migrations take it.
PG_MIGRATION_LOCK_ID = 0x6F6B6D736D696772

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.sql$")
_TOKEN = re.compile(r"\{\{\s*(\w+)\s*\}\}")

_CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at {{time}} NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str  # still holding {{tokens}}


def load(dialect: str) -> list[Migration]:
    """The migrations that apply to ``dialect``, oldest first."""
    chosen: dict[int, tuple[bool, Migration]] = {}
    for entry in resources.files("openkms.storage").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version, name, only_for = int(match[1]), match[2], match[3]
        if only_for is not None and only_for != dialect:
            continue
        specific = only_for is not None
        previous = chosen.get(version)
        if previous is not None and previous[0] == specific:
            raise StorageError(f"two migrations claim version {version}: {previous[1].name} and {name}")
        if previous is None or specific:
            chosen[version] = (specific, Migration(version, name, entry.read_text(encoding="utf-8")))
    migrations = [m for _, (_, m) in sorted(chosen.items())]
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise StorageError(f"migration versions must run 1..N without gaps, found {[m.version for m in migrations]}")
    return migrations


def render(sql: str, column_types: Mapping[str, str]) -> str:
    """Substitute the dialect's column types for ``{{token}}``; an unknown token is a bug in the file."""

    def substitute(match: re.Match[str]) -> str:
        token = match[1]
        if token not in column_types:
            raise StorageError(f"unknown migration token {{{{{token}}}}}")
        return column_types[token]

    return _TOKEN.sub(substitute, sql)


def split(sql: str) -> list[str]:
    """Statements of a migration file: full-line ``--`` comments dropped, split at a ``;`` ending a line.

    Our own splitter, because ``sqlite3.executescript`` commits the open transaction first.
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        if line.lstrip().startswith("--"):
            continue
        stripped = line.rstrip()
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            statement = "\n".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
        else:
            current.append(line)
    if "\n".join(current).strip():
        raise StorageError("migration file ends with a statement that has no terminating ';'")
    return statements


def latest_version(dialect: str) -> int:
    """The schema version this release migrates to."""
    return len(load(dialect))


def current_version(cur: Cursor, dialect: Dialect) -> int:
    """The highest applied version; 0 for an empty database."""
    cur.execute(dialect.table_exists, ("schema_migrations",))
    if cur.fetchone() is None:
        return 0
    cur.execute("SELECT MAX(version) FROM schema_migrations", ())
    row = cur.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def apply_pending(cur: Cursor, dialect: Dialect, target: int | None = None) -> int:
    """Apply what is missing (up to ``target``), inside the caller's locked transaction; returns the version
    now in force."""
    migrations = load(dialect.name)
    cur.execute(render(_CREATE_LEDGER, dialect.column_types), ())
    cur.execute("SELECT version FROM schema_migrations ORDER BY version", ())
    applied = {int(row[0]) for row in cur.fetchall()}
    known = {m.version for m in migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise StorageError(
            f"the database has schema versions {unknown} that this openkms does not know; "
            "it was written by a newer release (downgrades are not supported)"
        )
    insert = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)".replace("?", dialect.placeholder)
    for migration in migrations:
        if migration.version in applied or (target is not None and migration.version > target):
            continue
        for statement in split(render(migration.sql, dialect.column_types)):
            cur.execute(statement, ())
        cur.execute(insert, (migration.version, time.time()))
        applied.add(migration.version)
    return max(applied, default=0)
