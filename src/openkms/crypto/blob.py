"""Symmetric ciphertext blob v1: what Encrypt and GenerateDataKey return (docs/design.md section 3).

::

    version 0x01 (1) | key id (16, UUID bytes) | key version id (16) | salt (32) | nonce (12) | ciphertext | tag (16)

Everything before the ciphertext is the *header*; it is authenticated as AAD, so parsing here only checks the
structure. Any structural problem is :class:`InvalidCiphertextException`. The format is frozen once released;
a new layout gets a new version byte (docs/formats.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from openkms.errors import InvalidCiphertextException

BLOB_VERSION_1 = 0x01
KEY_ID_SIZE = 16
VERSION_ID_SIZE = 16
SALT_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 1 + KEY_ID_SIZE + VERSION_ID_SIZE + SALT_SIZE + NONCE_SIZE  # 77
# Bytes a blob adds to its plaintext. Decoding accepts exactly this length too (an empty ciphertext): the format
# does not know that KMS plaintexts have at least 1 byte, and the tag check decides such a blob anyway.
BLOB_OVERHEAD = HEADER_SIZE + TAG_SIZE  # 93

_KEY_ID_END = 1 + KEY_ID_SIZE
_VERSION_END = _KEY_ID_END + VERSION_ID_SIZE
_SALT_END = _VERSION_END + SALT_SIZE


def key_id_bytes(key_id: str) -> bytes:
    """The 16 UUID bytes of a canonical (lower-case, hyphenated) key id; anything else is ``ValueError``."""
    parsed = uuid.UUID(key_id)
    if str(parsed) != key_id:
        raise ValueError("key id must be a canonical lower-case UUID")
    return parsed.bytes


def encode_header(key_id: str, version_id: bytes, salt: bytes, nonce: bytes) -> bytes:
    """The authenticated header; field lengths are checked (``ValueError``)."""
    if len(version_id) != VERSION_ID_SIZE or len(salt) != SALT_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("blob header field has the wrong length")
    return bytes([BLOB_VERSION_1]) + key_id_bytes(key_id) + version_id + salt + nonce


@dataclass(frozen=True, slots=True)
class SymmetricBlob:
    """A parsed v1 blob. Nothing in it is authenticated until :func:`symmetric.decrypt` succeeds."""

    key_id: str
    version_id: bytes
    salt: bytes
    nonce: bytes
    ciphertext_and_tag: bytes

    def header(self) -> bytes:
        return encode_header(self.key_id, self.version_id, self.salt, self.nonce)

    def encode(self) -> bytes:
        if len(self.ciphertext_and_tag) < TAG_SIZE:
            raise ValueError("ciphertext must include the 16-byte tag")
        return self.header() + self.ciphertext_and_tag

    @classmethod
    def decode(cls, data: bytes) -> SymmetricBlob:
        """Split a blob into its fields; a wrong version byte or a short blob is InvalidCiphertextException."""
        if len(data) < BLOB_OVERHEAD or data[0] != BLOB_VERSION_1:
            raise InvalidCiphertextException()
        return cls(
            key_id=str(uuid.UUID(bytes=bytes(data[1:_KEY_ID_END]))),
            version_id=bytes(data[_KEY_ID_END:_VERSION_END]),
            salt=bytes(data[_VERSION_END:_SALT_END]),
            nonce=bytes(data[_SALT_END:HEADER_SIZE]),
            ciphertext_and_tag=bytes(data[HEADER_SIZE:]),
        )


def peek_key_id(data: bytes) -> str | None:
    """The key id a blob names, or ``None`` if it is not a structurally valid v1 blob (unauthenticated)."""
    try:
        return SymmetricBlob.decode(data).key_id
    except InvalidCiphertextException:
        return None
