"""SYMMETRIC_DEFAULT encrypt/decrypt: round trip, freshness, and tamper detection (docs/tests.md C-6/C-7,
in-process)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.crypto import symmetric
from openkms.crypto.blob import BLOB_OVERHEAD, HEADER_SIZE, SymmetricBlob
from openkms.errors import InvalidCiphertextException

MATERIAL = bytes(range(32))
KEY_ID = "0b1e3c2a-5d4f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_KEY_ID = "0b1e3c2a-5d4f-4a6b-8c7d-9e0f1a2b3c4e"
VERSION = bytes(range(100, 116))
CONTEXT = {"Department": "Finance", "purpose": "test", "\u00e9t\u00e9": "\U0001f511"}

contexts = st.dictionaries(st.text(max_size=16), st.text(max_size=16), max_size=6)
plaintexts = st.binary(min_size=1, max_size=4096)


def _decrypt(data: bytes, context: dict[str, str], material: bytes = MATERIAL) -> bytes:
    return symmetric.decrypt(material, SymmetricBlob.decode(data), context)


def _assert_rejected(data: bytes, context: dict[str, str], material: bytes = MATERIAL) -> None:
    with pytest.raises(InvalidCiphertextException) as info:
        _decrypt(data, context, material)
    assert info.value.message == ""


@pytest.fixture(scope="module")
def sample() -> bytes:
    return symmetric.encrypt(MATERIAL, KEY_ID, VERSION, b"attack at dawn", CONTEXT)


@given(plaintexts, contexts)
def test_round_trip(plaintext: bytes, context: dict[str, str]) -> None:
    data = symmetric.encrypt(MATERIAL, KEY_ID, VERSION, plaintext, context)
    assert len(data) == BLOB_OVERHEAD + len(plaintext)
    decoded = SymmetricBlob.decode(data)
    assert (decoded.key_id, decoded.version_id) == (KEY_ID, VERSION)
    assert symmetric.decrypt(MATERIAL, decoded, context) == plaintext


@given(plaintexts, contexts, st.randoms(use_true_random=False))
def test_context_order_does_not_matter(plaintext: bytes, context: dict[str, str], rng: random.Random) -> None:
    items = list(context.items())
    rng.shuffle(items)
    data = symmetric.encrypt(MATERIAL, KEY_ID, VERSION, plaintext, dict(items))
    assert _decrypt(data, context) == plaintext


def test_salt_and_nonce_are_fresh() -> None:
    blobs = [SymmetricBlob.decode(symmetric.encrypt(MATERIAL, KEY_ID, VERSION, b"x", {})) for _ in range(2000)]
    assert len({b.salt for b in blobs}) == len({b.nonce for b in blobs}) == len(blobs)


def test_every_single_byte_change_is_detected(sample: bytes) -> None:
    for index in range(len(sample)):
        for flip in (0x01, 0x80, 0xFF):
            mutated = bytearray(sample)
            mutated[index] ^= flip
            _assert_rejected(bytes(mutated), CONTEXT)


@given(st.data())
def test_random_byte_change_is_detected(data: st.DataObject) -> None:
    plaintext = data.draw(plaintexts)
    blob = bytearray(symmetric.encrypt(MATERIAL, KEY_ID, VERSION, plaintext, CONTEXT))
    blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    _assert_rejected(bytes(blob), CONTEXT)


@pytest.mark.parametrize("count", [1, 2, 15, 16, 17, 64])
def test_truncation_and_extension_are_detected(sample: bytes, count: int) -> None:
    _assert_rejected(sample[:-count], CONTEXT)
    _assert_rejected(sample + bytes(count), CONTEXT)
    _assert_rejected(sample + sample[-count:], CONTEXT)


def test_truncation_to_every_length_is_detected(sample: bytes) -> None:
    for length in range(len(sample)):
        _assert_rejected(sample[:length], CONTEXT)


@pytest.mark.parametrize(
    "context",
    [
        {},
        {**CONTEXT, "extra": "pair"},
        {k: v for k, v in CONTEXT.items() if k != "purpose"},
        {**{k: v for k, v in CONTEXT.items() if k != "Department"}, "department": "Finance"},
        {**CONTEXT, "Department": "finance"},
        {**CONTEXT, "purpose": "test "},
    ],
)
def test_changed_context_is_detected(sample: bytes, context: dict[str, str]) -> None:
    _assert_rejected(sample, context)


def test_unencodable_context_is_invalid_ciphertext(sample: bytes) -> None:
    _assert_rejected(sample, {"k" * 70000: "v"})


def test_wrong_material_is_detected(sample: bytes) -> None:
    _assert_rejected(sample, CONTEXT, material=bytes(32))


@pytest.mark.parametrize(
    ("start", "end"),
    [(1, 17), (17, 33), (33, 65), (65, 77)],
    ids=["key id", "version id", "salt", "nonce"],
)
def test_header_field_swapped_from_another_blob(start: int, end: int) -> None:
    other_version = bytes(16)
    mine = symmetric.encrypt(MATERIAL, KEY_ID, VERSION, b"secret", CONTEXT)
    other = symmetric.encrypt(MATERIAL, OTHER_KEY_ID, other_version, b"secret", CONTEXT)
    swapped = mine[:start] + other[start:end] + mine[end:]
    _assert_rejected(swapped, CONTEXT)


def test_body_swapped_between_blobs(sample: bytes) -> None:
    other = symmetric.encrypt(MATERIAL, KEY_ID, VERSION, b"attack at dusk", CONTEXT)
    _assert_rejected(sample[:HEADER_SIZE] + other[HEADER_SIZE:], CONTEXT)


def test_encrypt_refuses_an_oversized_context() -> None:
    with pytest.raises(ValueError):
        symmetric.encrypt(MATERIAL, KEY_ID, VERSION, b"x", {"k": "v" * 70000})


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_material_must_be_32_bytes(sample: bytes, size: int) -> None:
    with pytest.raises(ValueError):
        symmetric.encrypt(bytes(size), KEY_ID, VERSION, b"x", {})
    with pytest.raises(ValueError):
        _decrypt(sample, CONTEXT, material=bytes(size))


def test_generate_key_material() -> None:
    first, second = symmetric.generate_key_material(), symmetric.generate_key_material()
    assert len(first) == len(second) == 32
    assert first != second


def test_encrypt_from_parts_is_deterministic() -> None:
    parts = (MATERIAL, KEY_ID, VERSION, b"x", CONTEXT, bytes(32), bytes(12))
    assert symmetric._encrypt_from_parts(*parts) == symmetric._encrypt_from_parts(*parts)
    assert _decrypt(symmetric._encrypt_from_parts(*parts), CONTEXT) == b"x"
