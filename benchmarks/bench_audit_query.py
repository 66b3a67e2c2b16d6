"""Benchmark: ``openkms audit query`` on a trail of a million records (issue: "a filtered query under 100 ms").

    .venv/bin/python benchmarks/bench_audit_query.py [--records 1000000] [--postgres] [--repeat 25]

Builds a trail straight through storage: synthetic calls (``audit.events.build``, so every record has the
shape and size of a real one) over 30 days, across ``--keys`` keys and ``--principals`` IAM users, appended
with ``audit.log.append`` in transactions of ``--batch`` records, into SQLite in a temporary directory (and,
with ``--postgres``, into a fresh PostgreSQL database next to ``--postgres-url``, dropped afterwards, then
``VACUUM ANALYZE``d as autovacuum would have done). The mix:
Decrypt 40 %, Encrypt 24 %, GenerateDataKey 20 %, DescribeKey 5 %, ReEncrypt 3 % (two keys), Sign 3 %,
ListKeys 5 % (no key); 97 % succeed, 2 % AccessDeniedException, 1 % NotFoundException; 200 source addresses,
plus one that appears only 20 times (the forensic question "what did this address do?").

Then it times each query type ``--repeat`` times, with a different key, principal, window... each time, as
``openkms audit query`` runs it (one read transaction, ``query_audit(filter, limit + 1)``, limit 50), after two
untimed warm-up runs, and prints the median and p95 in milliseconds. The queries of the issue must each take
under 100 ms (median and p95): by key, by principal, by operation and outcome, key and time range, the newest
page without filter, and page 10 (following ``--before-seq``). The extra rows (time windows alone and with an
operation, failures, source addresses) are printed with the same verdict but do not decide the exit status:
a rare source address without a time window has no index to use and scans the table (docs/audit.md).

Exit status 0 if every query type of the issue met the target on every engine, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from openkms.audit import events
from openkms.audit import log as audit_log
from openkms.context import AuditNote, Principal
from openkms.storage.audit import AuditFilter, AuditRecord
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEFAULT_POSTGRES_ADMIN_URL, postgres_database

TARGET_MS = 100.0
LIMIT = 50
SPAN_SECONDS = 30 * 86400
START = 1_790_000_000.0  # 2026-09-21: any fixed point; the trail covers the 30 days after it
END = START + SPAN_SECONDS
ACCOUNT = "111122223333"
REGION = "us-east-1"
RARE_IP = "198.51.100.23"
RARE_IP_RECORDS = 20
USER_AGENT = (
    "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.8 md/arch#x86_64 lang/python#3.11.9 cfg/retry-mode#legacy"
)
# (operation, share in percent)
MIX: tuple[tuple[str, int], ...] = (
    ("Decrypt", 40),
    ("Encrypt", 24),
    ("GenerateDataKey", 20),
    ("DescribeKey", 5),
    ("ReEncrypt", 3),
    ("Sign", 3),
    ("ListKeys", 5),
)


@dataclass(frozen=True, slots=True)
class World:
    keys: list[str]
    principals: list[Principal]
    ips: list[str]


def make_world(keys: int, principals: int) -> World:
    rng = random.Random(7)
    key_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(keys)]
    users = [
        Principal(
            ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/app-{n:03d}", f"app-{n:03d}", f"AKIABENCH{n:011d}", f"AIDA{n:017d}"
        )
        for n in range(principals)
    ]
    ips = [f"10.{n // 250}.{n % 250}.{(n * 7) % 250 + 1}" for n in range(200)]
    return World(key_ids, users, ips)


_OPERATIONS = [operation for operation, _ in MIX]
_WEIGHTS = [share for _, share in MIX]


def _arn(key_id: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


def synthetic_event(world: World, rng: random.Random, at: float, ip: str) -> AuditRecord:
    operation = rng.choices(_OPERATIONS, _WEIGHTS)[0]
    key = rng.choice(world.keys)
    note = AuditNote()
    params: dict[str, Any] = {}
    if operation == "Decrypt":
        params = {"CiphertextBlob": b"\x01" * 180, "EncryptionContext": {"app": "bench", "tenant": "t-17"}}
    elif operation in ("Encrypt", "GenerateDataKey", "DescribeKey"):
        params = {"KeyId": key, "EncryptionContext": {"app": "bench"}} if operation != "DescribeKey" else {"KeyId": key}
        if operation == "Encrypt":
            params["Plaintext"] = b"secret"
        if operation == "GenerateDataKey":
            params["KeySpec"] = "AES_256"
    elif operation == "ReEncrypt":
        params = {"CiphertextBlob": b"\x01" * 180, "DestinationKeyId": rng.choice(world.keys)}
    elif operation == "Sign":
        params = {"KeyId": key, "Message": b"m" * 32, "SigningAlgorithm": "ECDSA_SHA_256"}
    outcome = rng.randrange(100)
    error = "AccessDeniedException" if outcome < 2 else "NotFoundException" if outcome < 3 else None
    if operation != "ListKeys" and error != "NotFoundException":
        note.add_key(_arn(key), "ECC_NIST_P256" if operation == "Sign" else "SYMMETRIC_DEFAULT")
        if operation == "ReEncrypt":
            note.add_key(_arn(params["DestinationKeyId"]), "SYMMETRIC_DEFAULT")
    principal = rng.choice(world.principals)
    call = events.Call(
        request_id=str(uuid.uuid4()),
        time=at,
        source_ip=ip,
        user_agent=USER_AGENT,
        region=REGION,
        operation=operation,
        principal=principal,
        params=params,
        note=note,
    )
    message = f"User: {principal.arn} is not authorized to perform: kms:{operation}" if error else None
    return events.build(call, error, message)


def build_trail(storage: Storage, world: World, records: int, batch: int) -> float:
    """Append ``records`` synthetic records; returns the seconds it took."""
    rng = random.Random(11)
    rare = set(rng.sample(range(records), min(RARE_IP_RECORDS, records)))
    started = time.perf_counter()
    for first in range(0, records, batch):
        chunk = []
        for i in range(first, min(records, first + batch)):
            at = START + SPAN_SECONDS * i / records + rng.random()
            chunk.append(synthetic_event(world, rng, at, RARE_IP if i in rare else rng.choice(world.ips)))
        with storage.transaction() as tx:
            audit_log.append(tx, chunk)
        done = first + len(chunk)
        if done % (batch * 20) == 0 or done == records:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:>9,} records  ({rate:,.0f}/s)", flush=True)
    return time.perf_counter() - started


# -- the queries ---------------------------------------------------------------------------------------------------

Query = Callable[[Storage, random.Random], AuditFilter]


def _page_10(storage: Storage, where: AuditFilter) -> AuditFilter:
    """The filter of page 10: follow --before-seq through pages 1..9 (untimed), return page 10's."""
    before: int | None = None
    for _ in range(9):
        with storage.read() as tx:
            rows = tx.query_audit(replace(where, before_seq=before), LIMIT + 1)
        if len(rows) < LIMIT:  # a small trail: fewer than 10 pages
            break
        before = rows[LIMIT - 1].seq
    return replace(where, before_seq=before)


def queries(world: World) -> list[tuple[str, bool, Query]]:
    """(name, asked for by the issue, a filter maker that draws fresh values each time)."""

    def window(rng: random.Random, days: float) -> tuple[float, float]:
        since = START + rng.uniform(2, 30 - days - 1) * 86400
        return since, since + days * 86400

    def key_and_time(_: Storage, rng: random.Random) -> AuditFilter:
        since, until = window(rng, 3)
        return AuditFilter(key_id=rng.choice(world.keys), since=since, until=until)

    def time_only(days: float) -> Query:
        return lambda _s, rng: AuditFilter(since=(w := window(rng, days))[0], until=w[1])

    def last_day(_: Storage, rng: random.Random) -> AuditFilter:
        return AuditFilter(since=END - 86400 - rng.uniform(0, 3600))

    def operation_and_day(_: Storage, rng: random.Random) -> AuditFilter:
        since, until = window(rng, 1)
        return AuditFilter(event_name=rng.choice(["Decrypt", "Encrypt", "GenerateDataKey"]), since=since, until=until)

    def rare_ip_and_day(_: Storage, rng: random.Random) -> AuditFilter:
        since, until = window(rng, 1)
        return AuditFilter(source_ip=RARE_IP, since=since, until=until)

    return [
        ("key", True, lambda _s, rng: AuditFilter(key_id=rng.choice(world.keys))),
        ("principal", True, lambda _s, rng: AuditFilter(principal_arn=rng.choice(world.principals).arn)),
        (
            "operation+outcome",
            True,
            lambda _s, rng: AuditFilter(
                event_name=rng.choice(["Decrypt", "Encrypt", "GenerateDataKey"]), outcome="AccessDeniedException"
            ),
        ),
        ("key+time range (3 days)", True, key_and_time),
        ("newest page, no filter", True, lambda _s, _rng: AuditFilter()),
        ("page 10, no filter", True, lambda s, rng: _page_10(s, AuditFilter())),
        (
            "page 10, principal",
            True,
            lambda s, rng: _page_10(s, AuditFilter(principal_arn=rng.choice(world.principals).arn)),
        ),
        ("since 24h (open end)", False, last_day),
        ("time range alone (1 day)", False, time_only(1)),
        ("time range alone (7 days)", False, time_only(7)),
        ("time range, whole trail", False, lambda _s, _rng: AuditFilter(since=START, until=END - 60)),
        ("operation+time range (1 day)", False, operation_and_day),
        (
            "principal+operation",
            False,
            lambda _s, rng: AuditFilter(principal_arn=rng.choice(world.principals).arn, event_name="Sign"),
        ),
        ("outcome failure", False, lambda _s, _rng: AuditFilter(outcome="failure")),
        ("outcome NotFoundException", False, lambda _s, _rng: AuditFilter(outcome="NotFoundException")),
        ("source IP (common address)", False, lambda _s, rng: AuditFilter(source_ip=rng.choice(world.ips))),
        ("source IP (rare) + 1 day", False, rare_ip_and_day),
        ("source IP (rare), no window", False, lambda _s, _rng: AuditFilter(source_ip=RARE_IP)),
    ]


def time_query(storage: Storage, where: AuditFilter) -> tuple[float, int]:
    started = time.perf_counter()
    with storage.read() as tx:
        rows = tx.query_audit(where, LIMIT + 1)
    return (time.perf_counter() - started) * 1000, len(rows)


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(engine: str, storage: Storage, world: World, repeat: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    results = []
    print(f"\n{engine}: {'query':<28} {'median ms':>10} {'p95 ms':>8} {'rows':>5}  target")
    for name, asked, make in queries(world):
        for _ in range(2):  # warm-up
            time_query(storage, make(storage, rng))
        timings, rows = [], []
        for _ in range(repeat):
            where = make(storage, rng)
            ms, found = time_query(storage, where)
            timings.append(ms)
            rows.append(found)
        median, high = statistics.median(timings), p95(timings)
        met = median < TARGET_MS and high < TARGET_MS
        verdict = ("MET" if met else "NOT MET") + ("" if asked else " (extra)")
        print(f"{engine}: {name:<28} {median:>10.2f} {high:>8.2f} {round(statistics.median(rows)):>5}  {verdict}")
        results.append({"engine": engine, "query": name, "issue": asked, "median_ms": median, "p95_ms": high,
                        "met": met})  # fmt: skip
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--principals", type=int, default=100)
    parser.add_argument("--batch", type=int, default=5_000, help="records per append transaction")
    parser.add_argument("--repeat", type=int, default=25, help="timed runs per query type")
    parser.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    parser.add_argument("--postgres-url", default=os.environ.get("OPENKMS_BENCH_POSTGRES_URL"), help="admin URL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file (its path is printed)")
    return parser.parse_args(argv)


def _engines(args: argparse.Namespace, stack: ExitStack) -> Iterator[tuple[str, Storage, str | None]]:
    if not args.no_sqlite:
        directory = Path(tempfile.mkdtemp(prefix="openkms-bench-audit-")) if args.keep else None
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openkms-bench-audit-")))
        print(f"sqlite: {directory / 'openkms.db'}")
        yield "sqlite", SQLiteStorage(directory / "openkms.db"), None
    if args.postgres:
        url, name = stack.enter_context(postgres_database(args.postgres_url or DEFAULT_POSTGRES_ADMIN_URL))
        print(f"postgres: database {name}")
        yield "postgres", PostgresStorage(url), url


def analyze(engine: str, url: str | None) -> None:
    """PostgreSQL: what autovacuum does during a month of appends (since PostgreSQL 13 it also vacuums
    insert-only tables): planner statistics, and the visibility map that lets index-only scans skip the heap."""
    if url is not None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE audit_events")
        print(f"{engine}: VACUUM ANALYZE audit_events")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    world = make_world(args.keys, args.principals)
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        for engine, storage, url in _engines(args, stack):
            try:
                storage.migrate()
                print(f"{engine}: appending {args.records:,} records in transactions of {args.batch:,}")
                seconds = build_trail(storage, world, args.records, args.batch)
                print(f"{engine}: built in {seconds:.0f} s ({args.records / seconds:,.0f} records/s)")
                analyze(engine, url)
                results.extend(measure(engine, storage, world, args.repeat))
            finally:
                storage.close()
    missed = [r for r in results if not r["met"] and r["issue"]]
    extra = [r for r in results if not r["met"] and not r["issue"]]
    print(f"\ntarget: every query of the issue under {TARGET_MS:.0f} ms (median and p95): ", end="")
    print("MET" if not missed else "NOT MET for " + ", ".join(f"{r['engine']} {r['query']}" for r in missed))
    if extra:
        print("extra query types over the target: " + ", ".join(f"{r['engine']} {r['query']}" for r in extra))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
