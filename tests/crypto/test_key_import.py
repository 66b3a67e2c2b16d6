"""crypto/key_import.py: unwrapping what pyca (standing in for a customer's HSM or OpenSSL) wraps with the public
key, the import token format, and the material fingerprint.

The wrapping side is written here with pyca's primitives directly, not with our module, so a round trip checks our
unwrapping against an independent implementation of each AWS wrapping algorithm. The token is likewise opened
here with HKDF and AES-GCM from pyca following docs/formats.md, so the documented format is what is produced.
"""

from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from openkms.crypto import key_import
from openkms.crypto.errors import DecryptionError, IntegrityError

ROOT = bytes(range(32))


@pytest.fixture(scope="module")
def wrapping_keys() -> dict[str, bytes]:
    return {spec: key_import.generate_wrapping_key(spec) for spec in sorted(key_import.WRAPPING_KEY_SPECS)}


def _public(spec: str, private_der: bytes) -> rsa.RSAPublicKey:
    public = serialization.load_der_public_key(key_import.wrapping_public_key(spec, private_der))
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def _oaep(algorithm: str) -> padding.OAEP:
    """AWS's OAEP: MGF1 with the same hash as the label hash, empty label."""
    hash_type = hashes.SHA256() if algorithm.endswith("SHA_256") else hashes.SHA1()  # noqa: S303 - an AWS algorithm
    return padding.OAEP(mgf=padding.MGF1(hash_type), algorithm=hash_type, label=None)


def wrap(public: rsa.RSAPublicKey, algorithm: str, material: bytes, aes_key: bytes | None = None) -> bytes:
    """What a customer sends: AWS's documented wrapping, with pyca only."""
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, _oaep(algorithm))
    aes_key = aes_key if aes_key is not None else os.urandom(32)
    return public.encrypt(aes_key, _oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


def test_the_public_key_is_der_spki_of_the_spec(wrapping_keys: dict[str, bytes]) -> None:
    for spec, private_der in wrapping_keys.items():
        public = _public(spec, private_der)
        assert public.key_size == int(spec.removeprefix("RSA_"))
        assert public.public_numbers().e == 65537


@pytest.mark.parametrize("algorithm", sorted(key_import.WRAPPING_ALGORITHMS))
@pytest.mark.parametrize("spec", sorted(key_import.WRAPPING_KEY_SPECS))
def test_round_trip_with_an_independent_wrapper(wrapping_keys: dict[str, bytes], spec: str, algorithm: str) -> None:
    private_der = wrapping_keys[spec]
    public = _public(spec, private_der)
    for material in (os.urandom(32), os.urandom(28), os.urandom(64), b"\x00" * 32):
        assert key_import.unwrap_material(spec, private_der, algorithm, wrap(public, algorithm, material)) == material


@pytest.mark.parametrize("algorithm", ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"])
def test_rsa_aes_key_wrap_carries_a_private_key(wrapping_keys: dict[str, bytes], algorithm: str) -> None:
    """RSA private keys do not fit in one OAEP block: they need the hybrid algorithm (AWS says so too)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = _public("RSA_2048", wrapping_keys["RSA_2048"])
    wrapped = wrap(public, algorithm, private)
    assert key_import.unwrap_material("RSA_2048", wrapping_keys["RSA_2048"], algorithm, wrapped) == private
    with pytest.raises(ValueError):  # and plain OAEP cannot even make the ciphertext
        public.encrypt(private, _oaep("RSAES_OAEP_SHA_256"))


def _failures(public: rsa.RSAPublicKey, algorithm: str) -> dict[str, bytes]:
    material = os.urandom(32)
    good = wrap(public, algorithm, material)
    size = public.key_size // 8
    cases = {
        "empty": b"",
        "one byte": b"\x01",
        "truncated": good[:-1],
        "extended": good + b"\x00",
        "first byte flipped": bytes([good[0] ^ 1]) + good[1:],
        "last byte flipped": good[:-1] + bytes([good[-1] ^ 0x80]),
        "all zero": bytes(len(good)),
        "modulus-sized ones": b"\xff" * size,
        "pkcs1 v1.5": public.encrypt(material, padding.PKCS1v15()),
    }
    if algorithm.startswith("RSA_AES"):
        hash_name = "RSAES_OAEP_" + algorithm.removeprefix("RSA_AES_KEY_WRAP_")
        cases["rsa part only"] = good[:size]
        cases["wrapped part flipped"] = good[: size + 3] + bytes([good[size + 3] ^ 4]) + good[size + 4 :]
        cases["128-bit aes key"] = public.encrypt(os.urandom(16), _oaep(hash_name)) + aes_key_wrap_with_padding(
            os.urandom(16), material
        )
        cases["wrapped part too short"] = good[: size + 8]
    return cases


@pytest.mark.parametrize("algorithm", sorted(key_import.WRAPPING_ALGORITHMS))
def test_every_malformed_wrapping_fails_the_same_way(wrapping_keys: dict[str, bytes], algorithm: str) -> None:
    spec = "RSA_2048"
    for name, encrypted in _failures(_public(spec, wrapping_keys[spec]), algorithm).items():
        with pytest.raises(DecryptionError) as caught:
            key_import.unwrap_material(spec, wrapping_keys[spec], algorithm, encrypted)
        assert str(caught.value) == "", name


@pytest.mark.parametrize(
    ("wrapped_with", "opened_as"),
    [
        ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"),
        ("RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_256"),
        ("RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"),
    ],
)
def test_another_algorithm_or_key_does_not_unwrap(
    wrapping_keys: dict[str, bytes], wrapped_with: str, opened_as: str
) -> None:
    public = _public("RSA_2048", wrapping_keys["RSA_2048"])
    with pytest.raises(DecryptionError):
        key_import.unwrap_material(
            "RSA_2048", wrapping_keys["RSA_2048"], opened_as, wrap(public, wrapped_with, b"k" * 32)
        )
    other = _public("RSA_3072", wrapping_keys["RSA_3072"])
    with pytest.raises(DecryptionError):
        key_import.unwrap_material(
            "RSA_2048", wrapping_keys["RSA_2048"], wrapped_with, wrap(other, wrapped_with, b"k" * 32)
        )


def test_pkcs1_v1_5_and_unknown_names_are_programming_errors(wrapping_keys: dict[str, bytes]) -> None:
    for algorithm, spec in (("RSAES_PKCS1_V1_5", "RSA_2048"), ("SM2PKE", "RSA_2048"), ("RSAES_OAEP_SHA_256", "SM2")):
        with pytest.raises(ValueError):
            key_import.unwrap_material(spec, wrapping_keys["RSA_2048"], algorithm, b"\x00" * 256)
    for spec in ("SM2", "RSA_1024", "ECC_NIST_P256"):
        with pytest.raises(ValueError):
            key_import.generate_wrapping_key(spec)


# -- import token


def _token(private_der: bytes = b"\x30\x03\x02\x01\x00", valid_to: float = 1_700_086_400.125) -> key_import.ImportToken:
    return key_import.ImportToken(
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "RSA_AES_KEY_WRAP_SHA_256",
        "RSA_4096",
        valid_to,
        private_der,
    )


def test_token_round_trip_and_randomness() -> None:
    token = _token(os.urandom(1200))
    sealed = key_import.seal_token(ROOT, token)
    assert key_import.open_token(ROOT, sealed) == token
    assert key_import.seal_token(ROOT, token) != sealed  # fresh salt and nonce every time
    assert token.private_key_der.hex() not in repr(token)


def test_token_format_matches_the_documentation() -> None:
    """Open a token with pyca's HKDF and AES-GCM exactly as docs/formats.md describes it."""
    salt, nonce = bytes(range(100, 132)), bytes(range(200, 212))
    token = _token()
    sealed = key_import._seal_token_from_parts(ROOT, token, salt, nonce)
    assert sealed[0] == 0x01 and sealed[1:33] == salt and sealed[33:45] == nonce
    token_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"openkms import token v1").derive(ROOT)
    payload = AESGCM(token_key).decrypt(nonce, sealed[45:], sealed[:33])
    expected = struct.pack(">Q", 1_700_086_400_125) + b"".join(
        struct.pack(">I", len(part)) + part
        for part in (token.key_arn.encode(), b"RSA_AES_KEY_WRAP_SHA_256", b"RSA_4096", token.private_key_der)
    )
    assert payload == expected


def test_any_change_to_a_token_is_refused() -> None:
    sealed = key_import.seal_token(ROOT, _token(os.urandom(300)))
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            altered = sealed[:i] + bytes([sealed[i] ^ bit]) + sealed[i + 1 :]
            with pytest.raises(IntegrityError):
                key_import.open_token(ROOT, altered)
    for bad in (b"", sealed[:44], sealed[:-1], sealed + b"\x00", b"\x02" + sealed[1:], os.urandom(len(sealed))):
        with pytest.raises(IntegrityError):
            key_import.open_token(ROOT, bad)
    with pytest.raises(IntegrityError):
        key_import.open_token(bytes(32), sealed)  # another root key (another installation, or after rotation)


def test_an_authentic_but_malformed_payload_is_refused() -> None:
    """Only a bug could seal one; opening it must still fail closed."""
    salt, nonce = bytes(32), bytes(12)
    token_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"openkms import token v1").derive(ROOT)
    header = b"\x01" + salt
    for payload in (b"", b"\x00" * 8 + b"\x00\x00\x00\x09abc", b"\x00" * 8 + b"\x00" * 16 + b"extra"):
        sealed = header + nonce + AESGCM(token_key).encrypt(nonce, payload, header)
        with pytest.raises(IntegrityError):
            key_import.open_token(ROOT, sealed)


def test_a_token_names_only_supported_wrapping() -> None:
    with pytest.raises(ValueError):
        key_import.seal_token(ROOT, key_import.ImportToken("arn", "RSAES_PKCS1_V1_5", "RSA_2048", 1.0, b""))


# -- fingerprint


def test_fingerprint_commits_to_material_key_and_version() -> None:
    material, version = os.urandom(32), os.urandom(16)
    fingerprint = key_import.material_fingerprint("key-1", version, material)
    assert len(fingerprint) == 32
    assert key_import.material_fingerprint("key-1", version, material) == fingerprint
    key_import.verify_fingerprint(fingerprint, "key-1", version, material)
    for args in (("key-2", version, material), ("key-1", os.urandom(16), material), ("key-1", version, os.urandom(32))):
        assert key_import.material_fingerprint(*args) != fingerprint
        with pytest.raises(IntegrityError):
            key_import.verify_fingerprint(fingerprint, *args)
    # Length prefixes keep the fields apart.
    assert key_import.material_fingerprint("ab", b"c", b"") != key_import.material_fingerprint("a", b"bc", b"")
