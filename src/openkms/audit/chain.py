"""The hash chain over audit records (docs/audit.md, "Tamper evidence").

::

    hash(n) = SHA-256( hash(n-1) as 32 bytes | seq(n) as 8 bytes big-endian | event(n) as UTF-8 )

with ``hash(0)`` 32 zero bytes. ``event`` is the record's canonical JSON text exactly as stored, so the
verifier hashes stored bytes and never has to re-serialise. Binding ``seq`` makes a reordered or renumbered
record fail even if its text is intact. SHA-256 from hashlib, as for SigV4: a hash, not a key operation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, non-ASCII kept (the chain hashes these exact bytes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def link(previous_hash: str, seq: int, event_text: str) -> str:
    """The hash of record ``seq`` whose predecessor's hash is ``previous_hash`` (both hex)."""
    digest = hashlib.sha256(bytes.fromhex(previous_hash))
    digest.update(seq.to_bytes(8, "big"))
    digest.update(event_text.encode("utf-8"))
    return digest.hexdigest()
