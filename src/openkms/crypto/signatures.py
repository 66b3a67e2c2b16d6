"""Sign and Verify with the KMS SigningAlgorithmSpec names, exactly as AWS defines them.

- ``RSASSA_PSS_SHA_*``: MGF1 with the same hash, salt length = digest length (AWS's choice). Verification
  demands that salt length; a PSS signature with another salt length does not verify.
- ``RSASSA_PKCS1_V1_5_SHA_*``: EMSA-PKCS1-v1_5 with the DigestInfo for the hash.
- ``ECDSA_SHA_*``: the DER-encoded ``ECDSA-Sig-Value`` (not raw r || s).
- ``ED25519_SHA_512``: pure Ed25519 (RFC 8032), ``RAW`` messages only.
- ``ED25519_PH_SHA_512``: Ed25519ph (RFC 8032, empty context) over the 64-byte ``DIGEST``, which it prehashes
  once more with SHA-512 as AWS does; libsodium performs it (:mod:`openkms.crypto.ed25519ph`).
- ``ML_DSA_SHAKE_256``: pure ML-DSA (FIPS 204) with the empty context for ``RAW``; for ``EXTERNAL_MU`` the
  message *is* the 64-byte mu (FIPS 204 "external mu", see :func:`compute_external_mu`).

Message types: ``RAW`` hashes the message as the algorithm says; ``DIGEST`` (RSA, ECDSA and Ed25519ph, which
takes nothing else) takes the hash itself, whose length must equal the digest size; ``EXTERNAL_MU`` is ML-DSA
only.

Errors: an unknown algorithm or message type, an algorithm for another key *type*, a message type the
algorithm does not take, or a digest/mu of the wrong length is ``ValueError``, checked before any key
operation. Which algorithms a given *spec* may use (AWS allows only ECDSA_SHA_256 for P-256, ...) is the
caller's policy, not checked here. ``verify`` returns ``None`` or raises :class:`InvalidSignatureError`,
whatever is wrong with the signature (pyca's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

from openkms.crypto import ed25519ph
from openkms.crypto.errors import InvalidSignatureError
from openkms.crypto.keypairs import PrivateKey, PublicKey

RAW = "RAW"
DIGEST = "DIGEST"
EXTERNAL_MU = "EXTERNAL_MU"
MESSAGE_TYPES = frozenset({RAW, DIGEST, EXTERNAL_MU})
MU_SIZE = 64

# Families: which key type an algorithm needs and which pyca call performs it.
_RSA_PSS = "RSA_PSS"
_RSA_PKCS1 = "RSA_PKCS1"
_ECDSA = "ECDSA"
_ED25519 = "ED25519"
_ED25519_PH = "ED25519_PH"
_ML_DSA = "ML_DSA"
_MLDSA_PRIVATE = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
_MLDSA_PUBLIC = mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey


@dataclass(frozen=True, slots=True)
class _Algorithm:
    family: str
    hash: hashes.HashAlgorithm | None  # None: the scheme hashes internally (Ed25519, ML-DSA)
    message_types: frozenset[str]


_HASHED = frozenset({RAW, DIGEST})
_ALGORITHMS: dict[str, _Algorithm] = {
    "RSASSA_PSS_SHA_256": _Algorithm(_RSA_PSS, hashes.SHA256(), _HASHED),
    "RSASSA_PSS_SHA_384": _Algorithm(_RSA_PSS, hashes.SHA384(), _HASHED),
    "RSASSA_PSS_SHA_512": _Algorithm(_RSA_PSS, hashes.SHA512(), _HASHED),
    "RSASSA_PKCS1_V1_5_SHA_256": _Algorithm(_RSA_PKCS1, hashes.SHA256(), _HASHED),
    "RSASSA_PKCS1_V1_5_SHA_384": _Algorithm(_RSA_PKCS1, hashes.SHA384(), _HASHED),
    "RSASSA_PKCS1_V1_5_SHA_512": _Algorithm(_RSA_PKCS1, hashes.SHA512(), _HASHED),
    "ECDSA_SHA_256": _Algorithm(_ECDSA, hashes.SHA256(), _HASHED),
    "ECDSA_SHA_384": _Algorithm(_ECDSA, hashes.SHA384(), _HASHED),
    "ECDSA_SHA_512": _Algorithm(_ECDSA, hashes.SHA512(), _HASHED),
    "ED25519_SHA_512": _Algorithm(_ED25519, None, frozenset({RAW})),
    "ED25519_PH_SHA_512": _Algorithm(_ED25519_PH, hashes.SHA512(), frozenset({DIGEST})),
    "ML_DSA_SHAKE_256": _Algorithm(_ML_DSA, None, frozenset({RAW, EXTERNAL_MU})),
}
SIGNING_ALGORITHMS = frozenset(_ALGORITHMS)  # every KMS signing algorithm name


def digest_size(algorithm: str) -> int | None:
    """Bytes a ``DIGEST`` message must have for ``algorithm``; ``None`` if it takes no digest (Ed25519, ML-DSA)."""
    spec = _lookup(algorithm)
    return spec.hash.digest_size if spec.hash is not None else None


def _lookup(algorithm: str) -> _Algorithm:
    try:
        return _ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown signing algorithm {algorithm!r}") from None


def _algorithm(algorithm: str, message: bytes, message_type: str) -> _Algorithm:
    """Look the algorithm up and check the message against its message type (all ``ValueError``)."""
    spec = _lookup(algorithm)
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {message_type!r}")
    if message_type not in spec.message_types:
        raise ValueError(f"{algorithm} does not take message type {message_type}")
    if message_type == DIGEST and spec.hash is not None and len(message) != spec.hash.digest_size:
        raise ValueError(f"{algorithm} needs a {spec.hash.digest_size}-byte digest")
    if message_type == EXTERNAL_MU and len(message) != MU_SIZE:
        raise ValueError("external mu must be 64 bytes")
    return spec


def _hash_argument(spec: _Algorithm, message_type: str) -> hashes.HashAlgorithm | utils.Prehashed:
    assert spec.hash is not None
    return utils.Prehashed(spec.hash) if message_type == DIGEST else spec.hash


def _rsa_padding(spec: _Algorithm) -> padding.AsymmetricPadding:
    if spec.family == _RSA_PKCS1:
        return padding.PKCS1v15()
    assert spec.hash is not None
    return padding.PSS(mgf=padding.MGF1(spec.hash), salt_length=spec.hash.digest_size)


def _wrong_key() -> ValueError:
    return ValueError("signing algorithm does not fit the key type")


def sign(private: PrivateKey, algorithm: str, message: bytes, message_type: str) -> bytes:
    """The signature of ``message`` (see the module docstring for formats and the ``ValueError`` cases)."""
    spec = _algorithm(algorithm, message, message_type)
    message = bytes(message)
    if spec.family in (_RSA_PSS, _RSA_PKCS1):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise _wrong_key()
        return private.sign(message, _rsa_padding(spec), _hash_argument(spec, message_type))
    if spec.family == _ECDSA:
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise _wrong_key()
        return private.sign(message, ec.ECDSA(_hash_argument(spec, message_type)))
    if spec.family in (_ED25519, _ED25519_PH):
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise _wrong_key()
        return private.sign(message) if spec.family == _ED25519 else ed25519ph.sign(private, message)
    if not isinstance(private, _MLDSA_PRIVATE):
        raise _wrong_key()
    return private.sign_mu(message) if message_type == EXTERNAL_MU else private.sign(message)


def verify(public: PublicKey, algorithm: str, message: bytes, message_type: str, signature: bytes) -> None:
    """Return ``None`` if ``signature`` is right, else raise :class:`InvalidSignatureError` (never a bool)."""
    spec = _algorithm(algorithm, message, message_type)
    message, signature = bytes(message), bytes(signature)
    try:
        if spec.family in (_RSA_PSS, _RSA_PKCS1):
            if not isinstance(public, rsa.RSAPublicKey):
                raise _wrong_key()
            public.verify(signature, message, _rsa_padding(spec), _hash_argument(spec, message_type))
        elif spec.family == _ECDSA:
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise _wrong_key()
            public.verify(signature, message, ec.ECDSA(_hash_argument(spec, message_type)))
        elif spec.family in (_ED25519, _ED25519_PH):
            if not isinstance(public, ed25519.Ed25519PublicKey):
                raise _wrong_key()
            if spec.family == _ED25519:
                public.verify(signature, message)
            else:
                ed25519ph.verify(public, signature, message)
        elif not isinstance(public, _MLDSA_PUBLIC):
            raise _wrong_key()
        elif message_type == EXTERNAL_MU:
            public.verify_mu(signature, message)
        else:
            public.verify(signature, message)
    except InvalidSignature:
        raise InvalidSignatureError() from None


def compute_external_mu(public: PublicKey, message: bytes) -> bytes:
    """FIPS 204's mu for ``message`` under ``public`` with the empty context: what ``EXTERNAL_MU`` signs.

    A client computes this locally and sends only 64 bytes, so a large message never leaves it.
    """
    if not isinstance(public, _MLDSA_PUBLIC):
        raise ValueError("external mu needs an ML-DSA public key")
    hasher = mldsa.MLDSAMuHasher(public)
    hasher.update(bytes(message))
    return hasher.finalize()
