"""C-7 over HTTP: every tampered ciphertext blob is refused, through boto3 against a real server.

Blob layout (docs/formats.md section 1): version (1) || key id (16) || key version id (16) || salt (32) ||
nonce (12) || ciphertext (n) || tag (16); the 77-byte header and the encryption context are the GCM AAD.

Mutants per blob: every header byte flipped, 20 random body flips, truncation and extension by 1-64 bytes,
header fields swapped (key id, key version id, both, salt, nonce, whole header, version byte) and
encryption-context edits. Each must answer InvalidCiphertextException, or IncorrectKeyException when the
request names a KeyId that the (tampered) blob does not; never plaintext, never a 5xx.
``OPENKMS_C7_BLOBS`` sets the number of blobs (60 in CI; docs/tests.md's soak size is 500).
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

BLOBS = int(os.environ.get("OPENKMS_C7_BLOBS", "60"))
BODY_FLIPS = 20
THREADS = 8
HEADER = 77
KEY_ID = slice(1, 17)
VERSION_ID = slice(17, 33)
KEY_AND_VERSION = slice(1, 33)
SALT = slice(33, 65)
NONCE = slice(65, 77)
INVALID = "InvalidCiphertextException"
INCORRECT_KEY = "IncorrectKeyException"


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes
    context: dict[str, str]
    plaintext: bytes


@dataclass(frozen=True)
class Mutant:
    kind: str
    blob: bytes
    context: dict[str, str]
    key_id: str | None  # passed as KeyId when set
    origin: Sealed


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: int
    code: str | None
    plaintext: bytes | None


def _context(rng: random.Random, index: int) -> dict[str, str]:
    pairs = index % 3 * 2  # 0, 2 or 4 pairs; keys and values all have letters, so case edits change them
    return {f"Key{rng.randrange(10**6)}x{i}": f"Value-{rng.randrange(10**6)}-v{i}" for i in range(pairs)}


@pytest.fixture(scope="module")
def sealed(server: ServerProcess) -> list[Sealed]:
    kms: Any = server.client()
    keys = [kms.create_key(Description=f"c7-{i}")["KeyMetadata"]["KeyId"] for i in range(3)]
    rng = random.Random(7)  # mutation positions, not secrets
    out = []
    for index in range(BLOBS):
        key_id = keys[index % len(keys)]
        plaintext = rng.randbytes(rng.choice([1, 2, 16, 100, 512, 1024]))
        context = _context(rng, index)
        blob: bytes = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]
        assert len(blob) == HEADER + len(plaintext) + 16, "blob size disagrees with docs/formats.md"
        assert blob[0] == 1
        out.append(Sealed(key_id, blob, context, plaintext))
    return out


def _flip(blob: bytes, at: int, rng: random.Random) -> bytes:
    return blob[:at] + bytes([blob[at] ^ rng.randrange(1, 256)]) + blob[at + 1 :]


def _swap(blob: bytes, field: slice, donor: bytes) -> bytes:
    return blob[: field.start] + donor[field] + blob[field.stop :]


def _context_edits(context: dict[str, str]) -> dict[str, dict[str, str]]:
    edits = {"context: pair added": {**context, "added": "pair"}}
    if context:
        first = next(iter(context))
        edits["context: pair removed"] = {k: v for k, v in context.items() if k != first}
        edits["context: emptied"] = {}
        edits["context: key case changed"] = {(k.upper() if k == first else k): v for k, v in context.items()}
        edits["context: value case changed"] = {k: (v.swapcase() if k == first else v) for k, v in context.items()}
        edits["context: value changed"] = {k: (v + "x" if k == first else v) for k, v in context.items()}
    return edits


def build_mutants(blobs: list[Sealed], seed: int = 77) -> list[Mutant]:
    rng = random.Random(seed)
    out: list[Mutant] = []

    def add(kind: str, origin: Sealed, blob: bytes, context: dict[str, str] | None = None) -> None:
        changed = context if context is not None else origin.context
        assert (blob, changed) != (origin.blob, origin.context), kind
        key_id = origin.key_id if len(out) % 2 else None  # every other mutant also names the key it came from
        out.append(Mutant(kind, blob, changed, key_id, origin))

    for index, origin in enumerate(blobs):
        blob = origin.blob
        other_key = next(b for b in blobs[index + 1 :] + blobs[:index] if b.key_id != origin.key_id)
        same_key = next(b for b in blobs[index + 1 :] + blobs[:index] if b.key_id == origin.key_id)
        for at in range(HEADER):
            add(f"header flip @{at:02d}", origin, _flip(blob, at, rng))
        for _ in range(BODY_FLIPS):
            add("body flip", origin, _flip(blob, rng.randrange(HEADER, len(blob)), rng))
        for count in range(1, 65):
            add("truncated", origin, blob[:-count])
            add("extended", origin, blob + rng.randbytes(count))
        add("swap: key id of another key", origin, _swap(blob, KEY_ID, other_key.blob))
        add("swap: key version id of another key", origin, _swap(blob, VERSION_ID, other_key.blob))
        add("swap: key id + version id of another key", origin, _swap(blob, KEY_AND_VERSION, other_key.blob))
        add("swap: salt of another blob", origin, _swap(blob, SALT, same_key.blob))
        add("swap: nonce of another blob", origin, _swap(blob, NONCE, same_key.blob))
        add("swap: header of another blob", origin, same_key.blob[:HEADER] + blob[HEADER:])
        for version in (0x00, 0x02, 0xFF):
            add(f"swap: version byte {version:#04x}", origin, bytes([version]) + blob[1:])
        for kind, context in _context_edits(origin.context).items():
            add(kind, origin, blob, context)
        # Blob names another key, KeyId names the original: IncorrectKeyException is the honest answer.
        swapped = _swap(blob, KEY_AND_VERSION, other_key.blob)
        out.append(
            Mutant("swap: key id + version id, KeyId of the original", swapped, origin.context, origin.key_id, origin)
        )
    return out


def _decrypt(kms: Any, mutant: Mutant) -> Outcome:
    params: dict[str, Any] = {"CiphertextBlob": mutant.blob, "EncryptionContext": mutant.context}
    if mutant.key_id is not None:
        params["KeyId"] = mutant.key_id
    try:
        plaintext: bytes = kms.decrypt(**params)["Plaintext"]
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return Outcome(mutant, status, exc.response.get("Error", {}).get("Code"), None)
    return Outcome(mutant, 200, None, plaintext)


def run_all(server: ServerProcess, mutants: list[Mutant]) -> list[Outcome]:
    """Decrypt every mutant with ``THREADS`` threads, each holding its own boto3 client."""
    clients: queue.Queue[Any] = queue.Queue()
    for _ in range(THREADS):
        clients.put(server.client())  # boto3 client creation is not thread-safe: do it here
    local = threading.local()

    def init() -> None:
        local.kms = clients.get_nowait()

    def one(mutant: Mutant) -> Outcome:
        return _decrypt(local.kms, mutant)

    with ThreadPoolExecutor(max_workers=THREADS, initializer=init) as pool:
        return list(pool.map(one, mutants, chunksize=64))


def _detected(outcome: Outcome) -> bool:
    allowed = {INVALID, INCORRECT_KEY} if outcome.mutant.key_id is not None else {INVALID}
    return outcome.plaintext is None and outcome.status == 400 and outcome.code in allowed


def test_tampered_blobs_are_all_refused(server: ServerProcess, sealed: list[Sealed]) -> None:
    mutants = build_mutants(sealed)
    started = time.monotonic()
    outcomes = run_all(server, mutants)
    elapsed = time.monotonic() - started
    missed = [o for o in outcomes if not _detected(o)]
    plaintexts = [o for o in outcomes if o.plaintext is not None]
    server_errors = [o for o in outcomes if o.status >= 500 or o.status == 0]
    codes = Counter(o.code for o in outcomes)
    detected = 100.0 * (len(outcomes) - len(missed)) / len(outcomes)
    print(
        f"C-7 blobs={len(sealed)} mutants={len(outcomes)} detected={detected:.3f}% plaintext={len(plaintexts)} "
        f"5xx={len(server_errors)} codes={dict(codes)} in {elapsed:.1f}s ({len(outcomes) / elapsed:.0f}/s)"
    )
    by_kind = Counter(o.mutant.kind.split(" @")[0] for o in missed)
    examples = [
        f"{o.mutant.kind} KeyId={o.mutant.key_id is not None} -> {o.status} {o.code} "
        f"plaintext={o.plaintext is not None}"
        for o in missed[:15]
    ]
    assert not plaintexts, f"{len(plaintexts)} tampered blobs decrypted: {examples}"
    assert not server_errors, f"{len(server_errors)} 5xx: {examples}"
    assert not missed, (
        f"{len(missed)} mutants not refused as InvalidCiphertext/IncorrectKey, by kind {dict(by_kind)}: {examples}"
    )


def test_reordered_context_still_decrypts(server: ServerProcess, sealed: list[Sealed]) -> None:
    kms: Any = server.client()
    reordered = 0
    for item in sealed:
        context = dict(reversed(list(item.context.items())))
        result = kms.decrypt(CiphertextBlob=item.blob, EncryptionContext=context, KeyId=item.key_id)
        assert result["Plaintext"] == item.plaintext
        reordered += len(context) > 1
    assert reordered >= len(sealed) // 3
