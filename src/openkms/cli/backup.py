"""``openkms backup``, ``openkms backup verify`` and ``openkms restore`` (docs/operations.md).

A backup is taken online, from the database the server serves; verifying and restoring need the root of trust
the backup was made under (the passphrase, or the key file of a dev install), which opens the seal record the
backup carries. A restore writes only into an empty database (or, with ``--force``, one whose rows it replaces),
through :func:`openkms.backup.restore.restore_backup`, the named entry point ``tests/test_architecture.py`` lists.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from openkms.backup import archive
from openkms.backup.restore import restore_backup
from openkms.backup.snapshot import take_backup
from openkms.backup.verify import Report, verify_backup
from openkms.cli.common import (
    CliError,
    Progress,
    add_storage_arguments,
    open_existing,
    read_passphrase,
    resolve_paths,
    root_key_for_admin,
)
from openkms.seal import keyfile
from openkms.seal.base import UnsealError
from openkms.seal.root_key import open_seal
from openkms.storage.factory import open_storage, sqlite_file

VERIFY_FAILED = 1


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="write a signed, consistent backup of the database (online)",
        description=(
            "Write every table, read in one snapshot while the server serves, to FILE (mode 0600): a manifest "
            "signed with a key derived from the root key, then the rows; key material stays wrapped under the "
            "root key. Needs the root of trust, as `openkms iam` changes do. Examples: openkms backup --output "
            "/backups/openkms-$(date +%F).okb ; openkms backup verify /backups/openkms-2026-12-08.okb"
        ),
    )
    add_storage_arguments(backup)
    backup.add_argument("--output", "--out", type=Path, default=None, metavar="FILE", help="the backup file")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    backup.add_argument("--passphrase-file", type=Path, default=None, help="the unseal passphrase, from a file")
    backup.add_argument("--json", action="store_true")
    commands = backup.add_subparsers(dest="backup_command", required=False)
    verify = commands.add_parser(
        "verify",
        help="check a backup with the root key",
        description=(
            "Check FILE: its format, the manifest's signature, the body's hash and row counts, and that every "
            "wrapped secret opens with the root key. Exit 1 naming what is wrong. Example: openkms backup verify "
            "/backups/openkms-2026-12-08.okb --passphrase-file /root/unseal.txt"
        ),
    )
    verify.add_argument("file", type=Path, metavar="FILE")
    _add_root_of_trust(verify)
    verify.add_argument("--json", action="store_true", dest="verify_json")

    restore = subparsers.add_parser(
        "restore",
        help="restore a backup into a new data directory or an empty database",
        description=(
            "Check FILE with the root key, then write it into an empty database (a non-empty one only with "
            "--force), in one transaction. Afterwards `openkms serve` starts and unseals with the same root of "
            "trust. Example: openkms restore --from /backups/openkms-2026-12-08.okb --data-dir /var/lib/openkms"
        ),
    )
    add_storage_arguments(restore)
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE", help="the backup file")
    restore.add_argument("--force", action="store_true", help="replace whatever the target database holds")
    _add_root_of_trust(restore)
    restore.add_argument("--json", action="store_true")


def _add_root_of_trust(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file", type=Path, default=None, help="the unseal passphrase (else env or a prompt)"
    )
    parser.add_argument(
        "--keyfile", type=Path, default=None, help="the root.keyfile of a dev install (default: the data directory's)"
    )


def _root_key_of_backup(path: Path, args: argparse.Namespace, default_keyfile: Path | None) -> bytes:
    """The root key the backup's seal record holds, opened with what the operator gives."""
    try:
        seal = archive.read_seal(path)
        if seal.kind == keyfile.KIND:
            given = args.keyfile or default_keyfile
            if given is None or not given.is_file():
                raise CliError("this backup was made under a key file (a dev install): give --keyfile")
            return open_seal(seal, keyfile_path=given)
        return open_seal(seal, secret=read_passphrase(args.passphrase_file))
    except (archive.BackupError, UnsealError) as exc:
        raise CliError(str(exc)) from None


def run_backup(args: argparse.Namespace) -> int:
    if args.backup_command == "verify":
        return _run_verify(args)
    if args.output is None:
        raise CliError("give --output FILE (or `openkms backup verify FILE`)")
    data_dir, url = resolve_paths(args)
    storage = open_existing(url)
    progress = Progress("backing up rows")
    try:
        root_key = root_key_for_admin(storage, data_dir, args.passphrase_file)
        started = time.monotonic()
        manifest = take_backup(storage, root_key, args.output.absolute(), force=args.force, progress=progress.update)
        seconds = time.monotonic() - started
    except archive.BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish()
        storage.close()
    summary = {
        "file": str(args.output),
        "rows": {name: t.rows for name, t in manifest.tables.items()},
        "auditHead": {"seq": manifest.audit_head_seq, "hash": manifest.audit_head_hash},
        "bytes": args.output.stat().st_size,
        "snapshotSeconds": manifest.snapshot_seconds,
        "seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"wrote {args.output}: {manifest.total_rows:,} rows ({manifest.tables['keys'].rows:,} keys), "
            f"{summary['bytes']:,} bytes, audit head {manifest.audit_head_seq}; one snapshot held "
            f"{manifest.snapshot_seconds:.3f} s"
        )
        print("It is useless without the root of trust (the passphrase or key file): keep the two apart.")
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    root_key = _root_key_of_backup(args.file, args, None)
    progress = Progress("checking rows")
    try:
        report = verify_backup(args.file, root_key, progress.update)
    except archive.BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish()
    _print_report(report, args.verify_json, f"{args.file}: ")
    return 0 if report.ok else VERIFY_FAILED


def _print_report(report: Report, as_json: bool, prefix: str) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    data: dict[str, Any] = report.as_dict()
    if report.ok:
        opened = sum(report.secrets_opened.values())
        print(
            f"{prefix}ok: {sum(report.rows.values()):,} rows in {len(report.rows)} tables; wrapped secrets that open "
            f"with the root key: {opened:,}; audit head {report.manifest.audit_head_seq}"
        )
    else:
        print(f"{prefix}NOT sound:")
        for problem in data["problems"]:
            print(f"  {problem}")


def run_restore(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    default_keyfile = data_dir / keyfile.KEYFILE_NAME
    root_key = _root_key_of_backup(args.source, args, default_keyfile)
    database_file = sqlite_file(url)
    if database_file is not None:
        Path(database_file).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage = open_storage(url)
    progress = Progress("restoring rows")
    try:
        report = restore_backup(storage, args.source, root_key, force=args.force, progress=progress.update)
    except archive.BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        progress.finish()
        storage.close()
    if report.manifest.seal.kind == keyfile.KIND and args.keyfile is not None and not default_keyfile.exists():
        _copy_keyfile(args.keyfile, default_keyfile)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"restored {sum(report.rows.values()):,} rows from {args.source} (audit head "
            f"{report.manifest.audit_head_seq}). Next: openkms audit verify, then openkms serve and unseal with the "
            "same root of trust."
        )
    return 0


def _copy_keyfile(source: Path, target: Path) -> None:
    """A dev install's key file, beside the restored database, so ``serve --dev`` unseals it (mode 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
        out.flush()
        os.fsync(out.fileno())
