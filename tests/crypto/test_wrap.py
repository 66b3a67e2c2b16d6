"""Wrap v1: round trip, binding (Vault MoveIntegrityV2, docs/tests.md C-8 in-process), tamper detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openkms.crypto import wrap
from openkms.crypto.errors import IntegrityError

ROOT = bytes(range(32))
ARN_A = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-00000000000a"
ARN_B = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-00000000000b"
V1, V2 = "11" * 16, "22" * 16

bindings = st.lists(st.text(max_size=40), min_size=1, max_size=5)


def _binding(arn: str, version: str) -> tuple[str, str, str]:
    return ("kms-key-material", arn, version)


@given(st.binary(max_size=512), bindings)
def test_round_trip(secret: bytes, binding: list[str]) -> None:
    wrapped = wrap.wrap(ROOT, secret, binding)
    assert len(wrapped) == wrap.WRAP_OVERHEAD + len(secret)
    assert wrapped[0] == wrap.WRAP_VERSION_1
    assert wrap.unwrap(ROOT, wrapped, binding) == secret
    assert wrap.unwrap(ROOT, wrapped, tuple(binding)) == secret


@given(st.binary(max_size=64), bindings, bindings)
def test_other_binding_fails(secret: bytes, binding: list[str], other: list[str]) -> None:
    wrapped = wrap.wrap(ROOT, secret, binding)
    if other == binding:
        assert wrap.unwrap(ROOT, wrapped, other) == secret
    else:
        with pytest.raises(IntegrityError):
            wrap.unwrap(ROOT, wrapped, other)


def test_moved_rows_fail_closed() -> None:
    """Swap wrapped material between keys and between versions, as an attacker with the database could."""
    rows = {
        (arn, version): wrap.wrap(ROOT, f"material {arn} {version}".encode(), _binding(arn, version))
        for arn in (ARN_A, ARN_B)
        for version in (V1, V2)
    }
    for (arn, version), wrapped in rows.items():
        assert wrap.unwrap(ROOT, wrapped, _binding(arn, version)) == f"material {arn} {version}".encode()
        for other in rows:
            if other != (arn, version):
                with pytest.raises(IntegrityError):
                    wrap.unwrap(ROOT, wrapped, _binding(*other))


@pytest.mark.parametrize(
    ("binding", "other"),
    [
        (("a", "bc"), ("ab", "c")),
        (("a",), ("a", "")),
        (("ab",), ("a", "b")),
        (("access-key-secret", "AKIA1"), ("kms-key-material", "AKIA1")),
        (("x", "y"), ("y", "x")),
        (("\u00e9",), ("e\u0301",)),
    ],
)
def test_confusable_bindings_differ(binding: tuple[str, ...], other: tuple[str, ...]) -> None:
    assert wrap.encode_binding(binding) != wrap.encode_binding(other)
    with pytest.raises(IntegrityError):
        wrap.unwrap(ROOT, wrap.wrap(ROOT, b"secret", binding), other)


def test_binding_bytes() -> None:
    assert wrap.encode_binding(("ab", "")) == bytes.fromhex("01 00000002 00000002 6162 00000000")


def test_binding_must_be_a_non_empty_sequence_of_strings() -> None:
    with pytest.raises(TypeError):
        wrap.wrap(ROOT, b"s", "access-key-secret")
    with pytest.raises(ValueError):
        wrap.wrap(ROOT, b"s", ())
    with pytest.raises(IntegrityError):
        wrap.unwrap(ROOT, wrap.wrap(ROOT, b"s", ("a",)), ())


def test_every_single_byte_change_is_detected() -> None:
    wrapped = wrap.wrap(ROOT, bytes(32), _binding(ARN_A, V1))
    for index in range(len(wrapped)):
        for flip in (0x01, 0x80, 0xFF):
            mutated = bytearray(wrapped)
            mutated[index] ^= flip
            with pytest.raises(IntegrityError):
                wrap.unwrap(ROOT, bytes(mutated), _binding(ARN_A, V1))


def test_truncation_and_extension_are_detected() -> None:
    wrapped = wrap.wrap(ROOT, bytes(32), _binding(ARN_A, V1))
    for length in range(len(wrapped)):
        with pytest.raises(IntegrityError):
            wrap.unwrap(ROOT, wrapped[:length], _binding(ARN_A, V1))
    for extra in (1, 16, 64):
        with pytest.raises(IntegrityError):
            wrap.unwrap(ROOT, wrapped + bytes(extra), _binding(ARN_A, V1))


def test_wrong_root_key() -> None:
    wrapped = wrap.wrap(ROOT, b"secret", ("x",))
    with pytest.raises(IntegrityError):
        wrap.unwrap(bytes(32), wrapped, ("x",))


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_wrapping_key_must_be_256_bits(size: int) -> None:
    with pytest.raises(ValueError):
        wrap.wrap(bytes(size), b"secret", ("x",))
    with pytest.raises(IntegrityError):
        wrap.unwrap(bytes(size), wrap.wrap(ROOT, b"secret", ("x",)), ("x",))


def test_nonces_are_fresh() -> None:
    nonces = {wrap.wrap(ROOT, b"", ("x",))[1:13] for _ in range(2000)}
    assert len(nonces) == 2000


def test_root_key_under_a_seal_kek() -> None:
    kek, root = bytes([7]) * 32, bytes([9]) * 32
    sealed = wrap.wrap(kek, root, ("openkms-root-key", "passphrase"))
    assert wrap.unwrap(kek, sealed, ("openkms-root-key", "passphrase")) == root
    with pytest.raises(IntegrityError):
        wrap.unwrap(kek, sealed, ("openkms-root-key", "keyfile"))


def test_wrap_with_nonce_is_deterministic() -> None:
    first = wrap._wrap_with_nonce(ROOT, b"secret", ("x",), bytes(12))
    assert first == wrap._wrap_with_nonce(ROOT, b"secret", ("x",), bytes(12))
    assert first[1:13] == bytes(12)
