"""Importing key material (BYOK): the wrapping key pair, unwrapping, the import token and a material fingerprint.

Wrapping algorithms, with AWS's names (what a caller does with the ``PublicKey`` GetParametersForImport returns):

- ``RSAES_OAEP_SHA_1`` / ``RSAES_OAEP_SHA_256``: the material itself, RSA-OAEP encrypted (MGF1 with the same hash,
  empty label; crypto/rsa_oaep.py).
- ``RSA_AES_KEY_WRAP_SHA_1`` / ``RSA_AES_KEY_WRAP_SHA_256``: a fresh 256-bit AES key, RSA-OAEP encrypted, followed
  by the material wrapped under that AES key with AES Key Wrap with Padding (RFC 5649)::

      EncryptedKeyMaterial = RSA-OAEP(aes_key) (k bytes, k = modulus length) || AES-KWP(aes_key, material)

  This is PKCS #11's ``CKM_RSA_AES_KEY_WRAP`` and what AWS's OpenSSL example produces (``-id-aes256-wrap-pad``).

``RSAES_PKCS1_V1_5`` is deliberately absent: AWS removed it in 2023 and it is a padding-oracle surface
(docs/design.md section 8). Every unwrapping failure, whatever its cause, is one :class:`DecryptionError`
(docs/tests.md C-4), and a ciphertext too short for the RSA part still costs the private-key operation
(rsa_oaep.decrypt).

Import token v1 (opaque to callers, frozen once released; docs/formats.md)::

    token   = 0x01 | salt (32) | nonce (12) | AES-256-GCM(token_key, nonce, payload, aad = 0x01 | salt) ct || tag
    token_key = HKDF-SHA256(root key, salt, info = "openkms import token v1")
    payload = valid_to_ms (8, big-endian) | for each of key ARN, wrapping algorithm, wrapping key spec,
              wrapping private key (PKCS #8 DER): len (4, big-endian) | bytes

The token *carries* the wrapping private key, encrypted and authenticated under a key derived from the root key
with a fresh salt per token (so the root key's own random-nonce budget is not spent). Nothing is stored per
token; a changed byte, another root key or a token from elsewhere fails with :class:`IntegrityError`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from openkms.crypto import aead, keypairs, rsa_oaep
from openkms.crypto.errors import DecryptionError, IntegrityError
from openkms.crypto.kdf import hkdf_sha256
from openkms.crypto.rand import random_bytes

RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
RSA_AES_KEY_WRAP_SHA_1 = "RSA_AES_KEY_WRAP_SHA_1"
RSA_AES_KEY_WRAP_SHA_256 = "RSA_AES_KEY_WRAP_SHA_256"

# Wrapping algorithm -> the RSA-OAEP algorithm of its RSA step.
_OAEP_OF: dict[str, str] = {
    RSAES_OAEP_SHA_1: "RSAES_OAEP_SHA_1",
    RSAES_OAEP_SHA_256: "RSAES_OAEP_SHA_256",
    RSA_AES_KEY_WRAP_SHA_1: "RSAES_OAEP_SHA_1",
    RSA_AES_KEY_WRAP_SHA_256: "RSAES_OAEP_SHA_256",
}
WRAPPING_ALGORITHMS = frozenset(_OAEP_OF)
WRAPPING_KEY_SPECS = frozenset({"RSA_2048", "RSA_3072", "RSA_4096"})
EPHEMERAL_AES_KEY_SIZE = 32
_KWP_MIN = 16  # RFC 5649: one semiblock of integrity check plus at least one semiblock of data

IMPORT_TOKEN_FORMAT_VERSION = 0x01
_SALT_SIZE = 32
_TOKEN_INFO_V1 = b"openkms import token v1"
_TOKEN_KEY_SIZE = 32
_HEADER_SIZE = 1 + _SALT_SIZE
_FINGERPRINT_LABEL_V1 = b"openkms imported key material fingerprint v1"


@dataclass(frozen=True, slots=True)
class ImportToken:
    """What an import token binds together: the key, the wrapping key pair and algorithm, and its expiry."""

    key_arn: str
    wrapping_algorithm: str
    wrapping_key_spec: str
    valid_to: float  # epoch seconds; kept to the millisecond
    private_key_der: bytes = field(repr=False)


def _check_wrapping(algorithm: str, spec: str) -> None:
    if algorithm not in WRAPPING_ALGORITHMS:
        raise ValueError(f"unsupported wrapping algorithm {algorithm!r}")
    if spec not in WRAPPING_KEY_SPECS:
        raise ValueError(f"unsupported wrapping key spec {spec!r}")


def generate_wrapping_key(spec: str) -> bytes:
    """A fresh RSA wrapping key pair of ``spec`` (RSA_2048/3072/4096) as PKCS #8 DER."""
    if spec not in WRAPPING_KEY_SPECS:
        raise ValueError(f"unsupported wrapping key spec {spec!r}")
    return keypairs.generate_private_key(spec)


def wrapping_public_key(spec: str, private_key_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo that GetParametersForImport returns for a wrapping key pair."""
    return keypairs.public_key_der(keypairs.load_private_key(spec, private_key_der))


def unwrap_material(spec: str, private_key_der: bytes, algorithm: str, encrypted: bytes) -> bytes:
    """The key material inside ``encrypted``, or :class:`DecryptionError` for every way it can be wrong.

    ``private_key_der`` comes from an authenticated token, so it loads without the slow RSA key check.
    """
    _check_wrapping(algorithm, spec)
    private = keypairs.load_private_key(spec, private_key_der)
    if not isinstance(private, rsa.RSAPrivateKey):  # load_private_key checked the spec, so never
        raise ValueError("a wrapping key is an RSA key")
    oaep = _OAEP_OF[algorithm]
    encrypted = bytes(encrypted)
    if algorithm in (RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256):
        return rsa_oaep.decrypt(private, oaep, encrypted)
    size = (private.key_size + 7) // 8
    aes_key = rsa_oaep.decrypt(private, oaep, encrypted[:size])
    wrapped = encrypted[size:]
    if len(aes_key) != EPHEMERAL_AES_KEY_SIZE or len(wrapped) < _KWP_MIN:
        raise DecryptionError()
    try:
        return aes_key_unwrap_with_padding(aes_key, wrapped)
    except (InvalidUnwrap, ValueError):
        raise DecryptionError() from None


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _token_key(root_key: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(root_key, salt, _TOKEN_INFO_V1, _TOKEN_KEY_SIZE)


def seal_token(root_key: bytes, token: ImportToken) -> bytes:
    """Encrypt and authenticate ``token`` under a fresh key derived from ``root_key``."""
    return _seal_token_from_parts(root_key, token, random_bytes(_SALT_SIZE), random_bytes(aead.NONCE_SIZE))


def _seal_token_from_parts(root_key: bytes, token: ImportToken, salt: bytes, nonce: bytes) -> bytes:
    """Deterministic core of :func:`seal_token`; only tests choose the salt and nonce."""
    _check_wrapping(token.wrapping_algorithm, token.wrapping_key_spec)
    if len(salt) != _SALT_SIZE:
        raise ValueError("import token salt must be 32 bytes")
    payload = struct.pack(">Q", round(token.valid_to * 1000)) + b"".join(
        _field(part)
        for part in (
            token.key_arn.encode("utf-8"),
            token.wrapping_algorithm.encode("ascii"),
            token.wrapping_key_spec.encode("ascii"),
            token.private_key_der,
        )
    )
    header = bytes([IMPORT_TOKEN_FORMAT_VERSION]) + salt
    return header + nonce + aead.aes_gcm_encrypt(_token_key(root_key, salt), nonce, payload, header)


def open_token(root_key: bytes, sealed: bytes) -> ImportToken:
    """The token :func:`seal_token` made, or :class:`IntegrityError` (altered, foreign, unknown format)."""
    sealed = bytes(sealed)
    minimum = _HEADER_SIZE + aead.NONCE_SIZE + aead.TAG_SIZE
    if len(sealed) < minimum or sealed[0] != IMPORT_TOKEN_FORMAT_VERSION:
        raise IntegrityError()
    header, salt = sealed[:_HEADER_SIZE], sealed[1:_HEADER_SIZE]
    nonce = sealed[_HEADER_SIZE : _HEADER_SIZE + aead.NONCE_SIZE]
    payload = aead.aes_gcm_decrypt(_token_key(root_key, salt), nonce, sealed[_HEADER_SIZE + aead.NONCE_SIZE :], header)
    try:
        return _parse_payload(payload)
    except (ValueError, UnicodeDecodeError, struct.error):
        raise IntegrityError() from None  # authentic but unparsable: only a bug could make one


def _parse_payload(payload: bytes) -> ImportToken:
    (valid_to_ms,) = struct.unpack_from(">Q", payload, 0)
    offset = 8
    parts: list[bytes] = []
    for _ in range(4):
        (length,) = struct.unpack_from(">I", payload, offset)
        offset += 4
        if offset + length > len(payload):
            raise ValueError("truncated import token field")
        parts.append(payload[offset : offset + length])
        offset += length
    if offset != len(payload):
        raise ValueError("trailing bytes in import token")
    arn, algorithm, spec, private_der = parts
    token = ImportToken(
        arn.decode("utf-8"), algorithm.decode("ascii"), spec.decode("ascii"), valid_to_ms / 1000, private_der
    )
    _check_wrapping(token.wrapping_algorithm, token.wrapping_key_spec)
    return token


def verify_fingerprint(fingerprint: bytes, key_id: str, version_id: bytes, material: bytes) -> None:
    """Return if ``material`` is what ``fingerprint`` commits to, else raise :class:`IntegrityError` (constant time)."""
    if not hmac.compare_digest(material_fingerprint(key_id, version_id, material), bytes(fingerprint)):
        raise IntegrityError()


def material_fingerprint(key_id: str, version_id: bytes, material: bytes) -> bytes:
    """A one-way commitment to imported ``material``, so that a re-import can be checked against the first import
    after the material itself was deleted (crypto-shredded).

    SHA-256 over a label and the length-prefixed key id, version id and material: unkeyed on purpose, so it
    survives root-key rotation. It reveals nothing usable about material of 224 bits or more (every spec's
    minimum), and the key id and version id make each key's fingerprint its own (no cross-key comparison).
    Stored only in the database, never returned.
    """
    digest = hashlib.sha256(_FINGERPRINT_LABEL_V1)
    for part in (key_id.encode("utf-8"), bytes(version_id), bytes(material)):
        digest.update(_field(part))
    return digest.digest()
