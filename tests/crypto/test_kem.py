"""ML-KEM encapsulation: round trips with plain pyca, implicit rejection, and one error for a wrong length."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem

from openkms.crypto import kem, keypairs
from openkms.crypto.errors import DecryptionError

SPECS = ["ML_KEM_768", "ML_KEM_1024"]
pytestmark = pytest.mark.skipif(
    not set(SPECS) <= keypairs.SUPPORTED_SPECS, reason="this pyca/OpenSSL build has no ML-KEM"
)


@functools.cache
def _private(spec: str) -> keypairs.PrivateKey:
    return keypairs.load_private_key(spec, keypairs.generate_private_key(spec))


def _public(spec: str) -> keypairs.PublicKey:
    return keypairs.load_public_key(spec, keypairs.public_key_der(_private(spec)))


@pytest.mark.parametrize("spec", SPECS)
def test_round_trip_and_sizes(spec: str) -> None:
    secret, ciphertext = kem.encapsulate(_public(spec))
    assert (len(secret), len(ciphertext)) == (kem.SHARED_SECRET_SIZE, kem.CIPHERTEXT_SIZES[spec])
    assert kem.decapsulate(_private(spec), ciphertext) == secret
    again, other_ciphertext = kem.encapsulate(_public(spec))
    assert (again, other_ciphertext) != (secret, ciphertext)


@pytest.mark.parametrize("spec", SPECS)
def test_interoperates_with_plain_pyca(spec: str) -> None:
    private = _private(spec)
    assert isinstance(private, mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey)
    secret, ciphertext = kem.encapsulate(_public(spec))
    assert private.decapsulate(ciphertext) == secret
    theirs, their_ciphertext = private.public_key().encapsulate()
    assert kem.decapsulate(private, their_ciphertext) == theirs


@pytest.mark.parametrize("spec", SPECS)
def test_altered_ciphertext_yields_an_unrelated_secret_not_an_error(spec: str) -> None:
    """Implicit rejection (FIPS 203): deterministic for the same forgery, unrelated to the real secret."""
    secret, ciphertext = kem.encapsulate(_public(spec))
    altered = bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:]
    rejected = kem.decapsulate(_private(spec), altered)
    assert len(rejected) == 32 and rejected != secret
    assert kem.decapsulate(_private(spec), altered) == rejected
    other_private = keypairs.load_private_key(spec, keypairs.generate_private_key(spec))
    assert kem.decapsulate(other_private, ciphertext) != secret


@pytest.mark.parametrize("spec", SPECS)
def test_wrong_length_is_one_identical_decryption_error(spec: str) -> None:
    size = kem.CIPHERTEXT_SIZES[spec]
    other = next(length for name, length in kem.CIPHERTEXT_SIZES.items() if name != spec)
    errors = []
    for length in (0, 1, size - 1, size + 1, other, 2 * size):
        with pytest.raises(DecryptionError) as raised:
            kem.decapsulate(_private(spec), bytes(length))
        errors.append(raised.value)
    assert {(str(e), e.args, e.__cause__) for e in errors} == {("", (), None)}


def test_non_ml_kem_keys_are_value_errors() -> None:
    ec_private = keypairs.load_private_key("ECC_NIST_P256", keypairs.generate_private_key("ECC_NIST_P256"))
    with pytest.raises(ValueError):
        kem.encapsulate(keypairs.public_key(ec_private))
    with pytest.raises(ValueError):
        kem.decapsulate(ec_private, bytes(1088))
    if "ML_DSA_44" in keypairs.SUPPORTED_SPECS:
        with pytest.raises(ValueError):
            kem.encapsulate(
                keypairs.public_key(keypairs.load_private_key("ML_DSA_44", keypairs.generate_private_key("ML_DSA_44")))
            )
