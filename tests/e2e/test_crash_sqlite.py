"""docs/tests.md D-1 (and a small D-2): kill -9 the whole server under load, restart, and lose no acked operation.

Three client processes, each with its own boto3 client, run a mixed workload on keys and aliases that only they
touch, and append every outcome to their own fsync'd JSON-lines ledger:

* ``ack``: HTTP 200 came back. These are the promises the server made, and every one must survive.
* ``unknown``: the request may have reached the server, but no whole answer came (the connection died, a 5xx,
  or a 200 whose body is shorter than its content-length: botocore would parse that as an empty success). It may
  or may not have been applied, so for the resource it names, both outcomes are allowed afterwards.
* ``refused`` (a 4xx, which changed nothing) and ``not-sent`` (could not connect) are kept for diagnosis only.

Clients never retry (``total_max_attempts=1``: botocore's ``max_attempts=1`` means one *retry*, which would
resend a request the dying server had already committed, and fake a lost update).

Each cycle SIGKILLs the server process group at a random 50-1,500 ms into the load, checks the database while
nothing runs (``PRAGMA integrity_check``, no key without material), restarts on the same data directory, and
verifies what was acked since the last restart plus a random sample of older acks. After the last cycle,
everything in the ledgers is verified. ``OPENKMS_D1_CYCLES`` (default 50) and ``OPENKMS_D2_CYCLES`` (default 5,
PostgreSQL) set the number of cycles; ``OPENKMS_D1_SEED`` replays a run.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, ServerProcess, free_port
from tests.pg_helpers import create_temp_database, drop_database

CLIENTS = 3
KILL_DELAY_SECONDS = (0.05, 1.5)
SAMPLE_OLD_CIPHERTEXTS = 25
SAMPLE_OLD_KEYS = 10
SAMPLE_OLD_ALIASES = 5
SAMPLE_OLD_TAGS = 5
SAMPLE_DEFERRED = 25
ALIASES_PER_CLIENT = 6
TAG_KEYS = ("t0", "t1", "t2", "t3")
PENDING_WINDOW_DAYS = 7

# The state each acked state-changing operation leaves the key in.
TARGET_STATE = {
    "CreateKey": "Enabled",
    "EnableKey": "Enabled",
    "DisableKey": "Disabled",
    "ScheduleKeyDeletion": "PendingDeletion",
    "CancelKeyDeletion": "Disabled",
}
# What a 200 must carry, per operation; one without it is not an ack.
EXPECTED_FIELDS = {
    "CreateKey": ("KeyMetadata",),
    "Encrypt": ("CiphertextBlob", "KeyId"),
    "GenerateDataKey": ("CiphertextBlob", "Plaintext", "KeyId"),
    "ScheduleKeyDeletion": ("KeyId", "DeletionDate"),
    "CancelKeyDeletion": ("KeyId",),
}


def _cycles(env: str, default: int) -> int:
    return int(os.environ.get(env) or default)


D1_CYCLES = _cycles("OPENKMS_D1_CYCLES", 50)
D2_CYCLES = _cycles("OPENKMS_D2_CYCLES", 5)


# ---------------------------------------------------------------------------------------------------------------
# The client processes (spawned: each imports boto3 afresh and owns its own connection pool)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _ClientBelief:
    """What a client thinks its own resources look like; ``None`` means "unknown since a lost answer"."""

    keys: list[str] = field(default_factory=list)
    state: dict[str, str | None] = field(default_factory=dict)
    alias_exists: dict[str, bool | None] = field(default_factory=dict)


def _kms_client(endpoint: str, attempts: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},  # max_attempts would mean retries
            connect_timeout=5,
            read_timeout=30,
            tcp_keepalive=True,
        ),
    )


class _Ledger:
    """Append-only JSON lines, flushed and fsync'd before the next request is sent."""

    def __init__(self, path: Path, client: int) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._client = client
        self._seq = 0

    def append(self, cycle: int, outcome: str, entry: dict[str, Any]) -> None:
        self._seq += 1
        record = {"client": self._client, "seq": self._seq, "cycle": cycle, "outcome": outcome, **entry}
        record["logged_at"] = time.time()
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _client_main(index: int, endpoint: str, ledger_path: str, conn: Connection, halt: Event, seed: int) -> None:
    """Run the workload whenever told to, until ``halt``; report each pause with the cycle's counters."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    kms = _kms_client(endpoint, attempts=1)
    last_raw: dict[str, Any] = {}

    def capture(response_dict: dict[str, Any], **_: Any) -> None:
        last_raw.update(status=response_dict["status_code"], headers=dict(response_dict["headers"]))
        last_raw["body"] = response_dict["body"]

    kms.meta.events.register("before-parse.kms", capture)
    rng = random.Random(seed)
    belief = _ClientBelief()
    ledger = _Ledger(Path(ledger_path), index)
    conn.send(("ready",))
    try:
        while True:
            message = conn.recv()
            if message[0] == "exit":
                return
            cycle: int = message[1]
            stats: Counter[str] = Counter()
            while not halt.is_set():
                op, request, entry = _next_operation(index, rng, belief)
                entry["sent_at"] = time.time()
                try:
                    response = getattr(kms, _snake(op))(**request)
                except ClientError as exc:
                    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                    code = exc.response.get("Error", {}).get("Code", "?")
                    if status >= 500:
                        stats[f"5xx:{op}:{code}"] += 1
                        _record_unknown(ledger, cycle, op, entry, belief)
                    else:
                        stats[f"4xx:{code}"] += 1
                        _learn_from_refusal(op, code, entry, belief)
                        if op not in ("Encrypt", "GenerateDataKey"):  # kept for diagnosis; changes nothing
                            ledger.append(cycle, "refused", {"op": op, "code": code, **entry})
                    continue
                except EndpointConnectionError as exc:
                    stats["not-sent"] += 1  # could not connect: the request never left
                    if op not in ("Encrypt", "GenerateDataKey"):  # kept for diagnosis; changes nothing
                        ledger.append(cycle, "not-sent", {"op": op, "error": str(exc), **entry})
                    time.sleep(0.01)
                    continue
                except BotoCoreError as exc:
                    stats[f"unknown:{type(exc).__name__}"] += 1
                    _record_unknown(ledger, cycle, op, entry, belief)
                    time.sleep(0.01)
                    continue
                body: bytes = last_raw.get("body", b"")
                missing = [name for name in EXPECTED_FIELDS.get(op, ()) if name not in response]
                truncated = str(len(body)) != last_raw.get("headers", {}).get("content-length", str(len(body)))
                if missing or truncated:
                    # Not an ack. A body shorter than its content-length is the server dying mid-response
                    # (botocore parses it as an empty success); a whole body without the answer is a bug.
                    stats[f"{'truncated' if truncated else 'malformed'}-200:{op}"] += 1
                    raw = {k: v for k, v in last_raw.items() if k != "body"}
                    raw["body"] = body[:300].decode("latin-1")
                    ledger.append(cycle, "unknown", {"op": op, "http_200_without_answer": raw, **entry})
                    _record_unknown_belief(op, entry, belief)
                    continue
                _record_ack(ledger, cycle, op, entry, response, belief)
                stats[f"ack:{op}"] += 1
            conn.send(("paused", cycle, dict(stats)))
    finally:
        ledger.close()


def _snake(op: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def _next_operation(
    index: int, rng: random.Random, belief: _ClientBelief
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Pick the next request: (operation, boto3 arguments, what the ledger must remember)."""
    enabled = [k for k in belief.keys if belief.state.get(k) == "Enabled"]
    roll = rng.random()
    if len(belief.keys) < 3 or roll < 0.10 or (roll < 0.50 and not enabled):
        return "CreateKey", {"Description": f"d1 client {index}"}, {}
    if roll < 0.35:
        key = rng.choice(enabled)
        plaintext = rng.randbytes(rng.randint(1, 64))
        context = {"client": str(index), "n": str(rng.randrange(10**6))} if rng.random() < 0.5 else {}
        request: dict[str, Any] = {"KeyId": key, "Plaintext": plaintext}
        if context:
            request["EncryptionContext"] = context
        return "Encrypt", request, {"key_id": key, "plaintext": plaintext.hex(), "context": context}
    if roll < 0.50:
        key = rng.choice(enabled)
        spec: dict[str, Any] = {"KeySpec": "AES_256"} if rng.random() < 0.5 else {"NumberOfBytes": rng.randint(1, 64)}
        return "GenerateDataKey", {"KeyId": key, **spec}, {"key_id": key}
    key = rng.choice(belief.keys)
    if roll < 0.62:
        alias = f"alias/d1/c{index}/a{rng.randrange(ALIASES_PER_CLIENT)}"
        exists = belief.alias_exists.get(alias, False)
        op = (
            ("UpdateAlias" if exists else "CreateAlias")
            if exists is not None
            else rng.choice(["CreateAlias", "UpdateAlias"])
        )
        return op, {"AliasName": alias, "TargetKeyId": key}, {"alias": alias, "key_id": key}
    if roll < 0.75:
        tag_key, tag_value = rng.choice(TAG_KEYS), rng.randbytes(4).hex()
        request = {"KeyId": key, "Tags": [{"TagKey": tag_key, "TagValue": tag_value}]}
        return "TagResource", request, {"key_id": key, "tag_key": tag_key, "tag_value": tag_value}
    state = belief.state.get(key)
    if roll < 0.88:
        if state == "PendingDeletion":
            op = "CancelKeyDeletion"
        elif state is None:
            op = rng.choice(["EnableKey", "DisableKey"])
        else:
            op = "DisableKey" if state == "Enabled" else "EnableKey"
    elif state == "PendingDeletion" or (state is None and rng.random() < 0.5):
        op = "CancelKeyDeletion"
    else:
        op = "ScheduleKeyDeletion"
    request = {"KeyId": key}
    if op == "ScheduleKeyDeletion":
        request["PendingWindowInDays"] = PENDING_WINDOW_DAYS
    return op, request, {"key_id": key, "state": TARGET_STATE[op]}


def _record_ack(
    ledger: _Ledger, cycle: int, op: str, entry: dict[str, Any], response: dict[str, Any], belief: _ClientBelief
) -> None:
    if op == "CreateKey":
        meta = response["KeyMetadata"]
        key = meta["KeyId"]
        belief.keys.append(key)
        belief.state[key] = "Enabled"
        entry = {"key_id": key, "arn": meta["Arn"], "state": "Enabled"}
    elif op in ("Encrypt", "GenerateDataKey"):
        entry = {**entry, "arn": response["KeyId"], "ciphertext": base64.b64encode(response["CiphertextBlob"]).decode()}
        if op == "GenerateDataKey":
            entry["plaintext"] = response["Plaintext"].hex()
    elif op in ("CreateAlias", "UpdateAlias"):
        belief.alias_exists[entry["alias"]] = True
    elif op in TARGET_STATE:
        belief.state[entry["key_id"]] = entry["state"]
    ledger.append(cycle, "ack", {"op": op, **entry})


def _record_unknown(ledger: _Ledger, cycle: int, op: str, entry: dict[str, Any], belief: _ClientBelief) -> None:
    """No answer: the change may or may not have happened. Reads need no record."""
    if op in ("Encrypt", "GenerateDataKey"):
        return
    _record_unknown_belief(op, entry, belief)
    ledger.append(cycle, "unknown", {"op": op, **entry})


def _record_unknown_belief(op: str, entry: dict[str, Any], belief: _ClientBelief) -> None:
    if op in ("CreateAlias", "UpdateAlias"):
        belief.alias_exists[entry["alias"]] = None
    elif op in TARGET_STATE and op != "CreateKey":
        belief.state[entry["key_id"]] = None


def _learn_from_refusal(op: str, code: str, entry: dict[str, Any], belief: _ClientBelief) -> None:
    if code == "AlreadyExistsException" and op == "CreateAlias":
        belief.alias_exists[entry["alias"]] = True
    elif code == "NotFoundException" and op == "UpdateAlias":
        belief.alias_exists[entry["alias"]] = False
    elif code in ("KMSInvalidStateException", "DisabledException") and "key_id" in entry:
        belief.state[entry["key_id"]] = None


# ---------------------------------------------------------------------------------------------------------------
# The verifier's model of what must be true, built from the ledgers
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Expect:
    """The value the last ack left, plus every value an unacknowledged later attempt may have left."""

    acked: str | None = None  # None: no ack yet (the resource may not exist)
    acked_by: tuple[int, int] | None = None  # (client, seq) of that ack
    alternatives: set[str] = field(default_factory=set)

    def ack(self, value: str, by: tuple[int, int]) -> None:
        self.acked, self.acked_by, self.alternatives = value, by, set()

    def maybe(self, value: str) -> None:
        self.alternatives.add(value)

    def allows(self, value: str | None) -> bool:
        if value is None:
            return self.acked is None
        return value == self.acked or value in self.alternatives


@dataclass
class _Model:
    keys: dict[str, _Expect] = field(default_factory=dict)  # key id -> state
    arns: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, _Expect] = field(default_factory=dict)  # alias -> target key id
    tags: dict[tuple[str, str], _Expect] = field(default_factory=dict)  # (key id, tag key) -> value
    ciphertexts: list[dict[str, Any]] = field(default_factory=list)
    acked: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    def apply(self, entry: dict[str, Any]) -> None:
        op, by, ack = entry["op"], (entry["client"], entry["seq"]), entry["outcome"] == "ack"
        if entry["outcome"] in ("refused", "not-sent"):
            self.refused[op] += 1
            return
        (self.acked if ack else self.unknown)[op] += 1
        if op == "CreateKey":
            if ack:
                self.keys[entry["key_id"]] = _Expect()
                self.keys[entry["key_id"]].ack("Enabled", by)
                self.arns[entry["key_id"]] = entry["arn"]
        elif op in ("Encrypt", "GenerateDataKey"):
            if ack:
                self.ciphertexts.append(entry)
        elif op in ("CreateAlias", "UpdateAlias"):
            self._set(self.aliases.setdefault(entry["alias"], _Expect()), entry["key_id"], by, ack)
        elif op == "TagResource":
            expect = self.tags.setdefault((entry["key_id"], entry["tag_key"]), _Expect())
            self._set(expect, entry["tag_value"], by, ack)
        else:
            self._set(self.keys[entry["key_id"]], entry["state"], by, ack)

    @staticmethod
    def _set(expect: _Expect, value: str, by: tuple[int, int], ack: bool) -> None:
        if ack:
            expect.ack(value, by)
        else:
            expect.maybe(value)


class _LedgerReader:
    """Reads each client's ledger from where it stopped last time (whole lines only)."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._offsets = [0] * len(paths)

    def new_entries(self) -> Iterator[dict[str, Any]]:
        for i, path in enumerate(self._paths):
            if not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self._offsets[i])
                data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._offsets[i] += len(complete)
            for line in complete.splitlines():
                yield json.loads(line)


@dataclass
class _Failure:
    acked_by: tuple[int, int] | None
    what: str


class _Verifier:
    def __init__(self, kms: Any, model: _Model, rng: random.Random) -> None:
        self.kms = kms
        self.model = model
        self.rng = rng
        self.failures: list[_Failure] = []
        self.deferred: list[dict[str, Any]] = []  # ciphertexts whose key is not Enabled right now
        self.checks: Counter[str] = Counter()

    def fail(self, by: tuple[int, int] | None, what: str) -> None:
        self.failures.append(_Failure(by, what))

    def lost_acked_ops(self) -> int:
        return len({f.acked_by for f in self.failures if f.acked_by is not None})

    def _code(self, exc: Exception) -> str:
        response: dict[str, Any] = getattr(exc, "response", {})
        return str(response.get("Error", {}).get("Code", type(exc).__name__))

    def check_key(self, key_id: str) -> None:
        from botocore.exceptions import ClientError

        expect = self.model.keys[key_id]
        self.checks["DescribeKey"] += 1
        try:
            meta = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            self.fail(expect.acked_by, f"acked key {key_id} is gone: {self._code(exc)}")
            return
        if meta["KeyId"] != key_id or meta["Arn"] != self.model.arns[key_id]:
            self.fail(expect.acked_by, f"key {key_id} came back as {meta['KeyId']} / {meta['Arn']}")
        if not expect.allows(meta["KeyState"]):
            self.fail(
                expect.acked_by,
                f"key {key_id} is {meta['KeyState']}; last acked {expect.acked}, "
                f"unacknowledged attempts {sorted(expect.alternatives)}",
            )

    def check_alias(self, alias: str) -> None:
        from botocore.exceptions import ClientError

        expect = self.model.aliases[alias]
        self.checks["DescribeKey(alias)"] += 1
        try:
            target: str | None = self.kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
        except ClientError as exc:
            if self._code(exc) != "NotFoundException":
                self.fail(expect.acked_by, f"alias {alias}: {self._code(exc)}")
                return
            target = None
        if not expect.allows(target):
            self.fail(
                expect.acked_by,
                f"alias {alias} -> {target}; last acked {expect.acked}, unacknowledged {sorted(expect.alternatives)}",
            )

    def check_tags(self, key_id: str) -> None:
        from botocore.exceptions import ClientError

        self.checks["ListResourceTags"] += 1
        wanted = {tk: e for (k, tk), e in self.model.tags.items() if k == key_id}
        try:
            tags = {t["TagKey"]: t["TagValue"] for t in self.kms.list_resource_tags(KeyId=key_id, Limit=50)["Tags"]}
        except ClientError as exc:
            for expect in wanted.values():
                self.fail(expect.acked_by, f"tags of {key_id}: {self._code(exc)}")
            return
        for tag_key, expect in wanted.items():
            if not expect.allows(tags.get(tag_key)):
                self.fail(
                    expect.acked_by,
                    f"tag {tag_key} of {key_id} = {tags.get(tag_key)!r}; last acked {expect.acked!r}, "
                    f"unacknowledged {sorted(expect.alternatives)}",
                )

    def check_ciphertext(self, entry: dict[str, Any], *, defer: bool = True) -> None:
        from botocore.exceptions import ClientError

        by = (entry["client"], entry["seq"])
        request: dict[str, Any] = {"CiphertextBlob": base64.b64decode(entry["ciphertext"])}
        if entry.get("context"):
            request["EncryptionContext"] = entry["context"]
        self.checks["Decrypt"] += 1
        try:
            response = self.kms.decrypt(**request)
        except ClientError as exc:
            if defer and self._code(exc) in ("DisabledException", "KMSInvalidStateException"):
                self.deferred.append(entry)  # checked once its key is usable again
                return
            self.fail(by, f"{entry['op']} ciphertext under {entry['key_id']} does not decrypt: {self._code(exc)}")
            return
        if response["Plaintext"].hex() != entry["plaintext"] or response["KeyId"] != entry["arn"]:
            self.fail(by, f"{entry['op']} ciphertext under {entry['key_id']} decrypts to something else")

    def verify_incremental(self, new: list[dict[str, Any]]) -> None:
        """Everything acked (or attempted) since the last restart, plus a random sample of what came before."""
        model = self.model
        old_ciphertexts, old_keys = list(model.ciphertexts), set(model.keys)
        old_aliases, old_tagged = set(model.aliases), {k for k, _ in model.tags}
        for entry in new:
            model.apply(entry)
        touched_keys = {e["key_id"] for e in new if e["op"] in TARGET_STATE and e.get("key_id") in model.keys}
        touched_aliases = {e["alias"] for e in new if e.get("alias") in model.aliases}
        touched_tags = {e["key_id"] for e in new if e["op"] == "TagResource"}
        keys = touched_keys | set(self._sample(sorted(old_keys - touched_keys), SAMPLE_OLD_KEYS))
        for key_id in sorted(keys):
            self.check_key(key_id)
        aliases = touched_aliases | set(self._sample(sorted(old_aliases - touched_aliases), SAMPLE_OLD_ALIASES))
        for alias in sorted(aliases):
            self.check_alias(alias)
        tagged = touched_tags | set(self._sample(sorted(old_tagged - touched_tags), SAMPLE_OLD_TAGS))
        for key_id in sorted(tagged):
            self.check_tags(key_id)
        fresh = [e for e in new if e["op"] in ("Encrypt", "GenerateDataKey") and e["outcome"] == "ack"]
        self.rng.shuffle(self.deferred)  # a sample now; the final sweep makes every key usable and takes them all
        deferred, self.deferred = self.deferred[:SAMPLE_DEFERRED], self.deferred[SAMPLE_DEFERRED:]
        for entry in fresh + deferred + self._sample(old_ciphertexts, SAMPLE_OLD_CIPHERTEXTS):
            self.check_ciphertext(entry)
        self.deferred = _unique(self.deferred)

    def verify_everything(self) -> None:
        """The final sweep: every key, alias and tag; then make every key usable and decrypt every ciphertext."""
        model = self.model
        for key_id in sorted(model.keys):
            self.check_key(key_id)
        for alias in sorted(model.aliases):
            self.check_alias(alias)
        for key_id in sorted({k for k, _ in model.tags}):
            self.check_tags(key_id)
        for key_id in sorted(model.keys):
            state = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
            if state == "PendingDeletion":
                self.kms.cancel_key_deletion(KeyId=key_id)
                state = "Disabled"
            if state == "Disabled":
                self.kms.enable_key(KeyId=key_id)
        self.deferred = []
        for entry in model.ciphertexts:
            if entry["outcome"] == "ack":
                self.check_ciphertext(entry, defer=False)

    def _sample(self, items: list[Any], n: int) -> list[Any]:
        return self.rng.sample(items, min(n, len(items)))


def _unique(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[int, int], dict[str, Any]] = {}
    for entry in entries:
        seen[(entry["client"], entry["seq"])] = entry
    return list(seen.values())


# ---------------------------------------------------------------------------------------------------------------
# Server control and database checks
# ---------------------------------------------------------------------------------------------------------------


class _TimedServer(ServerProcess):
    """Polls health every 10 ms, so restart-to-ready is measured to about that precision."""

    poll_interval = 0.01

    def kill_group(self) -> None:
        """SIGKILL supervisor and workers, and wait until none of them runs (their sockets and locks are gone)."""
        assert self.process is not None
        pgid = self.process.pid
        self.kill(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"process group {pgid} still alive 30 s after SIGKILL")
            time.sleep(0.005)


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


_KEYS_WITHOUT_MATERIAL = (
    "SELECT k.key_id FROM keys k WHERE k.origin = 'AWS_KMS' AND (k.current_version_id IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM key_versions v WHERE v.key_id = k.key_id AND v.version_id = k.current_version_id))"
)


def _check_sqlite_file(path: Path) -> tuple[str, list[str]]:
    """``PRAGMA integrity_check`` and the keys without material, read-only while the server is down."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
        integrity = "\n".join(str(r[0]) for r in rows)
        orphans = [str(r[0]) for r in conn.execute(_KEYS_WITHOUT_MATERIAL).fetchall()]
    finally:
        conn.close()
    return integrity, orphans


def _check_postgres(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [str(r[0]) for r in conn.execute(_KEYS_WITHOUT_MATERIAL).fetchall()]


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------------------------------------------------------
# The crash loop
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Client:
    process: BaseProcess
    conn: Connection


def _crash_loop(label: str, base: Path, database_url: str, cycles: int) -> None:
    seed = int(os.environ.get("OPENKMS_D1_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    data_dir = base / "data"
    sqlite_path = data_dir / "openkms.db" if database_url.startswith("sqlite") else None
    server = _TimedServer(data_dir, database_url, free_port(), workers=2)
    ctx = multiprocessing.get_context("spawn")
    halt = ctx.Event()
    ledgers = [base / f"ledger-{i}.jsonl" for i in range(CLIENTS)]
    clients: list[_Client] = []
    ready_ms: list[float] = []
    kill_delays: list[float] = []
    load: Counter[str] = Counter()
    integrity_failures: list[str] = []
    material_failures: list[str] = []
    model = _Model()
    reader = _LedgerReader(ledgers)
    verifier: _Verifier | None = None
    server.start()
    try:
        for i in range(CLIENTS):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_client_main,
                args=(i, server.endpoint, str(ledgers[i]), child, halt, rng.randrange(2**32)),
                name=f"d1-client-{i}",
            )
            process.start()
            child.close()
            clients.append(_Client(process, parent))
        for client in clients:
            if not client.conn.poll(60):
                raise RuntimeError("a client process did not start")
            assert client.conn.recv() == ("ready",)

        for cycle in range(cycles):
            for client in clients:
                client.conn.send(("run", cycle))
            delay = rng.uniform(*KILL_DELAY_SECONDS)
            kill_delays.append(delay)
            time.sleep(delay)
            server.kill_group()
            halt.set()
            for client in clients:
                if not client.conn.poll(120):
                    raise RuntimeError(f"client {client.process.name} did not pause")
                _, _, stats = client.conn.recv()
                load.update(stats)
            halt.clear()

            if sqlite_path is not None:
                integrity, orphans = _check_sqlite_file(sqlite_path)
                if integrity != "ok":
                    integrity_failures.append(f"cycle {cycle}: {integrity}")
            else:
                orphans = _check_postgres(database_url)
            if orphans:
                material_failures.append(f"cycle {cycle}: keys without material {orphans}")

            started = time.monotonic()
            server.start()
            ready_ms.append((time.monotonic() - started) * 1000)
            verifier = verifier or _Verifier(None, model, rng)
            verifier.kms = _kms_client(server.endpoint, attempts=5)  # the old pool's connections died with the server
            verifier.verify_incremental(list(reader.new_entries()))
            if verifier.failures or integrity_failures or material_failures:
                break  # no point in piling more cycles on a broken state

        assert verifier is not None
        if not verifier.failures:
            verifier.verify_everything()
    finally:
        for client in clients:
            try:
                client.conn.send(("exit",))
            except OSError:
                pass
        for client in clients:
            client.process.join(timeout=30)
            if client.process.is_alive():
                client.process.terminate()
                client.process.join(timeout=10)
            client.conn.close()
        if server.process is not None and server.process.poll() is None:
            server.kill_group()

    acked = sum(model.acked.values())
    five_xx = {k: v for k, v in load.items() if k.startswith("5xx")}
    malformed = {k: v for k, v in load.items() if k.startswith("malformed")}
    truncated = sum(v for k, v in load.items() if k.startswith("truncated"))
    figures = {
        "test": label,
        "seed": seed,
        "cycles": len(kill_delays),
        "acked_ops": acked,
        "acked_by_op": dict(sorted(model.acked.items())),
        "unacknowledged_attempts": sum(model.unknown.values()),
        "refused_4xx": {k[4:]: v for k, v in sorted(load.items()) if k.startswith("4xx")},
        "server_errors_5xx": five_xx,
        "malformed_200s": malformed,
        "truncated_200s_not_counted_as_acks": truncated,
        "lost_acked_ops": verifier.lost_acked_ops(),
        "restart_to_ready_ms_p50": round(statistics.median(ready_ms), 1) if ready_ms else None,
        "restart_to_ready_ms_p99": round(_percentile(ready_ms, 99), 1) if ready_ms else None,
        "kill_delay_ms_min_max": [round(min(kill_delays) * 1000), round(max(kill_delays) * 1000)],
        "verification_calls": dict(verifier.checks),
        "integrity_check_failures": len(integrity_failures),
        "keys_without_material": len(material_failures),
    }
    print(f"\n{label} figures: {json.dumps(figures)}")
    problems = [f.what for f in verifier.failures[:20]] + integrity_failures[:5] + material_failures[:5]
    assert not problems, f"{label} (seed {seed}) found:\n" + "\n".join(problems)
    assert not five_xx, f"{label}: the server answered 5xx under load (seed {seed}): {five_xx}"
    assert not malformed, f"{label}: HTTP 200 without the operation's answer (seed {seed}): {malformed}"
    assert acked > cycles, f"{label}: the workload barely ran: {figures}"
    for op in ("CreateKey", "Encrypt", "GenerateDataKey", "TagResource", "DisableKey", "ScheduleKeyDeletion"):
        assert model.acked[op] > 0 or cycles < 10, f"{label}: no {op} was ever acked: {figures}"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(120 + 15 * D1_CYCLES)
def test_d1_sigkill_under_load_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'openkms.db'}"
    _crash_loop("D-1", tmp_path, url, D1_CYCLES)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(120 + 15 * D2_CYCLES)
def test_d2_sigkill_openkms_node_postgres(tmp_path: Path) -> None:
    url = create_temp_database()
    try:
        _crash_loop("D-2 (openkms node only)", tmp_path, url, D2_CYCLES)
    finally:
        drop_database(url)
