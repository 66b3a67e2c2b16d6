"""``openkms backup verify``: a backup file checked end to end with the root key, before anything trusts it.

In order: the magic line, the manifest's signature (:mod:`openkms.backup.archive`), the body's length and hash,
then every row: tables in restore order with the manifest's columns and row counts, the seal row equal to the
manifest's, and every secret wrapped under the root key opening with it, each under its own binding (key
material versions, access-key secrets, audit signing keys). What is opened is dropped at once; nothing of it
is kept or shown. The first failure of the first three steps stops the check; the rows' problems are all named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from openkms import identity
from openkms.audit.digests import signing_key_binding
from openkms.backup import archive
from openkms.backup.tables import TABLES
from openkms.crypto import wrap
from openkms.crypto.errors import IntegrityError
from openkms.operations.materials import material_binding
from openkms.storage.records import AccessKeyRecord, KeyRecord

MAX_PROBLEMS = 20  # named one by one; the rest are counted


@dataclass(slots=True)
class Report:
    manifest: archive.Manifest
    rows: dict[str, int] = field(default_factory=dict)
    secrets_opened: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more_problems += 1

    def as_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "ok": self.ok,
            "createdAt": m.created_at,
            "engine": m.engine,
            "schemaVersion": m.schema_version,
            "openkmsVersion": m.openkms_version,
            "auditHead": {"seq": m.audit_head_seq, "hash": m.audit_head_hash},
            "rows": self.rows,
            "secretsOpened": self.secrets_opened,
            "problems": self.problems + ([f"and {self.more_problems} more"] if self.more_problems else []),
        }


def _record(record_type: type[Any], columns: tuple[str, ...], values: list[Any]) -> Any:
    row = dict(zip(columns, values, strict=True))
    return record_type(**{f.name: row[f.name] for f in fields(record_type)})


class _Secrets:
    """Opens each wrapped secret of a row under its binding; counts what opened, names what did not."""

    def __init__(self, root_key: bytes, report: Report) -> None:
        self._root_key = root_key
        self._report = report
        self._key_arns: dict[str, KeyRecord] = {}

    def check(self, table: str, columns: tuple[str, ...], values: list[Any]) -> None:
        if table == "keys":
            key = _record(KeyRecord, columns, values)
            self._key_arns[key.key_id] = key
        elif table == "key_versions":
            row = dict(zip(columns, values, strict=True))
            key = self._key_arns.get(row["key_id"])
            what = f"key {row['key_id']} version {row['version_id']}: its material"
            if key is None:
                self._report.problem(f"{what} belongs to no key in the backup")
            else:
                self._open(table, what, row["wrapped_material"], material_binding(key, row["version_id"]))
        elif table == "access_keys":
            record = _record(AccessKeyRecord, columns, values)
            what = f"access key {record.access_key_id}: its secret"
            self._open(table, what, record.wrapped_secret, identity.secret_binding(record.access_key_id))
        elif table == "audit_signing_keys":
            row = dict(zip(columns, values, strict=True))
            what = f"audit signing key {row['key_id']}: its private key"
            self._open(table, what, row["wrapped_private_key"], signing_key_binding(row["key_id"]))

    def _open(self, table: str, what: str, wrapped: bytes, binding: tuple[str, ...]) -> None:
        try:
            wrap.unwrap(self._root_key, wrapped, binding)
        except IntegrityError:
            self._report.problem(f"{what} does not open with the root key")
            return
        self._report.secrets_opened[table] = self._report.secrets_opened.get(table, 0) + 1


def verify_backup(path: Path, root_key: bytes, progress: Callable[[int], None] | None = None) -> Report:
    """Check ``path`` (see the module docstring); raises :class:`archive.BackupError` if the file itself is
    unsound, else returns a report whose ``problems`` name what is wrong inside."""
    return _check(path, root_key, progress)[0]


def checked_rows(
    path: Path, root_key: bytes, progress: Callable[[int], None] | None = None
) -> tuple[Report, Iterator[tuple[str, list[Any]]]]:
    """:func:`verify_backup`, then the rows again for a restore; raises :class:`archive.BackupError` naming the
    problems if there are any (the file is read twice: nothing is written from a file before all of it checked)."""
    report, opened = _check(path, root_key, progress)
    if not report.ok:
        raise archive.BackupError("the backup is unsound: " + "; ".join(report.as_dict()["problems"]))
    return report, archive.read_rows(path, opened)


def _check(path: Path, root_key: bytes, progress: Callable[[int], None] | None) -> tuple[Report, archive.Opened]:
    opened = archive.open_file(path, root_key)
    archive.check_body(path, opened)
    manifest = opened.manifest
    report = Report(manifest)
    expected_order = [t.name for t in TABLES]
    if list(manifest.tables) != expected_order:
        report.problem(f"the backup holds tables {list(manifest.tables)}, this openkms expects {expected_order}")
        return report, opened
    secrets = _Secrets(root_key, report)
    seen: list[str] = []
    done = 0
    for table, values in archive.read_rows(path, opened):
        if not seen or seen[-1] != table:
            seen.append(table)
        columns = manifest.tables[table].columns if table in manifest.tables else ()
        if len(values) != len(columns):
            report.problem(f"a row of {table} has {len(values)} values for {len(columns)} columns")
            continue
        report.rows[table] = report.rows.get(table, 0) + 1
        if table == "seal":
            sealed = dict(zip(columns, values, strict=True))
            if sealed["wrapped_root_key"] != manifest.seal.wrapped_root_key or sealed["kind"] != manifest.seal.kind:
                report.problem("the seal row differs from the manifest's seal")
        secrets.check(table, columns, values)
        done += 1
        if progress is not None and done % 1000 == 0:
            progress(done)
    for name, summary in manifest.tables.items():
        if report.rows.get(name, 0) != summary.rows:
            report.problem(f"{name}: {report.rows.get(name, 0)} rows, the manifest says {summary.rows}")
    if [t for t in seen if t in manifest.tables] != [t for t in expected_order if report.rows.get(t)]:
        report.problem("the body's tables are out of order")
    return report, opened
