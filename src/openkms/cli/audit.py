"""``openkms audit ...``: query, export and verify the audit trail, and show the keys that sign it.

Every command works straight against the data directory or database (``--data-dir``/``--database-url``),
also while the server runs: reads take their own snapshot, and an export or a verification stops at the
chain's head as it was when the command started. Output is a table, or JSON with ``--json``. Exit codes:
0 done, 1 refused or failed, 2 a usage error (also a refused value, printed as ``ValidationException: ...``),
3 ``verify`` found the trail altered. Long work (export, verify) shows progress on stderr when it is a
terminal. docs/audit.md ("Operating the trail") has the details.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import functools
import io
import ipaddress
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openkms import ids
from openkms.audit import anchor as audit_anchor
from openkms.audit import digests as audit_digests
from openkms.audit import exportfmt, verify
from openkms.cli import cloudtrail, exports, signing_keys
from openkms.cli.common import (
    CliError,
    CliNotFoundError,
    CliValidationError,
    Progress,
    add_subcommand,
    emit,
    iso,
    only_account,
    open_existing,
    parse_time,
    resolve_paths,
    root_key_for_admin,
)
from openkms.operations import registry
from openkms.settings import DEFAULT_REGION, ENV_AUDIT_ANCHOR_DIR
from openkms.storage.audit import AuditFilter, AuditHead, AuditRow, DigestRow, SigningKeyRow
from openkms.storage.ports import Storage

ANCHOR_DIR_ENV = ENV_AUDIT_ANCHOR_DIR.name  # the same variable `openkms serve` reads
EXIT_ALTERED = 3  # `verify` found a problem: distinct from 1 (could not run) so scripts can tell them apart
DEFAULT_LIMIT = 50
MAX_LIMIT = 10_000
PAGE = 5_000
QUERY_COLUMNS = ["Seq", "EventTime", "EventName", "Outcome", "Principal", "KeyId", "SourceIP", "RequestId"]
REPORT_COLUMNS = ["Ok", "Records", "Digests", "FirstSeq", "LastSeq", "UnsignedTail"]
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,127}$")


class _Context:
    """One command's arguments and, opened at first use, its database: verifying an export needs none, and a
    refused argument is reported before a missing database is."""

    def __init__(self, args: argparse.Namespace, data_dir: Path, url: str) -> None:
        self.args = args
        self.data_dir = data_dir
        self._url = url

    @functools.cached_property
    def storage(self) -> Storage:
        return open_existing(self._url)

    def close(self) -> None:
        if "storage" in self.__dict__:
            self.storage.close()


# ---- parser --------------------------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="query, export and verify the audit trail",
        description=(
            "Query, export and verify the audit trail (one CloudTrail-shaped record per API call, hash-chained "
            "and signed). Example: openkms audit query --key-id alias/payments --since 24h"
        ),
    )
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, details: str, *examples: str) -> argparse.ArgumentParser:
        parser = add_subcommand(commands, "audit", name, help_text, details, *examples)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        return parser

    query = command(
        "query",
        "list audit records, newest first, filtered",
        "Every filter given must match. A page holds --limit records; when more match, the last line names the "
        "--before-seq that shows the next (older) page. With --json: a JSON array of the full CloudTrail events, "
        'each with its "seq".',
        "--key-id alias/payments --since 24h",
        "--principal alice --operation Decrypt --outcome failure --json",
        "--outcome AccessDeniedException --source-ip 203.0.113.7 --since 2026-11-01 --until 2026-11-08",
        "--limit 100 --before-seq 123456",
    )
    query.add_argument("--key-id", help="key id, key ARN, alias name or alias ARN (records naming the key)")
    query.add_argument("--principal", help="IAM ARN, or a user name of the account (--account-id)")
    query.add_argument("--operation", help="API operation (eventName), e.g. Decrypt")
    query.add_argument("--outcome", help="success, failure, or an error code such as AccessDeniedException")
    query.add_argument("--source-ip", help="the caller's IP address (sourceIPAddress)")
    query.add_argument("--since", help="from this time on: ISO-8601 (2026-11-28T10:00:00Z) or an age (24h, 7d)")
    query.add_argument("--until", help="before this time: ISO-8601 or an age")
    query.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"records per page (default {DEFAULT_LIMIT})")
    query.add_argument("--before-seq", type=int, default=None, help="only records older than this seq (paging)")
    query.add_argument("--account-id", default=None, help="account of alias and user names (default: the only one)")
    query.add_argument("--region", default=DEFAULT_REGION, help=f"region of alias names (default {DEFAULT_REGION})")

    export = command(
        "export",
        "write the whole trail to a file",
        "jsonl (default): one header line, every signed digest, then every record in seq order; `openkms audit "
        'verify --export FILE` checks it offline. cloudtrail: gzip files of {"Records": [...]}, one per account, '
        "region and UTC hour, named as CloudTrail names them, in the directory --output. Files are written only "
        "inside <data-dir>/exports/ (a 0700 directory; files 0600; never over an existing file); --output - "
        "writes jsonl to stdout.",
        "--output trail-2026-11.jsonl",
        "--output - > /secure/place/trail.jsonl",
        "--format cloudtrail --output cloudtrail-2026-11",
        "--sign-now --output trail.jsonl     (sign a digest first: needs the root key)",
    )
    export.add_argument("--format", choices=["jsonl", "cloudtrail"], default="jsonl")
    export.add_argument("--output", default="-", help="a name under <data-dir>/exports/, or - for stdout (jsonl)")
    _sign_arguments(export)

    check = command(
        "verify",
        "check that the trail is complete and unaltered",
        "Checks the hash chain, the signed digests and (in the database) the indexed columns, and names the first "
        "problem. Pin the signing key with --public-key (from `openkms audit public-key`); without it the keys "
        "stored beside the trail are trusted, which guards against accidents, not against someone who could "
        "replace them. With --anchor-dir, the database is also checked against the digests the server delivered "
        "outside it, which shows a tail cut together with its digests. Calls recorded over more than two digest "
        "intervals after the newest digest are reported as stale. "
        f"Exit 0 when intact, {EXIT_ALTERED} when a problem is found, 1 when it could not check.",
        "--public-key audit-signing-key.pem --anchor-dir /mnt/openkms-anchor",
        "--export exports/trail.jsonl --public-key audit-signing-key.pem --json",
        "--sign-now     (sign a digest of the newest records first: needs the root key)",
    )
    check.add_argument(
        "--export", type=Path, default=None, help="verify this JSON-lines export instead of the database"
    )
    check.add_argument(
        "--anchor-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="check the database against the digests the server anchored in DIR (`serve --audit-anchor-dir`): "
        f"records or digests deleted after them show as truncation (default: env {ANCHOR_DIR_ENV})",
    )
    check.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a trusted signing key: PEM (as `public-key` prints it) or DER SubjectPublicKeyInfo; repeatable",
    )
    _sign_arguments(check)

    command(
        "public-key",
        "print the public keys that sign the trail's digests",
        "PEM, each block preceded by its Key-Id; save it where the trail's writers cannot change it and give it to "
        "`verify --public-key`.",
        "> audit-signing-key.pem",
        "--json",
    )


def _sign_arguments(parser: argparse.ArgumentParser) -> None:
    # --seal-now was its name until "seal" came to mean only the root of trust; the old spelling still works.
    parser.add_argument(
        "--sign-now",
        "--seal-now",
        dest="sign_now",
        action="store_true",
        help="sign a digest of every record so far first (needs the root key)",
    )
    parser.add_argument("--passphrase-file", type=Path, default=None, help="unseal passphrase for --sign-now (or env)")


# ---- commands ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    context = _Context(args, data_dir, url)
    try:
        return COMMANDS[args.audit_command](context)
    finally:
        context.close()


# -- query


def key_filter(storage: Storage, value: str, account_id: str | None, region: str) -> str:
    """The key id ``value`` names: a key id or key ARN directly, an alias through its current target."""
    ref = ids.parse_key_reference(value)
    if ref is None:
        raise CliValidationError(f"--key-id {value!r} is not a key id, key ARN, alias name or alias ARN")
    if ref.key_id is not None:
        return ref.key_id
    assert ref.alias_name is not None
    account = ref.account or only_account(storage, account_id)
    region = ref.region or region
    with storage.read() as tx:
        alias = tx.get_alias(account, region, ref.alias_name)
    if alias is None:
        raise CliNotFoundError(f"Alias {ids.alias_arn(region, account, ref.alias_name)} is not found.")  # AWS's words
    return alias.target_key_id


def _principal_arn(storage: Storage, value: str, account_id: str | None) -> str:
    if value.startswith("arn:"):
        return value
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", value):
        raise CliValidationError(f"--principal {value!r} is neither an ARN nor a user name")
    return ids.user_arn(only_account(storage, account_id), value)


def _operation_name(value: str) -> str:
    known = {name.lower(): name for name in registry.recorded_event_names()}
    found = known.get(value.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(value, sorted(known.values()), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise CliValidationError(f"--operation {value!r} is not an operation this service records{hint}")


def _outcome(value: str) -> str:
    if value.lower() in ("success", "failure"):
        return value.lower()
    if not _ERROR_CODE.match(value):
        raise CliValidationError(f"--outcome {value!r}: give success, failure or an error code")
    return value


def _source_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise CliValidationError(f"--source-ip {value!r} is not an IP address") from None


def _filter(c: _Context) -> AuditFilter:
    a = c.args
    if not 1 <= a.limit <= MAX_LIMIT:
        raise CliValidationError(f"--limit must be between 1 and {MAX_LIMIT}")
    if a.before_seq is not None and a.before_seq < 1:
        raise CliValidationError("--before-seq must be a positive record number")
    now = time.time()
    since = parse_time(a.since, now) if a.since else None
    until = parse_time(a.until, now) if a.until else None
    if since is not None and until is not None and since >= until:
        raise CliValidationError("--since must be earlier than --until")
    return AuditFilter(
        key_id=key_filter(c.storage, a.key_id, a.account_id, a.region) if a.key_id else None,
        principal_arn=_principal_arn(c.storage, a.principal, a.account_id) if a.principal else None,
        event_name=_operation_name(a.operation) if a.operation else None,
        outcome=_outcome(a.outcome) if a.outcome else None,
        source_ip=_source_ip(a.source_ip) if a.source_ip else None,
        since=since,
        until=until,
        before_seq=a.before_seq,
    )


def _query_row(row: AuditRow) -> dict[str, Any]:
    return {
        "Seq": row.seq,
        "EventTime": iso(row.event_time),
        "EventName": row.event_name,
        "Outcome": row.error_code or "success",
        "Principal": row.principal_arn or "-",
        "KeyId": ",".join(k for k in (row.key_id, row.other_key_id) if k) or "-",
        "SourceIP": row.source_ip or "-",
        "RequestId": row.request_id,
    }


def _query(c: _Context) -> int:
    where = _filter(c)
    limit: int = c.args.limit
    with c.storage.read() as tx:
        found = tx.query_audit(where, limit + 1)
    page = found[:limit]
    if c.args.json:
        print(json.dumps([{"seq": row.seq, **json.loads(row.event)} for row in page], indent=2, ensure_ascii=False))
        return 0
    emit([_query_row(row) for row in page], QUERY_COLUMNS, False)
    if len(found) > limit:
        print(f"more: repeat with --before-seq {page[-1].seq} for the next page")
    return 0


# -- export


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What an export or verification covers: fixed when it starts, so later appends are not its concern."""

    head: AuditHead
    first_seq: int | None
    digests: list[DigestRow]
    keys: list[SigningKeyRow]

    @property
    def records(self) -> int:
        return 0 if self.first_seq is None else max(0, self.head.seq - self.first_seq + 1)


def _snapshot(storage: Storage) -> _Snapshot:
    with storage.read() as tx:
        head = tx.audit_head()
        first = tx.first_audit_seq()
        keys = tx.list_signing_keys()
        found: list[DigestRow] = []
        while True:
            page = tx.list_digests(found[-1].digest_seq if found else 0, PAGE)
            found.extend(page)
            if len(page) < PAGE:
                break
    # A digest signed after the head was read would cover records this snapshot leaves out.
    return _Snapshot(head, first, [d for d in found if d.to_seq <= head.seq], keys)


def _records(storage: Storage, through_seq: int, progress: Progress) -> Iterator[AuditRow]:
    """Records up to ``through_seq`` in seq order, one read snapshot per page."""
    after, done = 0, 0
    while True:
        with storage.read() as tx:
            page = [row for row in tx.audit_range(after, PAGE) if row.seq <= through_seq]
        yield from page
        done += len(page)
        progress.update(done)
        if len(page) < PAGE:
            return
        after = page[-1].seq


def _sign_now(c: _Context) -> None:
    root_key = root_key_for_admin(c.storage, c.data_dir, c.args.passphrase_file)
    audit_digests.write_digest(c.storage, root_key, time.time(), 0.0, force=True)


def _unsigned_note(snapshot: _Snapshot) -> None:
    signed_to = max((d.to_seq for d in snapshot.digests), default=0)
    if snapshot.head.seq > signed_to and snapshot.records:
        first = max(signed_to + 1, snapshot.first_seq or 1)
        print(
            f"openkms: note: records {first}..{snapshot.head.seq} follow the last signed digest; the hash chain "
            "protects them, no signature does yet (--sign-now signs one first)",
            file=sys.stderr,
        )


def _write_jsonl(c: _Context, snapshot: _Snapshot, write: Callable[[str], object]) -> int:
    progress = Progress("exporting records", snapshot.records)
    write(exportfmt.header_line(snapshot.keys, iso(time.time())))
    for digest in snapshot.digests:
        write(exportfmt.digest_line(digest))
    count = 0
    for row in _records(c.storage, snapshot.head.seq, progress):
        write(exportfmt.record_line(row))
        count += 1
    progress.finish()
    return count


def _write_cloudtrail(c: _Context, snapshot: _Snapshot, directory: exports.NewFiles) -> tuple[int, list[str]]:
    progress = Progress("exporting records", snapshot.records)
    files = cloudtrail.HourFiles(directory)
    count = 0
    try:
        for row in _records(c.storage, snapshot.head.seq, progress):
            event = json.loads(row.event)
            account = str(event.get("recipientAccountId") or "unknown")
            region = str(event.get("awsRegion") or "unknown")
            files.add(account, region, int(row.event_time // 3600), row.event)
            count += 1
    finally:
        files.close()
        progress.finish()
    return count, files.files


def _export(c: _Context) -> int:
    a = c.args
    if a.format == "cloudtrail" and a.output == "-":
        raise CliValidationError(
            f"--format cloudtrail writes several files: give --output NAME, a directory under {c.data_dir}/exports/"
        )
    if a.output != "-":
        exports.relative_name(c.data_dir, a.output)  # refuse a bad name before signing or reading anything
    if a.sign_now:
        _sign_now(c)
    snapshot = _snapshot(c.storage)
    summary: dict[str, Any] = {"Format": a.format}
    if a.output == "-":
        _write_jsonl(c, snapshot, sys.stdout.write)
        sys.stdout.flush()
        _unsigned_note(snapshot)
        return 0
    if a.format == "jsonl":
        with exports.new_file(c.data_dir, a.output) as (stream, path):
            count = _write_jsonl(c, snapshot, lambda line: stream.write(line.encode("utf-8")))
        summary.update(Path=str(path), Records=count, Digests=len(snapshot.digests))
    else:
        with exports.new_directory(c.data_dir, a.output) as directory:
            count, files = _write_cloudtrail(c, snapshot, directory)
        summary.update(Path=str(directory.path), Records=count, Files=len(files))
        if a.json:
            summary["FileNames"] = files
    _unsigned_note(snapshot)
    columns = [k for k in summary if k != "FileNames"]
    emit([summary], columns, a.json, single=True)
    return 0


# -- verify


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it, for progress."""

    def __init__(self, raw: io.BufferedReader, progress: Progress) -> None:
        self._raw = raw
        self._progress = progress
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        self.count += n
        self._progress.update(self.count)
        return n


def _verify_export(path: Path, pinned: list[tuple[str | None, bytes]]) -> verify.Report:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    with raw:
        try:
            header = json.loads(raw.readline())
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("type") != "header" or header.get("format") != exportfmt.FORMAT:
            raise CliError(f"{path} is not an openkms audit export (see `openkms audit export`)")
        raw.seek(0)
        known = signing_keys.listed_keys(header.get("signingKeys"))
        keys = signing_keys.pinned_mapping(pinned, known) if pinned else None
        progress = Progress("verifying export (bytes)", path.stat().st_size)
        stream = io.TextIOWrapper(io.BufferedReader(_CountingReader(raw, progress)), encoding="utf-8")
        try:
            return verify.verify_export(stream, keys)
        except (ValueError, KeyError, TypeError) as exc:  # an edited line: the file no longer parses as an export
            return verify.Report(problems=[f"export is malformed: {exc}"])
        finally:
            progress.finish()


def _verify(c: _Context) -> int:
    a = c.args
    pinned = [key for path in a.public_key for key in signing_keys.load_public_keys(path)]
    anchored: audit_anchor.AnchoredFiles | None = None
    if a.export is not None:
        if a.sign_now:
            raise CliValidationError("--sign-now signs the database trail; it does not apply to --export")
        if a.anchor_dir is not None:
            raise CliValidationError(
                "--anchor-dir checks the database's trail; an export ends where it was taken (verify the database)"
            )
        report = _verify_export(a.export, pinned)
    else:
        if a.sign_now:
            _sign_now(c)
        keys = None
        if pinned:
            known = [(k.key_id, k.public_key) for k in audit_digests.public_keys(c.storage)]
            keys = signing_keys.pinned_mapping(pinned, known)
        # The environment is read here, not as the flag's default: with --export a set variable is no error.
        from_env = ENV_AUDIT_ANCHOR_DIR.text()
        anchor_dir = a.anchor_dir or (Path(from_env) if from_env else None)
        if anchor_dir is not None:  # read before the database: whatever it holds, the database held first
            try:
                anchored = audit_anchor.read_directory(anchor_dir)
            except audit_anchor.AnchorError as exc:
                raise CliValidationError(str(exc)) from None
            except OSError as exc:
                raise CliError(f"cannot read the anchor directory {anchor_dir}: {exc.strerror or exc}") from None
        with c.storage.read() as tx:
            total = tx.audit_head().seq
        progress = Progress("verifying records", total)
        try:
            report = verify.verify_storage(c.storage, keys, progress=progress.update, anchor=anchored)
        finally:
            progress.finish()
    if not pinned:
        print(
            "openkms: note: no --public-key given, so the signing keys stored beside the trail were trusted; pin the "
            "key from `openkms audit public-key` to guard against someone who could replace them",
            file=sys.stderr,
        )
    result = report.as_dict()
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        row = {
            "Ok": "yes" if report.ok else "NO",
            "Records": report.records,
            "Digests": report.digests,
            "FirstSeq": "-" if report.first_seq is None else report.first_seq,
            "LastSeq": "-" if report.last_seq is None else report.last_seq,
            "UnsignedTail": report.unsigned_tail,
            "Anchored": "-" if report.anchored_digest_seq is None else f"digest {report.anchored_digest_seq}",
        }
        emit([row], REPORT_COLUMNS + (["Anchored"] if anchored is not None else []), False)
        for problem in report.problems:
            print(f"problem: {problem}")
    return 0 if report.ok else EXIT_ALTERED


# -- public-key


def _public_key(c: _Context) -> int:
    keys = audit_digests.public_keys(c.storage)
    if not keys:
        raise CliError(
            "no signing key yet: the first signed digest creates it (or run `openkms audit verify --sign-now`)"
        )
    if c.args.json:
        rows = [
            {
                "KeyId": k.key_id,
                "Algorithm": k.algorithm,
                "CreatedAt": iso(k.created_at),
                "PublicKey": base64.b64encode(k.public_key).decode("ascii"),
                "Pem": signing_keys.pem(k.public_key),
            }
            for k in keys
        ]
        print(json.dumps(rows, indent=2))
        return 0
    blocks = [signing_keys.labelled_pem(k) for k in keys]
    sys.stdout.write("\n".join(blocks))
    return 0


# Every subcommand and what runs it; add_parser declares the same names.
COMMANDS: dict[str, Callable[[_Context], int]] = {
    "query": _query,
    "export": _export,
    "verify": _verify,
    "public-key": _public_key,
}
