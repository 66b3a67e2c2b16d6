"""Benchmark: ``openkms backup`` and ``restore`` of N keys, and how long a backup holds up writers.

    .venv/bin/python benchmarks/bench_backup.py [--keys 10000] [--postgres]

Builds a SQLite source in a temporary directory: a key-file seal, then ``--keys`` symmetric keys straight through
the storage port (each a key row, one version of 32 random bytes wrapped under the root key with its real
binding, an alias and a tag), in transactions of 1000. Then times, each once: the backup (its one read snapshot
and the whole command), ``backup verify`` (which opens every wrapped secret), and the restore into a new SQLite
file and, with ``--postgres``, into a fresh PostgreSQL database next to ``--postgres-url`` (dropped afterwards).

While the backup runs, a writer thread commits one small write transaction after another on the same SQLite
file (as a server's audit writer does); the slowest of its commits during the backup, against the slowest
before it, is how long the backup held writers up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import fields, replace
from pathlib import Path

from openkms.backup.restore import restore_backup
from openkms.backup.snapshot import take_backup
from openkms.backup.verify import verify_backup
from openkms.clock import SystemClock
from openkms.crypto import wrap
from openkms.crypto.rand import random_bytes
from openkms.operations.materials import material_binding
from openkms.seal.root_key import initialize_with_keyfile
from openkms.storage.factory import open_storage
from openkms.storage.ports import Storage
from openkms.storage.records import AliasRecord, KeyRecord, TagRecord
from openkms.storage.sqlite import SQLiteStorage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DEFAULT_POSTGRES_ADMIN_URL, postgres_database

ACCOUNT = "111122223333"
REGION = "us-east-1"
BATCH = 1000


def _columns(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


def populate(storage: Storage, root_key: bytes, count: int) -> None:
    now = time.time()
    template = KeyRecord(
        "", ACCOUNT, REGION, "", "bench", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "AWS_KMS", "CUSTOMER", "Enabled",
        now, False, '{"Version":"2012-10-17","Statement":[]}', None, policy_principal_ids="{}",
    )  # fmt: skip
    for start in range(0, count, BATCH):
        keys, versions, aliases, tags = [], [], [], []
        for _ in range(start, min(count, start + BATCH)):
            key_id = str(uuid.uuid4())
            version_id = random_bytes(16).hex()
            key = replace(template, key_id=key_id, arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}",
                          current_version_id=version_id)  # fmt: skip
            wrapped = wrap.wrap(root_key, random_bytes(32), material_binding(key, version_id))
            keys.append(tuple(getattr(key, c) for c in _columns(KeyRecord)))
            versions.append((key_id, version_id, 1, now, wrapped, "INITIAL"))
            aliases.append(tuple(getattr(AliasRecord(ACCOUNT, REGION, f"alias/k-{key_id}", key_id, now, now), c)
                                 for c in _columns(AliasRecord)))  # fmt: skip
            tags.append(tuple(getattr(TagRecord(key_id, "team", "bench"), c) for c in _columns(TagRecord)))
        with storage.transaction() as tx:
            tx.insert_rows("keys", _columns(KeyRecord), keys)
            tx.insert_rows(
                "key_versions",
                ("key_id", "version_id", "version_number", "created_at", "wrapped_material", "rotation_type"),
                versions,
            )
            tx.insert_rows("aliases", _columns(AliasRecord), aliases)
            tx.insert_rows("tags", _columns(TagRecord), tags)


class Writer(threading.Thread):
    """Commits small write transactions back to back; records each commit's duration and when it ended."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.storage = SQLiteStorage(path)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        columns = ("job_name", "holder", "lease_until", "next_run_at", "last_started_at", "last_finished_at", "runs",
                   "failures")  # fmt: skip
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            with self.storage.transaction() as tx:
                tx.insert_rows("job_leases", columns, [(f"bench-{n}", "", 0.0, 0.0, None, None, 0, 0)])
            ended = time.monotonic()
            self.samples.append((ended, ended - started))
            n += 1
            time.sleep(0.001)
        self.storage.close()

    def worst(self, start: float, end: float) -> float:
        return max((d for t, d in self.samples if start <= t <= end), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_ADMIN_URL, help="an admin URL (CREATE DATABASE)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        source = SQLiteStorage(base / "a" / "openkms.db")
        source.migrate()
        root_key = initialize_with_keyfile(source, base / "a" / "root.keyfile", SystemClock())
        started = time.monotonic()
        populate(source, root_key, args.keys)
        print(f"populated {args.keys:,} keys in {time.monotonic() - started:.1f} s")

        writer = Writer(base / "a" / "openkms.db")
        writer.start()
        time.sleep(1.0)
        before_start, started = time.monotonic() - 1.0, time.monotonic()
        manifest = take_backup(source, root_key, base / "backup.okb")
        ended = time.monotonic()
        time.sleep(0.2)
        writer.stop.set()
        writer.join()
        size = (base / "backup.okb").stat().st_size
        print(f"backup: {ended - started:.2f} s ({manifest.total_rows:,} rows, {size / 1e6:.1f} MB); one snapshot held"
              f" {manifest.snapshot_seconds:.2f} s")  # fmt: skip
        slowest_before, slowest_during = writer.worst(before_start, started), writer.worst(started, ended)
        print(f"  writer commits: slowest before {slowest_before * 1000:.1f} ms, during the backup "
              f"{slowest_during * 1000:.1f} ms ({len(writer.samples)} commits)")  # fmt: skip

        started = time.monotonic()
        report = verify_backup(base / "backup.okb", root_key)
        assert report.ok, report.problems
        print(f"verify: {time.monotonic() - started:.2f} s ({sum(report.secrets_opened.values()):,} secrets opened)")

        with ExitStack() as stack:
            targets = [("sqlite", f"sqlite://{base / 'b' / 'openkms.db'}")]
            if args.postgres:
                targets.append(("postgresql", stack.enter_context(postgres_database(args.postgres_url))[0]))
            for name, url in targets:
                os.makedirs(base / "b", exist_ok=True)
                target = open_storage(url)
                started = time.monotonic()
                restore_backup(target, base / "backup.okb", root_key)
                print(f"restore into {name}: {time.monotonic() - started:.2f} s (verify included)")
                target.close()
        source.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
