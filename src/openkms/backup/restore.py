"""``openkms restore``: a checked backup written into an empty database, in one write transaction.

The target's schema is made by the normal migrations, up to the backup's schema version, the rows go in inside
one transaction (all of them or none: a failure half-way leaves the target as it was), and then the migrations
carry the schema to this release's version, so a backup of an older release restores too. A target that holds
anything is refused unless ``force`` (then its rows are deleted in the same transaction).

What must not go backwards (see :mod:`openkms.backup.tables`): job leases come back free and expired, so the
restored node runs due jobs at once rather than waiting out a lease held by a node of the lost deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from openkms.backup import archive
from openkms.backup.tables import BY_NAME, OMITTED, TABLES, Table
from openkms.backup.verify import Report, checked_rows
from openkms.storage.migrate import latest_version
from openkms.storage.ports import Storage, Transaction

BATCH_ROWS = 1000
_ENDED_LEASE = {"holder": "", "lease_until": 0.0}


class TargetNotEmptyError(archive.BackupError):
    """The target holds data; a restore would mix two states, so it takes ``force`` to replace it."""


def _target_tables() -> tuple[str, ...]:
    return tuple(t.name for t in TABLES if not t.seeded) + tuple(n for n in OMITTED if n != "schema_migrations")


def restore_backup(
    storage: Storage,
    path: Path,
    root_key: bytes,
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check ``path`` with ``root_key``, then write it into ``storage`` (see the module docstring)."""
    report, rows = checked_rows(path, root_key)
    manifest = report.manifest
    if manifest.schema_version > latest_version(storage.dialect):
        raise archive.BackupError(
            f"the backup has schema version {manifest.schema_version}, newer than this openkms knows: restore it "
            "with the release that wrote it"
        )
    found = storage.schema_version()
    if found > manifest.schema_version:
        raise archive.BackupError(
            f"the target database is at schema version {found}, the backup at {manifest.schema_version}: restore it "
            "into a new database (this release's migrations then carry it forward)"
        )
    storage.migrate(manifest.schema_version)
    with storage.transaction() as tx:
        if any(tx.table_has_rows(name) for name in _target_tables()):
            if not force:
                raise TargetNotEmptyError("the target database holds data: give --force to replace it")
            for name in reversed(_target_tables()):
                tx.delete_all_rows(name)
        for table in TABLES:
            if table.seeded:
                tx.delete_all_rows(table.name)
        _insert(tx, storage.dialect, manifest, rows, progress)
    storage.migrate()
    return report


def _insert(
    tx: Transaction,
    dialect: str,
    manifest: archive.Manifest,
    rows: Iterator[tuple[str, list[Any]]],
    progress: Callable[[int], None] | None,
) -> None:
    batch: list[Sequence[Any]] = []
    current: Table | None = None
    done = 0

    def flush() -> None:
        nonlocal done
        if current is not None and batch:
            tx.insert_rows(current.name, manifest.tables[current.name].columns, batch)
            done += len(batch)
            batch.clear()
            if progress is not None:
                progress(done)

    for name, values in rows:
        if current is None or current.name != name:
            flush()
            current = BY_NAME[name]
        batch.append(_for_target(current, manifest.tables[name].columns, values, dialect))
        if len(batch) >= BATCH_ROWS:
            flush()
    flush()


def _for_target(table: Table, columns: tuple[str, ...], values: list[Any], dialect: str) -> list[Any]:
    """A row as the target takes it: PostgreSQL's BOOLEAN columns get booleans, and job leases come back free."""
    if dialect == "postgresql" and table.booleans:
        values = [bool(v) if c in table.booleans and v is not None else v for c, v in zip(columns, values, strict=True)]
    if table.name == "job_leases":
        values = [_ENDED_LEASE.get(c, v) for c, v in zip(columns, values, strict=True)]
    return values
