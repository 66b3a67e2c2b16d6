"""docs/tests.md A-4: tamper evidence. A trail of records and signed digests over injected-clock intervals (empty
ones included); random single mutations of copies are all detected and the first bad record or digest is
named; untouched copies verify; the chain verifies across restarts."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from openkms.audit import digests, events, exportfmt, verify
from openkms.audit import log as audit_log
from openkms.context import Principal
from openkms.crypto import keypairs, signatures
from openkms.crypto.rand import random_bytes
from openkms.storage.audit import AuditRecord
from openkms.storage.sqlite import SQLiteStorage

RECORDS = int(os.environ.get("OPENKMS_A4_RECORDS", "10000"))
MUTATIONS = int(os.environ.get("OPENKMS_A4_MUTATIONS", "500"))
INTERVALS = 60
T0 = 1_790_000_000.0
PRINCIPALS = [
    Principal("111122223333", f"arn:aws:iam::111122223333:user/u{i}", f"u{i}", f"AKIA{i:016d}", f"AIDA{i}")
    for i in range(5)
]
KEYS = [f"arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-{i:012d}" for i in range(20)]


def _event(rng: random.Random, when: float, n: int) -> AuditRecord:
    operation = rng.choice(["Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "Sign"])
    principal = rng.choice(PRINCIPALS)
    call = events.Call(f"req-{n}", when, f"10.0.0.{n % 250}", "test", "us-east-1", operation, principal, None, {})
    call.note.add_key(rng.choice(KEYS), "SYMMETRIC_DEFAULT")
    error = rng.choice([None, None, None, "AccessDeniedException"])
    return events.build(call, error, "denied" if error else None)


def build_trail(storage: SQLiteStorage, root: bytes, seed: int = 7) -> None:
    """RECORDS records spread over INTERVALS digest intervals, about a tenth of them empty."""
    rng = random.Random(seed)
    per_interval = RECORDS // (INTERVALS - INTERVALS // 10)
    written = 0
    for interval in range(INTERVALS):
        start = T0 + interval * 300
        if interval % 10 != 3:  # every tenth interval stays empty
            count = per_interval if interval < INTERVALS - 1 else RECORDS - written
            batch = [_event(rng, start + i * 0.01, written + i) for i in range(max(count, 0))]
            for chunk in range(0, len(batch), 500):
                with storage.transaction() as tx:
                    audit_log.append(tx, batch[chunk : chunk + 500])
            written += len(batch)
        assert digests.write_digest(storage, root, start + 300, 300) is not None


def export(storage: SQLiteStorage) -> list[str]:
    with storage.read() as tx:
        lines = [exportfmt.header_line(tx.list_signing_keys(), "2026-11-28T00:00:00Z")]
        lines += [exportfmt.digest_line(d) for d in tx.list_digests(0, 10_000)]
        lines += [exportfmt.record_line(r) for r in tx.audit_range(0, 10 * RECORDS)]
    return lines


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> tuple[SQLiteStorage, bytes, list[str], dict[str, bytes]]:
    storage = SQLiteStorage(tmp_path_factory.mktemp("a4") / "openkms.db")
    storage.migrate()
    root = random_bytes(32)
    build_trail(storage, root)
    keys = {k.key_id: k.public_key for k in digests.public_keys(storage)}
    return storage, root, export(storage), keys


def check(lines: list[str], keys: dict[str, bytes]) -> verify.Report:
    return verify.verify_export(io.StringIO("".join(lines)), keys)


def test_untouched_trail_and_export_verify(trail: tuple[SQLiteStorage, bytes, list[str], dict[str, bytes]]) -> None:
    storage, _, lines, keys = trail
    report = verify.verify_storage(storage, keys)
    assert report.ok, report.problems
    assert report.records == RECORDS and report.digests == INTERVALS and report.unsigned_tail == 0
    exported = check(lines, keys)
    assert exported.ok and exported.records == RECORDS, exported.problems
    assert verify.verify_export(io.StringIO("".join(lines))).ok  # the header's own keys


# -- the mutations: each returns the mutated copy and what the first problem must name --------------------


def _split(lines: list[str]) -> tuple[list[str], list[str], list[str]]:
    digest_lines = [line for line in lines if '"type":"digest"' in line]
    record_lines = [line for line in lines if '"type":"record"' in line]
    return lines[:1], digest_lines, record_lines


def _record_seq(line: str) -> int:
    return int(json.loads(line)["seq"])


def edit_field(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(len(rs))
    item = json.loads(rs[i])
    event = json.loads(item["event"])
    field = rng.choice(["sourceIPAddress", "eventName", "userAgent", "errorCode"])
    event[field] = "tampered"
    item["event"] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    rs[i] = json.dumps(item, separators=(",", ":")) + "\n"
    return head + ds + rs, f"record {item['seq']}"


def delete_record(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(len(rs) - 1)  # the last one is truncation, tested below
    seq = _record_seq(rs.pop(i))
    return head + ds + rs, f"record {seq}"


def reorder(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(len(rs) - 1)
    j = rng.randrange(i + 1, min(i + 50, len(rs)))
    rs[i], rs[j] = rs[j], rs[i]
    return head + ds + rs, f"record {i + 1}"


def truncate_tail(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    keep = rng.randrange(len(rs) - 200, len(rs))
    return head + ds + rs[:keep], f"records {keep + 1}.."


def insert_forged(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(1, len(rs))
    previous = json.loads(rs[i - 1])
    forged = dict(previous, event=previous["event"].replace('"readOnly":true', '"readOnly":false'))
    rs.insert(i, json.dumps(forged, separators=(",", ":")) + "\n")
    return head + ds + rs, f"record {i + 1}"


def drop_digest(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(len(ds) - 1)
    ds.pop(i)
    return head + ds + rs, f"digest {i + 1}"


def replace_digest(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(1, len(ds))
    ds[i] = ds[i - 1]
    return head + ds + rs, f"digest {i + 1}"


def resign_wrong_key(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    head, ds, rs = _split(lines)
    i = rng.randrange(len(ds))
    item = json.loads(ds[i])
    body = json.loads(item["body"])
    body["headHash"] = "f" * 64  # what a forger wants to claim
    item["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    private = keypairs.load_private_key("ECC_NIST_EDWARDS25519", keypairs.generate_private_key("ECC_NIST_EDWARDS25519"))
    signature = signatures.sign(private, "ED25519_SHA_512", item["body"].encode(), "RAW")
    item["signature"] = base64.b64encode(signature).decode()
    ds[i] = json.dumps(item, separators=(",", ":")) + "\n"
    return head + ds + rs, f"digest {i + 1}"


def rewrite_chain(rng: random.Random, lines: list[str]) -> tuple[list[str], str]:
    """Edit a record and recompute every later hash: only the signed digests can tell."""
    from openkms.audit.chain import link

    head, ds, rs = _split(lines)
    i = rng.randrange(len(rs))
    previous = json.loads(rs[i - 1])["hash"] if i else "0" * 64
    for j in range(i, len(rs)):
        item = json.loads(rs[j])
        if j == i:
            item["event"] = item["event"].replace('"awsRegion":"us-east-1"', '"awsRegion":"eu-west-9"')
        item["hash"] = link(previous, item["seq"], item["event"])
        previous = item["hash"]
        rs[j] = json.dumps(item, separators=(",", ":")) + "\n"
    covering = next(json.loads(d) for d in ds if json.loads(d)["toSeq"] >= i + 1)
    return head + ds + rs, f"digest {covering['digestSeq']}"


MUTATORS: list[Callable[[random.Random, list[str]], tuple[list[str], str]]] = [
    edit_field, delete_record, reorder, truncate_tail, insert_forged, drop_digest, replace_digest, resign_wrong_key,
    rewrite_chain,
]  # fmt: skip


@pytest.mark.slow  # about a minute: MUTATIONS verifications of a whole trail
def test_every_mutation_is_detected_and_named(
    trail: tuple[SQLiteStorage, bytes, list[str], dict[str, bytes]],
) -> None:
    _, _, lines, keys = trail
    rng = random.Random(2026)
    missed: list[str] = []
    misnamed: list[str] = []
    counts: dict[str, int] = {}
    for n in range(MUTATIONS):
        mutate = MUTATORS[n % len(MUTATORS)]
        mutated, expected = mutate(rng, list(lines))
        counts[mutate.__name__] = counts.get(mutate.__name__, 0) + 1
        report = check(mutated, keys)
        if report.ok:
            missed.append(mutate.__name__)
        elif not report.problems[0].startswith(expected) and f"{expected}:" not in report.problems[0]:
            misnamed.append(f"{mutate.__name__}: expected {expected!r}, got {report.problems[0]!r}")
    print(f"A-4: {MUTATIONS} mutations {counts}, detected {MUTATIONS - len(missed)}, misnamed {len(misnamed)}")
    assert missed == []
    assert misnamed == [], sorted({m.split(":")[0]: m for m in misnamed}.values())


def test_database_edits_are_detected(
    trail: tuple[SQLiteStorage, bytes, list[str], dict[str, bytes]], tmp_path: Path
) -> None:
    storage, _, _, keys = trail
    storage.checkpoint_truncate()  # the copies below must hold everything
    for label, statement, expected in (
        ("event", "UPDATE audit_events SET event = replace(event, 'us-east-1', 'us-east-2') WHERE seq = 77",
         "record 77"),
        ("column", "UPDATE audit_events SET principal_arn = 'arn:aws:iam::1:user/x' WHERE seq = 78", "record 78"),
        ("delete", "DELETE FROM audit_events WHERE seq = 79", "record 79"),
        ("digest", "DELETE FROM audit_digests WHERE digest_seq = 5", "digest 5"),
    ):  # fmt: skip
        copy = tmp_path / f"{label}.db"
        shutil.copy(storage.path, copy)
        with sqlite3.connect(copy) as conn:
            conn.execute(statement)
        edited = SQLiteStorage(copy)
        try:
            report = verify.verify_storage(edited, keys)
        finally:
            edited.close()
        assert not report.ok and report.problems[0].startswith(expected), (label, report.problems)


def test_chain_continues_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "openkms.db"
    root = random_bytes(32)
    rng = random.Random(1)
    for restart in range(3):
        storage = SQLiteStorage(path)
        storage.migrate()
        with storage.transaction() as tx:
            audit_log.append(tx, [_event(rng, T0 + restart * 1000 + i, i) for i in range(50)])
        digests.write_digest(storage, root, T0 + restart * 1000 + 500, 300)
        storage.close()
    storage = SQLiteStorage(path)
    report = verify.verify_storage(storage)
    storage.close()
    assert report.ok and report.records == 150 and report.digests == 3, report.problems
