"""Canonical bytes of an encryption context, authenticated as part of a blob's AAD.

The encoding follows the AWS Encryption SDK's serialized encryption context: a 2-byte big-endian pair count,
then the pairs sorted by the UTF-8 bytes of their keys, each written as ``len(key) | key | len(value) | value``
with 2-byte big-endian lengths. Length prefixes make it unambiguous (``{"a": "bc"}`` and ``{"ab": "c"}``
differ), and sorting makes it independent of the order a client sent the pairs in. Frozen: see docs/formats.md.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

_MAX_FIELD = 0xFFFF


def _u16(value: int, what: str) -> bytes:
    if value > _MAX_FIELD:
        raise ValueError(f"encryption context {what} exceeds 65535")
    return struct.pack(">H", value)


def encode_encryption_context(ctx: Mapping[str, str]) -> bytes:
    """Return the canonical encoding; ``ValueError`` if a count or field does not fit in 2 bytes.

    A string that is not valid Unicode (a lone surrogate) raises ``UnicodeEncodeError``, a ``ValueError``.
    """
    pairs = sorted((key.encode("utf-8"), value.encode("utf-8")) for key, value in ctx.items())
    parts = [_u16(len(pairs), "pair count")]
    for key, value in pairs:
        parts += (_u16(len(key), "key length"), key, _u16(len(value), "value length"), value)
    return b"".join(parts)
