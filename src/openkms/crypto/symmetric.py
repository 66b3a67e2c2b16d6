"""SYMMETRIC_DEFAULT encryption: a fresh HKDF-derived AES-256-GCM key per message (docs/design.md section 3).

With a random 32-byte salt per message, the data-encryption key is new every time, so the random 96-bit nonce
never meets the ~2^32-messages-per-key bound of GCM. The AAD is the blob header followed by the canonical
encryption context, so changing the key id, version, salt, nonce or context breaks the tag.

Every decryption failure is one :class:`InvalidCiphertextException` without detail, like AWS and pyca's
``InvalidToken``. Bad key *material* is a server bug, not a ciphertext problem, and stays a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.crypto import aead
from openkms.crypto.blob import NONCE_SIZE, SALT_SIZE, SymmetricBlob, encode_header
from openkms.crypto.context_aad import encode_encryption_context
from openkms.crypto.errors import IntegrityError
from openkms.crypto.kdf import hkdf_sha256
from openkms.crypto.rand import random_bytes
from openkms.errors import InvalidCiphertextException

MATERIAL_SIZE = 32
DEK_SIZE = 32
# HKDF info for blob v1's per-message key. Frozen with the format: changing it breaks every existing blob.
HKDF_INFO_V1 = b"openkms symmetric v1"


def generate_key_material() -> bytes:
    """New 256-bit backing key material for a SYMMETRIC_DEFAULT key version."""
    return random_bytes(MATERIAL_SIZE)


def _check_material(material: bytes) -> None:
    if len(material) != MATERIAL_SIZE:
        raise ValueError("symmetric key material must be 32 bytes")


def _derive_dek(material: bytes, salt: bytes) -> bytes:
    return hkdf_sha256(material, salt, HKDF_INFO_V1, DEK_SIZE)


def encrypt(material: bytes, key_id: str, version_id: bytes, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    """Encrypt under a key version; ``ValueError`` if the context cannot be encoded (too large)."""
    return _encrypt_from_parts(
        material, key_id, version_id, plaintext, context, random_bytes(SALT_SIZE), random_bytes(NONCE_SIZE)
    )


def _encrypt_from_parts(
    material: bytes,
    key_id: str,
    version_id: bytes,
    plaintext: bytes,
    context: Mapping[str, str],
    salt: bytes,
    nonce: bytes,
) -> bytes:
    """Deterministic core of :func:`encrypt`; only golden-vector tests pass their own salt and nonce."""
    _check_material(material)
    header = encode_header(key_id, version_id, salt, nonce)
    aad = header + encode_encryption_context(context)
    dek = _derive_dek(material, salt)
    return header + aead.aes_gcm_encrypt(dek, nonce, plaintext, aad)


def decrypt(material: bytes, blob: SymmetricBlob, context: Mapping[str, str]) -> bytes:
    """The plaintext, or :class:`InvalidCiphertextException` for any altered blob or context mismatch."""
    _check_material(material)
    try:
        aad = blob.header() + encode_encryption_context(context)
    except ValueError:
        # A context that cannot be encoded cannot have been used to encrypt; a header that cannot is malformed.
        raise InvalidCiphertextException() from None
    dek = _derive_dek(material, blob.salt)
    try:
        return aead.aes_gcm_decrypt(dek, blob.nonce, blob.ciphertext_and_tag, aad)
    except IntegrityError:
        raise InvalidCiphertextException() from None
