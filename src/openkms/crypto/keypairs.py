"""Asymmetric key pairs for the KMS KeySpecs: generation, PKCS#8 / SPKI encoding, and loading *as a named spec*.

Private keys leave this module only as unencrypted PKCS#8 DER. That is our storage format (it is then wrapped,
formats.md section 3) and also what AWS's GenerateDataKeyPair returns as ``PrivateKeyPlaintext``. Public keys
are DER SubjectPublicKeyInfo, what GetPublicKey returns. ML-DSA and ML-KEM private keys are PKCS#8 in their
*seed* form (pyca never writes the expanded form).

Every load names the spec it expects and checks it (RSA modulus size, curve, algorithm): bytes of another spec
are an :class:`InvalidKeyError`, so a caller cannot sign with a P-384 key that metadata calls P-256.

ML-DSA and ML-KEM need OpenSSL 3.5+ (or AWS-LC / BoringSSL). Each parameter set is probed once at import by
generating a throwaway key; a build without it simply leaves it out of :data:`SUPPORTED_SPECS`. ML-KEM-512 is
not offered (this OpenSSL build lacks it, and no KMS KeySpec needs it).
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa

from openkms.crypto.errors import InvalidKeyError

PQPrivateKey: TypeAlias = (
    mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
    | mldsa.MLDSA87PrivateKey
    | mlkem.MLKEM768PrivateKey
    | mlkem.MLKEM1024PrivateKey
)
PQPublicKey: TypeAlias = (
    mldsa.MLDSA44PublicKey
    | mldsa.MLDSA65PublicKey
    | mldsa.MLDSA87PublicKey
    | mlkem.MLKEM768PublicKey
    | mlkem.MLKEM1024PublicKey
)
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | PQPrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | PQPublicKey

RSA_PUBLIC_EXPONENT = 65537
ED25519_SPEC = "ECC_NIST_EDWARDS25519"
_RSA_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
_SPEC_OF_CURVE: dict[str, str] = {curve().name: spec for spec, curve in _CURVES.items()}
_PQ_CANDIDATES: dict[str, tuple[type[PQPrivateKey], type[PQPublicKey]]] = {
    "ML_DSA_44": (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
    "ML_DSA_65": (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
    "ML_DSA_87": (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
    "ML_KEM_768": (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey),
    "ML_KEM_1024": (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey),
}


def _available(private_type: type[PQPrivateKey]) -> bool:
    try:
        private_type.generate()
    except UnsupportedAlgorithm:
        return False
    return True


_PQ = {spec: types for spec, types in _PQ_CANDIDATES.items() if _available(types[0])}

SUPPORTED_SPECS: frozenset[str] = frozenset(_RSA_BITS) | frozenset(_CURVES) | {ED25519_SPEC} | frozenset(_PQ)


def _check_spec(spec: str) -> None:
    if spec not in SUPPORTED_SPECS:
        raise ValueError(f"unsupported key spec {spec!r}")


def _new_key(spec: str) -> PrivateKey:
    if spec in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=_RSA_BITS[spec])
    if spec in _CURVES:
        return ec.generate_private_key(_CURVES[spec]())
    if spec == ED25519_SPEC:
        return ed25519.Ed25519PrivateKey.generate()
    return _PQ[spec][0].generate()


def _spec_of(key: object) -> str | None:
    """The KeySpec of a private or public key object, or ``None`` if it is none of ours."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        spec = f"RSA_{key.key_size}"
        return spec if spec in _RSA_BITS else None
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return _SPEC_OF_CURVE.get(key.curve.name)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return ED25519_SPEC
    for spec, (private_type, public_type) in _PQ.items():
        if isinstance(key, private_type | public_type):
            return spec
    return None


def _private_key_of_spec(key: object, spec: str) -> PrivateKey:
    if _spec_of(key) != spec or not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | PQPrivateKey
    ):
        raise InvalidKeyError()
    return key


def _public_key_of_spec(key: object, spec: str) -> PublicKey:
    if _spec_of(key) != spec or not isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | PQPublicKey
    ):
        raise InvalidKeyError()
    return key


def _pkcs8(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_private_key(spec: str) -> bytes:
    """A new key of ``spec`` as unencrypted PKCS#8 DER (RSA with e = 65537); an unknown spec is ``ValueError``."""
    _check_spec(spec)
    return _pkcs8(_new_key(spec))


def _parse_private(pkcs8_der: bytes, *, validate_rsa: bool) -> object:
    try:
        return serialization.load_der_private_key(
            bytes(pkcs8_der), password=None, unsafe_skip_rsa_key_validation=not validate_rsa
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):  # malformed, encrypted, or an algorithm pyca lacks
        raise InvalidKeyError() from None


def load_private_key(spec: str, pkcs8_der: bytes) -> PrivateKey:
    """Load a *stored* private key and check that it is ``spec``; anything else raises :class:`InvalidKeyError`.

    RSA keys load with ``unsafe_skip_rsa_key_validation=True``. OpenSSL's RSA key check tests p and q for
    primality; measured here (pyca 50.0.2, OpenSSL 4.0.3) one RSA_4096 load takes 0.5 to 0.75 s with it and
    about 30 us without (RSA_2048: 75 ms; RSA_3072: 220 ms), on every Sign or Decrypt that misses a cache.
    The check defends against *malformed or malicious* key bytes. The bytes loaded here were produced by
    :func:`generate_private_key` or already validated by :func:`import_private_key`, and they reach us only
    through an authenticated wrapped secret (AES-GCM bound to key ARN and version), so they cannot have been
    altered since. OpenSSL also checks each CRT private-key result with the public exponent (falling back
    to plain exponentiation), so even a corrupted key would not leak a factor through a faulty signature
    (tests/crypto/test_keypairs.py shows it). Foreign material must go through :func:`import_private_key`.
    """
    _check_spec(spec)
    return _private_key_of_spec(_parse_private(pkcs8_der, validate_rsa=False), spec)


def import_private_key(spec: str, pkcs8_der: bytes) -> bytes:
    """Validate private key bytes from *outside* (full RSA check) and return them re-encoded as our PKCS#8 DER.

    This is the slow, paranoid path for imported key material; :class:`InvalidKeyError` if the bytes are
    malformed, fail validation or are not ``spec``.
    """
    _check_spec(spec)
    return _pkcs8(_private_key_of_spec(_parse_private(pkcs8_der, validate_rsa=True), spec))


def public_key(private: PrivateKey) -> PublicKey:
    """The public half of ``private`` (for :func:`signatures.verify` with a KMS key, or encryption)."""
    return private.public_key()


def public_key_der(private: PrivateKey) -> bytes:
    """DER SubjectPublicKeyInfo of ``private``'s public key: what GetPublicKey returns."""
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(spec: str, spki_der: bytes) -> PublicKey:
    """Load a DER SubjectPublicKeyInfo that must be ``spec``; malformed or another spec is :class:`InvalidKeyError`.

    For EC keys pyca checks that the point lies on the named curve; explicit curve parameters are refused.
    """
    _check_spec(spec)
    try:
        key = serialization.load_der_public_key(bytes(spki_der))
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKeyError() from None
    return _public_key_of_spec(key, spec)


def spec_of_public_key(spki_der: bytes) -> str | None:
    """The supported KeySpec of a DER SubjectPublicKeyInfo, or ``None`` if malformed or not a supported spec."""
    try:
        key = serialization.load_der_public_key(bytes(spki_der))
    except (ValueError, UnsupportedAlgorithm):
        return None
    return _spec_of(key)
