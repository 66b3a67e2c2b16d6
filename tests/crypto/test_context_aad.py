"""The canonical encryption-context encoding: exact bytes, order independence, no ambiguity, limits."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.crypto.context_aad import encode_encryption_context

contexts = st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=12)


def _reference(ctx: dict[str, str]) -> bytes:
    """A second, deliberately plain implementation of docs/formats.md section 2."""
    out = struct.pack(">H", len(ctx))
    for key in sorted(ctx, key=lambda k: k.encode("utf-8")):
        k, v = key.encode("utf-8"), ctx[key].encode("utf-8")
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def test_empty_context_is_a_zero_count() -> None:
    assert encode_encryption_context({}) == b"\x00\x00"


def test_known_bytes() -> None:
    assert encode_encryption_context({"b": "2", "a": "1"}) == bytes.fromhex("0002 0001 61 0001 31 0001 62 0001 32")


def test_sorted_by_utf8_bytes_not_utf16() -> None:
    # U+FF61 sorts after U+1F511 in UTF-16 code units (surrogates start at 0xD8), before it in UTF-8 bytes.
    encoded = encode_encryption_context({"\U0001f511": "x", "\uff61": "y"})
    assert encoded.index("\uff61".encode()) < encoded.index("\U0001f511".encode())


def test_length_prefixes_remove_ambiguity() -> None:
    assert encode_encryption_context({"a": "bc"}) != encode_encryption_context({"ab": "c"})
    assert encode_encryption_context({"a": "", "b": ""}) != encode_encryption_context({"a": "\x00\x00\x00\x01b"})


def test_field_limits() -> None:
    encode_encryption_context({"k" * 0xFFFF: "v" * 0xFFFF})
    with pytest.raises(ValueError):
        encode_encryption_context({"k" * 0x10000: "v"})
    with pytest.raises(ValueError):
        encode_encryption_context({"k": "\u00e9" * 0x8000})  # 65536 UTF-8 bytes from 32768 characters
    with pytest.raises(ValueError):
        encode_encryption_context({str(i): "" for i in range(0x10000)})


def test_lone_surrogate_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        encode_encryption_context({"\ud800": "x"})


@given(contexts)
def test_matches_reference(ctx: dict[str, str]) -> None:
    assert encode_encryption_context(ctx) == _reference(ctx)


@given(contexts, st.randoms(use_true_random=False))
def test_order_independent(ctx: dict[str, str], rng: random.Random) -> None:
    items = list(ctx.items())
    rng.shuffle(items)
    assert encode_encryption_context(dict(items)) == encode_encryption_context(ctx)


@given(contexts, contexts)
def test_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (encode_encryption_context(a) == encode_encryption_context(b)) == (a == b)
