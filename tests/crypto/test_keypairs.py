"""Key generation, PKCS#8 / SPKI encodings and loading by KeySpec, checked against plain pyca calls."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.crypto import keypairs
from openkms.crypto.errors import InvalidKeyError

CLASSICAL = {
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
}
ML_DSA = {"ML_DSA_44", "ML_DSA_65", "ML_DSA_87"}
ML_KEM = {"ML_KEM_768", "ML_KEM_1024"}
SPECS = sorted(keypairs.SUPPORTED_SPECS)

# What plain pyca must find inside each spec's PKCS#8: the key class and, for RSA and EC, size or curve name.
EXPECTED: dict[str, tuple[type, int | str | None]] = {
    "RSA_2048": (rsa.RSAPrivateKey, 2048),
    "RSA_3072": (rsa.RSAPrivateKey, 3072),
    "RSA_4096": (rsa.RSAPrivateKey, 4096),
    "ECC_NIST_P256": (ec.EllipticCurvePrivateKey, "secp256r1"),
    "ECC_NIST_P384": (ec.EllipticCurvePrivateKey, "secp384r1"),
    "ECC_NIST_P521": (ec.EllipticCurvePrivateKey, "secp521r1"),
    "ECC_SECG_P256K1": (ec.EllipticCurvePrivateKey, "secp256k1"),
    "ECC_NIST_EDWARDS25519": (ed25519.Ed25519PrivateKey, None),
    "ML_DSA_44": (mldsa.MLDSA44PrivateKey, None),
    "ML_DSA_65": (mldsa.MLDSA65PrivateKey, None),
    "ML_DSA_87": (mldsa.MLDSA87PrivateKey, None),
    "ML_KEM_768": (mlkem.MLKEM768PrivateKey, None),
    "ML_KEM_1024": (mlkem.MLKEM1024PrivateKey, None),
}
# A spec of the same family but another size or curve, for the "is it really that spec" checks.
NEIGHBOUR = {
    "RSA_2048": "RSA_3072",
    "RSA_3072": "RSA_4096",
    "RSA_4096": "RSA_2048",
    "ECC_NIST_P256": "ECC_SECG_P256K1",
    "ECC_NIST_P384": "ECC_NIST_P256",
    "ECC_NIST_P521": "ECC_NIST_P384",
    "ECC_SECG_P256K1": "ECC_NIST_P256",
    "ECC_NIST_EDWARDS25519": "ECC_NIST_P256",
    "ML_DSA_44": "ML_DSA_65",
    "ML_DSA_65": "ML_DSA_87",
    "ML_DSA_87": "ML_DSA_44",
    "ML_KEM_768": "ML_KEM_1024",
    "ML_KEM_1024": "ML_KEM_768",
}


@functools.cache
def _der(spec: str) -> bytes:
    return keypairs.generate_private_key(spec)


def _spki(der: bytes) -> bytes:
    return (
        serialization.load_der_private_key(der, None)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_supported_specs_are_the_kms_names_this_build_can_do() -> None:
    expected = set(CLASSICAL)
    if backend.mldsa_supported():
        expected |= ML_DSA
    if backend.mlkem_supported():
        expected |= ML_KEM
    assert keypairs.SUPPORTED_SPECS == expected
    assert "ML_KEM_512" not in keypairs.SUPPORTED_SPECS


@pytest.mark.parametrize("spec", SPECS)
def test_generated_pkcs8_is_that_spec_for_plain_pyca(spec: str) -> None:
    der = _der(spec)
    key = serialization.load_der_private_key(der, password=None)  # independent path, full validation
    key_type, detail = EXPECTED[spec]
    assert isinstance(key, key_type)
    if isinstance(key, rsa.RSAPrivateKey):
        assert (key.key_size, key.private_numbers().public_numbers.e) == (detail, 65537)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert key.curve.name == detail
    assert (
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        == der
    )


@pytest.mark.parametrize("spec", SPECS)
def test_load_public_key_der_and_spec_round_trip(spec: str) -> None:
    der = _der(spec)
    private = keypairs.load_private_key(spec, der)
    spki = keypairs.public_key_der(private)
    assert spki == _spki(der)
    assert keypairs.spec_of_public_key(spki) == spec
    public = keypairs.load_public_key(spec, spki)
    assert public == keypairs.public_key(private)
    assert keypairs.import_private_key(spec, der) == der


def test_keys_are_fresh() -> None:
    assert keypairs.generate_private_key("ECC_NIST_P256") != keypairs.generate_private_key("ECC_NIST_P256")


@pytest.mark.parametrize("spec", SPECS)
def test_another_spec_is_refused(spec: str) -> None:
    other = NEIGHBOUR[spec]
    if other not in keypairs.SUPPORTED_SPECS:
        pytest.skip(f"{other} is not in this pyca build")
    with pytest.raises(InvalidKeyError):
        keypairs.load_private_key(other, _der(spec))
    with pytest.raises(InvalidKeyError):
        keypairs.import_private_key(other, _der(spec))
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key(other, _spki(_der(spec)))


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519"])
def test_private_and_public_encodings_are_not_interchangeable(spec: str) -> None:
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key(spec, _der(spec))
    with pytest.raises(InvalidKeyError):
        keypairs.load_private_key(spec, _spki(_der(spec)))


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x30", b"\x30\x00", b"not a key", b"\x00" * 64],
    ids=["empty", "lone-tag", "empty-sequence", "text", "zeros"],
)
@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ML_DSA_44"])
def test_malformed_der_is_invalid_key(spec: str, blob: bytes) -> None:
    if spec not in keypairs.SUPPORTED_SPECS:
        pytest.skip(f"{spec} is not in this pyca build")
    for load in (keypairs.load_private_key, keypairs.load_public_key, keypairs.import_private_key):
        with pytest.raises(InvalidKeyError):
            load(spec, blob)
    assert keypairs.spec_of_public_key(blob) is None


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P384"])
def test_truncated_der_is_invalid_key(spec: str) -> None:
    der, spki = _der(spec), _spki(_der(spec))
    with pytest.raises(InvalidKeyError):
        keypairs.load_private_key(spec, der[:-1])
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key(spec, spki[:-1])
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key(spec, spki + b"\x00")


def test_pem_and_encrypted_pkcs8_are_refused() -> None:
    key = serialization.load_der_private_key(_der("ECC_NIST_P256"), None)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    encrypted = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    for blob in (pem, encrypted):
        with pytest.raises(InvalidKeyError):
            keypairs.load_private_key("ECC_NIST_P256", blob)


def test_ec_point_off_the_curve_is_refused() -> None:
    spki = bytearray(_spki(_der("ECC_NIST_P256")))
    spki[-1] ^= 0x01  # y no longer matches x
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key("ECC_NIST_P256", bytes(spki))
    assert keypairs.spec_of_public_key(bytes(spki)) is None


def _encodings(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pkcs8, spki


def test_foreign_key_types_have_no_spec() -> None:
    for private, near in (
        (rsa.generate_private_key(65537, 1024), "RSA_2048"),  # noqa: S505 - a size KMS lacks, on purpose
        (ec.generate_private_key(ec.SECP224R1()), "ECC_NIST_P256"),
    ):
        pkcs8, spki = _encodings(private)
        assert keypairs.spec_of_public_key(spki) is None
        with pytest.raises(InvalidKeyError):
            keypairs.load_private_key(near, pkcs8)
        with pytest.raises(InvalidKeyError):
            keypairs.load_public_key(near, spki)


@pytest.mark.parametrize("spec", ["SYMMETRIC_DEFAULT", "HMAC_256", "ML_KEM_512", "SM2", "RSA_1024", ""])
def test_unsupported_spec_is_a_plain_value_error(spec: str) -> None:
    for call in (
        lambda: keypairs.generate_private_key(spec),
        lambda: keypairs.load_private_key(spec, _der("ECC_NIST_P256")),
        lambda: keypairs.load_public_key(spec, _spki(_der("ECC_NIST_P256"))),
    ):
        with pytest.raises(ValueError) as raised:
            call()
        assert not isinstance(raised.value, InvalidKeyError)


def _corrupt_rsa_prime(der: bytes) -> bytes:
    """The PKCS#8 with the last byte of the prime p changed: still well-formed DER, no longer a valid key."""
    key = serialization.load_der_private_key(der, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.private_numbers()
    p = numbers.p.to_bytes((numbers.p.bit_length() + 7) // 8, "big")
    assert der.count(p) == 1
    return der.replace(p, p[:-1] + bytes([p[-1] ^ 0x02]))


def test_import_validates_rsa_but_stored_load_trusts_it() -> None:
    """The documented trade-off: only the import path pays for (and needs) the full RSA key check.

    Even a corrupted stored key makes no faulty signature: OpenSSL checks the CRT result and falls back, so the
    signature is still correct and leaks no factor (the Boneh-DeMillo-Lipton / Lenstra fault attack).
    """
    der = _der("RSA_2048")
    corrupt = _corrupt_rsa_prime(der)
    with pytest.raises(InvalidKeyError):
        keypairs.import_private_key("RSA_2048", corrupt)
    loaded = keypairs.load_private_key("RSA_2048", corrupt)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    signature = loaded.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    public = keypairs.public_key(keypairs.load_private_key("RSA_2048", der))
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=600), spec=st.sampled_from(["RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519"]))
def test_random_bytes_are_never_a_key(blob: bytes, spec: str) -> None:
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key(spec, blob)
    with pytest.raises(InvalidKeyError):
        keypairs.load_private_key(spec, blob)
