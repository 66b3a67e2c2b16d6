"""``openkms status``: is this installation healthy, and what does it hold? One screen for an operator, one JSON
object for a monitoring script, and an exit code either can act on.

Read from the database (never key material) and, with ``--endpoint``, from the server's ``/healthz``. What needs
someone's attention is listed with the reason and turns the exit code to 4, so ``openkms status || page-me``
works: an uninitialised or unmigrated database, a server that is sealed or unreachable, a background job that
stopped running while the server is up, keys past their deletion date whose material still exists.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from openkms import __version__
from openkms.cli.common import (
    HELP_WIDTH,
    add_storage_arguments,
    emit,
    emit_fields,
    iso,
    open_existing,
    redact_url,
    resolve_paths,
)
from openkms.jobs.registry import Job, registered_jobs
from openkms.seal.root_key import seal_kind
from openkms.storage.migrate import latest_version
from openkms.storage.ports import Storage

EXIT_ATTENTION = 4
PROBE_TIMEOUT_SECONDS = 3.0
JOB_OVERDUE_SECONDS = 900  # a job this late, with a server up, has stopped running
DELETION_GRACE_SECONDS = 3600  # the deletion job runs at every poll: an hour late means no server is running it
_SEAL_KINDS = {"keyfile": "key file (dev)", "passphrase": "passphrase"}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="health and contents of this installation (exit 4 when something needs attention)",
        description=textwrap.fill(
            "Health and contents of this installation: database and schema, seal, the server (with --endpoint), "
            "accounts, users, keys by state, the audit trail and its signed digests, background jobs. Anything "
            f"that needs attention is listed with the reason. Exit 0 when all is well, {EXIT_ATTENTION} when "
            "something needs attention, 1 when the database cannot be read.",
            width=HELP_WIDTH,
        ),
        epilog=(
            "examples:\n"
            "  openkms status\n"
            "  openkms status --endpoint http://127.0.0.1:8080 --json\n"
            "  openkms status --database-url postgresql://kms@db/openkms --endpoint https://kms.internal"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_storage_arguments(parser)
    parser.add_argument("--endpoint", default=None, help="also ask this server's /healthz (http:// or https://)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass
class _Report:
    fields: dict[str, Any] = field(default_factory=dict)
    attention: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    storage = open_existing(url, any_schema=True)
    try:
        report = _report(storage, url, str(data_dir), args.endpoint)
    finally:
        storage.close()
    if args.json:
        print(json.dumps({**report.fields, "Attention": report.attention, "Healthy": not report.attention}, indent=2))
    else:
        _print(report)
    return EXIT_ATTENTION if report.attention else 0


def _report(storage: Storage, url: str, data_dir: str, endpoint: str | None) -> _Report:
    report = _Report()
    now = time.time()
    latest = latest_version(storage.dialect)
    schema = storage.schema_version()
    report.fields["Version"] = __version__
    report.fields["Database"] = {"Url": redact_url(url), "Engine": storage.dialect, "Schema": schema,
                                 "SchemaOfThisRelease": latest}  # fmt: skip
    if storage.dialect == "sqlite":
        report.fields["DataDirectory"] = data_dir
    if schema != latest:
        report.attention.append(
            f"database schema {schema} is not this release's {latest}: "
            + ("start `openkms serve` once to migrate" if schema < latest else "it was written by a newer openkms")
        )
        return report  # the tables below may not be what this release reads
    kind = seal_kind(storage)
    report.fields["Seal"] = _SEAL_KINDS.get(kind or "", kind) if kind else "not initialised"
    if kind is None:
        report.attention.append("not initialised: run `openkms init` (or `openkms serve --dev`)")
    server_up = _probe(report, endpoint)
    _identities(report, storage)
    _keys(report, storage, now)
    _audit(report, storage)
    _jobs(report, storage, now, server_up)
    return report


def _probe(report: _Report, endpoint: str | None) -> bool:
    """The server's own answer (ok or sealed), or why there was none."""
    if endpoint is None:
        report.fields["Server"] = {"Status": "not checked (give --endpoint)"}
        return False
    health_url = endpoint.rstrip("/") + "/healthz"
    if not health_url.startswith(("http://", "https://")):
        report.attention.append(f"--endpoint {endpoint!r} is not an http:// or https:// URL")
        report.fields["Server"] = {"Endpoint": endpoint, "Status": "not checked"}
        return False
    status = "unreachable"
    try:
        with urllib.request.urlopen(health_url, timeout=PROBE_TIMEOUT_SECONDS) as response:  # noqa: S310 (scheme checked)
            status = json.loads(response.read()).get("status", "unknown")
    except urllib.error.HTTPError as exc:
        try:
            status = json.loads(exc.read()).get("status", f"HTTP {exc.code}")
        except ValueError:
            status = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        status = f"unreachable ({getattr(exc, 'reason', exc)})"
    report.fields["Server"] = {"Endpoint": endpoint, "Status": status}
    if status == "sealed":
        report.attention.append("the server is sealed: unseal it (POST /unseal or `openkms unseal`)")
    elif status != "ok":
        report.attention.append(f"the server at {endpoint} did not answer as healthy: {status}")
    return status == "ok"


def _identities(report: _Report, storage: Storage) -> None:
    with storage.read() as tx:
        accounts = tx.list_accounts()
        users = tx.list_users(None)
        access_keys = tx.list_access_keys(None, None)
    active = sum(1 for k in access_keys if k.status == "Active")
    report.fields["Accounts"] = len(accounts)
    report.fields["Users"] = len(users)
    report.fields["AccessKeys"] = {"Active": active, "Inactive": len(access_keys) - active}


def _keys(report: _Report, storage: Storage, now: float) -> None:
    with storage.read() as tx:
        counts = tx.count_keys()
        overdue = tx.keys_due_for_deletion(now - DELETION_GRACE_SECONDS, 1000)
    by_state: dict[str, int] = {}
    for count in counts:
        by_state[count.key_state] = by_state.get(count.key_state, 0) + count.count
    report.fields["Keys"] = {"Total": sum(by_state.values()), "ByState": dict(sorted(by_state.items())),
                             "Regions": sorted({c.region for c in counts})}  # fmt: skip
    if overdue:
        report.attention.append(
            f"{len(overdue)}{'+' if len(overdue) == 1000 else ''} key(s) are past their deletion date by over an "
            "hour and their material still exists: is a server running (its key-deletion job destroys it)?"
        )


def _audit(report: _Report, storage: Storage) -> None:
    with storage.read() as tx:
        head = tx.audit_head()
        first = tx.first_audit_seq()
        newest = tx.audit_range(head.seq - 1, 1) if head.seq else []
        digest = tx.last_digest()
    trail: dict[str, Any] = {
        "Records": head.seq - first + 1 if first is not None else 0,
        "LastSeq": head.seq,
        "NewestRecord": iso(newest[0].event_time) if newest else None,
        "SignedThroughSeq": digest.to_seq if digest else 0,
        "UnsignedRecords": head.seq - (digest.to_seq if digest else 0),
        "LastDigest": iso(digest.period_end) if digest else None,
    }
    if first is not None and first > 1:
        trail["PrunedThroughSeq"] = first - 1
    report.fields["Audit"] = trail


def _next_run(job: Job, next_run_at: float) -> str:
    """When a job with an interval runs next; one without runs at every poll."""
    return iso(next_run_at) if job.interval_seconds or job.cadence is not None else "each poll"


def _jobs(report: _Report, storage: Storage, now: float, server_up: bool) -> None:
    jobs = registered_jobs()
    with storage.read() as tx:
        leases = [tx.get_job_lease(job.name) for job in jobs]
    rows: list[dict[str, Any]] = []
    for job, lease in zip(jobs, leases, strict=True):
        if lease is None:
            rows.append({"Job": job.name, "Runs": 0, "Failures": 0, "LastFinished": None, "NextRun": None})
            continue
        rows.append(
            {
                "Job": job.name,
                "Runs": lease.runs,
                "Failures": lease.failures,
                "LastFinished": iso(lease.last_finished_at) if lease.last_finished_at else None,
                "NextRun": _next_run(job, lease.next_run_at) if lease.runs else None,
            }
        )
        late = now - lease.next_run_at
        if server_up and lease.runs and late > JOB_OVERDUE_SECONDS:
            report.attention.append(
                f"job {job.name} was due {late / 60:.0f} minutes ago and has not run: check the server's log"
            )
    report.fields["Jobs"] = rows


def _print(report: _Report) -> None:
    f = report.fields
    db = f["Database"]
    lines: list[tuple[str, Any]] = [
        ("Version", f"openkms {f['Version']}"),
        ("Database", f"{db['Url']} ({db['Engine']}, schema {db['Schema']} of {db['SchemaOfThisRelease']})"),
    ]
    if "DataDirectory" in f:
        lines.append(("DataDirectory", f["DataDirectory"]))
    if "Seal" in f:
        server = f["Server"]
        keys = f["Keys"]
        states = ", ".join(f"{state} {n}" for state, n in keys["ByState"].items())
        trail = f["Audit"]
        lines += [
            ("Seal", f["Seal"]),
            ("Server", f"{server.get('Endpoint', '')} {server['Status']}".strip()),
            ("Accounts", f["Accounts"]),
            (
                "Users",
                f"{f['Users']} ({f['AccessKeys']['Active']} active access keys, "
                f"{f['AccessKeys']['Inactive']} inactive)",
            ),
            ("Keys", f"{keys['Total']}" + (f" ({states})" if states else "")),
            (
                "Audit",
                f"{trail['Records']:,} records, newest {trail['NewestRecord'] or '-'}; signed through "
                f"seq {trail['SignedThroughSeq']:,} ({trail['UnsignedRecords']:,} not yet), last digest "
                f"{trail['LastDigest'] or '-'}",
            ),
        ]
    emit_fields(lines)
    if "Jobs" in f:
        print()
        emit([{k: ("-" if v is None else v) for k, v in row.items()} for row in f["Jobs"]],
             ["Job", "Runs", "Failures", "LastFinished", "NextRun"], False)  # fmt: skip
    print()
    if report.attention:
        print("Needs attention:")
        for item in report.attention:
            print(f"  - {item}")
    else:
        print("All well.")
