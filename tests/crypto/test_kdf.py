"""HKDF (RFC 5869 case 1) and the Argon2id passphrase KEK with its public JSON parameters."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.crypto import kdf
from openkms.crypto.kdf import PassphraseKdfParams

# Known answers computed with the reference implementation (libargon2 20171227, argon2id_hash_raw, version 0x13),
# independently of pyca: (passphrase, salt, iterations, lanes, memory KiB, expected 32-byte KEK).
ARGON2ID_KATS = [
    (
        b"correct horse battery staple",
        bytes(range(16)),
        2,
        1,
        64,
        "2df47ede6358ed17a9976d4fcedb897a10036d432a4acef17d263bfc98bd20ac",
    ),
    (
        "openkms passphrase \u00e9".encode(),
        bytes(range(100, 132)),
        3,
        4,
        1024,
        "e21bf9dba58914cc19be5378bc87b19ea7d252196de66fd014812e975412245f",
    ),
]


def test_hkdf_rfc5869_case_1() -> None:
    okm = kdf.hkdf_sha256(bytes([0x0B] * 22), bytes(range(13)), bytes(range(0xF0, 0xFA)), 42)
    expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    assert okm.hex() == expected


def test_hkdf_output_limit() -> None:
    assert len(kdf.hkdf_sha256(b"k", b"s", b"i", 255 * 32)) == 255 * 32
    with pytest.raises(ValueError):
        kdf.hkdf_sha256(b"k", b"s", b"i", 255 * 32 + 1)


@pytest.mark.parametrize(("passphrase", "salt", "iterations", "lanes", "memory", "expected"), ARGON2ID_KATS)
def test_argon2id_known_answers(
    passphrase: bytes, salt: bytes, iterations: int, lanes: int, memory: int, expected: str
) -> None:
    params = PassphraseKdfParams(salt, iterations, lanes, memory)
    assert kdf.derive_passphrase_kek(passphrase, params).hex() == expected


def test_defaults_and_fresh_salt() -> None:
    first, second = kdf.new_passphrase_params(), kdf.new_passphrase_params()
    assert (first.iterations, first.lanes, first.memory_cost_kib) == (3, 4, 64 * 1024)
    assert len(first.salt) == 32
    assert first.salt != second.salt


def test_default_params_derive_a_32_byte_kek() -> None:
    assert len(kdf.derive_passphrase_kek(b"passphrase", kdf.new_passphrase_params())) == 32


@given(
    st.binary(min_size=16, max_size=64),
    st.integers(1, 64),
    st.integers(1, 64),
    st.integers(512, 4 * 1024 * 1024),
)
def test_json_round_trip(salt: bytes, iterations: int, lanes: int, memory: int) -> None:
    params = PassphraseKdfParams(salt, iterations, lanes, memory)
    text = params.to_json()
    assert json.loads(text)["kdf"] == "argon2id"
    assert PassphraseKdfParams.from_json(text) == params


def _json(**overrides: object) -> str:
    data: dict[str, object] = {
        "kdf": "argon2id",
        "salt": base64.b64encode(bytes(16)).decode(),
        "iterations": 3,
        "lanes": 4,
        "memory_cost_kib": 65536,
    }
    data.update(overrides)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        _json(kdf="scrypt"),
        _json(kdf=None),
        _json(salt="not base64!"),
        _json(salt=base64.b64encode(bytes(15)).decode()),
        _json(salt=None),
        _json(iterations=0),
        _json(iterations=65),
        _json(iterations="3"),
        _json(iterations=True),
        _json(iterations=3.0),
        _json(lanes=0),
        _json(lanes=65),
        _json(memory_cost_kib=31),
        _json(memory_cost_kib=4 * 1024 * 1024 + 1),
        _json(memory_cost_kib=None),
        "not json",
    ],
)
def test_from_json_rejects_malformed_or_out_of_bounds(text: str) -> None:
    with pytest.raises(ValueError):
        PassphraseKdfParams.from_json(text)


def test_params_are_validated_at_construction() -> None:
    with pytest.raises(ValueError):
        PassphraseKdfParams(bytes(16), 3, 4, 8 * 4 - 1)
