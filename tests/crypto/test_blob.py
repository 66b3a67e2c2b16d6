"""Blob v1 structure: field offsets, round trip, and structural rejection (authentication is test_symmetric's)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.crypto import blob
from openkms.crypto.blob import BLOB_OVERHEAD, BLOB_VERSION_1, SymmetricBlob, peek_key_id
from openkms.errors import InvalidCiphertextException

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

blobs = st.builds(
    SymmetricBlob,
    key_id=st.uuids().map(str),
    version_id=st.binary(min_size=16, max_size=16),
    salt=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    ciphertext_and_tag=st.binary(min_size=16, max_size=200),
)


def _sample() -> SymmetricBlob:
    return SymmetricBlob(KEY_ID, bytes(range(16)), bytes(range(32, 64)), bytes(range(64, 76)), b"C" * 5 + b"T" * 16)


def test_sizes() -> None:
    assert blob.HEADER_SIZE == 77
    assert BLOB_OVERHEAD == 93
    assert BLOB_VERSION_1 == 1


def test_layout_byte_by_byte() -> None:
    sample = _sample()
    data = sample.encode()
    assert data[0] == 0x01
    assert data[1:17] == uuid.UUID(KEY_ID).bytes
    assert data[17:33] == bytes(range(16))
    assert data[33:65] == bytes(range(32, 64))
    assert data[65:77] == bytes(range(64, 76))
    assert data[77:] == b"C" * 5 + b"T" * 16
    assert sample.header() == data[:77]


@given(blobs)
def test_round_trip(value: SymmetricBlob) -> None:
    data = value.encode()
    assert len(data) == BLOB_OVERHEAD + len(value.ciphertext_and_tag) - 16
    assert SymmetricBlob.decode(data) == value
    assert peek_key_id(data) == value.key_id


@pytest.mark.parametrize("version", [0x00, 0x02, 0x80, 0xFF])
def test_unknown_version_byte(version: int) -> None:
    data = bytes([version]) + _sample().encode()[1:]
    with pytest.raises(InvalidCiphertextException):
        SymmetricBlob.decode(data)
    assert peek_key_id(data) is None


@given(st.integers(min_value=0, max_value=BLOB_OVERHEAD - 1))
def test_too_short(length: int) -> None:
    data = _sample().encode()[:length]
    with pytest.raises(InvalidCiphertextException):
        SymmetricBlob.decode(data)
    assert peek_key_id(data) is None


def test_minimum_length_is_accepted_structurally() -> None:
    # Decision (docs/formats.md): an empty ciphertext (tag only) is structurally valid; the tag decides.
    data = _sample().encode()[:BLOB_OVERHEAD]
    assert SymmetricBlob.decode(data).ciphertext_and_tag == data[77:]
    assert len(data[77:]) == 16


def test_decoding_errors_carry_no_detail() -> None:
    with pytest.raises(InvalidCiphertextException) as info:
        SymmetricBlob.decode(b"\x02" + b"\x00" * 200)
    assert info.value.message == ""


@pytest.mark.parametrize(
    "key_id", ["1234ABCD-12AB-34CD-56EF-1234567890AB", "{1234abcd-12ab-34cd-56ef-1234567890ab}", "1234abcd12ab", ""]
)
def test_non_canonical_key_id_refused_on_encode(key_id: str) -> None:
    with pytest.raises(ValueError):
        blob.encode_header(key_id, bytes(16), bytes(32), bytes(12))


@pytest.mark.parametrize(("version_id", "salt", "nonce"), [(15, 32, 12), (16, 31, 12), (16, 32, 11), (16, 32, 13)])
def test_wrong_field_lengths_refused_on_encode(version_id: int, salt: int, nonce: int) -> None:
    with pytest.raises(ValueError):
        blob.encode_header(KEY_ID, bytes(version_id), bytes(salt), bytes(nonce))


def test_encode_requires_a_tag() -> None:
    short = SymmetricBlob(KEY_ID, bytes(16), bytes(32), bytes(12), bytes(15))
    with pytest.raises(ValueError):
        short.encode()
