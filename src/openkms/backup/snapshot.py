"""Taking a backup: every table of :mod:`openkms.backup.tables`, read inside one read transaction, into a file.

One read transaction is one snapshot on both engines, so the file is a state the database was in: SQLite's
deferred read in WAL mode reads the snapshot of its first statement and never blocks a writer (a checkpoint
cannot pass it, so the WAL grows while it is open); PostgreSQL's read transactions are REPEATABLE READ, READ ONLY,
which block no writer either. Rows are read a page at a time in primary-key order, so memory stays bounded.

Backing up needs the root key, as ``openkms iam`` changes do: it signs the manifest (a key derived from the root
key, :func:`openkms.backup.archive.manifest_key`), and so proves at restore time that the file is the one an
operator holding the root of trust wrote. The root key itself, and every secret wrapped under it, never leaves
its wrapping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openkms import __version__
from openkms.backup import archive
from openkms.backup.tables import TABLES
from openkms.storage.migrate import latest_version
from openkms.storage.ports import Storage

PAGE_ROWS = 2000


def take_backup(
    storage: Storage,
    root_key: bytes,
    output: Path,
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    now: Callable[[], float] = time.time,
) -> archive.Manifest:
    """Write a backup of ``storage`` to ``output`` (see :mod:`openkms.backup.archive`); returns its manifest."""
    if output.exists() and not force:
        raise archive.BackupError(f"{output} exists: give --force to replace it")
    if not output.parent.is_dir():
        raise archive.BackupError(f"the directory of {output} does not exist")
    body = archive.BodyWriter(output.parent)
    try:
        tables: dict[str, archive.TableSummary] = {}
        done = 0
        started = time.monotonic()
        with storage.read() as tx:
            seal = tx.get_seal()
            if seal is None:
                raise archive.BackupError("this database is not initialised: there is nothing to back up")
            head = tx.audit_head()
            # The schema version of this snapshot (a migration committed just before it cannot slip in between).
            _, applied = tx.table_page("schema_migrations", ("version",), None, 10_000)
            version = max((int(row[0]) for row in applied), default=0)
            if version != latest_version(storage.dialect):
                raise archive.BackupError(
                    f"the database schema is version {version}, this openkms writes version "
                    f"{latest_version(storage.dialect)}: back it up with the release that runs it"
                )
            created_at = now()
            for table in TABLES:
                body.start_table(table.name)
                columns: tuple[str, ...] = ()
                count = 0
                after: tuple[Any, ...] | None = None
                while True:
                    columns, rows = tx.table_page(table.name, table.key, after, PAGE_ROWS)
                    for row in rows:
                        body.row(row)
                    count += len(rows)
                    done += len(rows)
                    if progress is not None:
                        progress(done)
                    if len(rows) < PAGE_ROWS:
                        break
                    last = dict(zip(columns, rows[-1], strict=True))
                    after = tuple(last[c] for c in table.key)
                tables[table.name] = archive.TableSummary(columns, count)
        snapshot_seconds = time.monotonic() - started
        content_sha256, content_bytes = body.close()
        manifest = archive.Manifest(
            created_at=created_at,
            engine=storage.dialect,
            schema_version=version,
            openkms_version=__version__,
            tables=tables,
            audit_head_seq=head.seq,
            audit_head_hash=head.hash,
            seal=seal,
            content_sha256=content_sha256,
            content_bytes=content_bytes,
            snapshot_seconds=round(snapshot_seconds, 6),
        )
        archive.write_file(output, manifest, root_key, body.path, force=force)
    finally:
        body.discard()
    return manifest
