"""Wrap v1: secrets at rest under a 256-bit wrapping key (the root key, or a seal's KEK for the root key).

::

    wrapped = 0x01 | nonce (12) | ciphertext || tag (16)
    AAD     = 0x01 | count (4, big-endian) | for each binding element: len (4, big-endian) | UTF-8 bytes

The *binding* names where the secret belongs, e.g. ``("key-material", key_arn, version_id_hex)`` or
``("access-key", access_key_id)``. Because it is authenticated, a wrapped value copied to another row fails to
unwrap (Vault's MoveIntegrityV2). Length prefixes keep ``("a", "bc")`` and ``("ab", "c")`` apart.

The wrapping key takes random 96-bit nonces directly, so its owner must count uses and rotate well below 2^32
(docs/design.md section 8); this module does not count. Frozen once released: see docs/formats.md.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from openkms.crypto import aead
from openkms.crypto.errors import IntegrityError
from openkms.crypto.rand import random_bytes

WRAP_VERSION_1 = 0x01
WRAPPING_KEY_SIZE = 32
NONCE_SIZE = aead.NONCE_SIZE
WRAP_OVERHEAD = 1 + NONCE_SIZE + aead.TAG_SIZE  # 29


def encode_binding(binding: Sequence[str]) -> bytes:
    """The AAD for ``binding``: version byte, element count, then each element length-prefixed."""
    if isinstance(binding, str):
        raise TypeError("binding must be a sequence of strings, not a string")
    if not binding:
        raise ValueError("binding must name at least one element")
    parts = [bytes([WRAP_VERSION_1]), struct.pack(">I", len(binding))]
    for element in binding:
        data = element.encode("utf-8")
        parts += (struct.pack(">I", len(data)), data)
    return b"".join(parts)


def _check_key(key: bytes) -> None:
    if len(key) != WRAPPING_KEY_SIZE:
        raise ValueError("wrapping key must be 32 bytes")


def wrap(root_key: bytes, secret: bytes, binding: Sequence[str]) -> bytes:
    """Encrypt ``secret`` under ``root_key``, bound to ``binding``, with a fresh random nonce."""
    return _wrap_with_nonce(root_key, secret, binding, random_bytes(NONCE_SIZE))


def _wrap_with_nonce(root_key: bytes, secret: bytes, binding: Sequence[str], nonce: bytes) -> bytes:
    """Deterministic core of :func:`wrap`; only golden-vector tests choose the nonce."""
    _check_key(root_key)
    aad = encode_binding(binding)
    return bytes([WRAP_VERSION_1]) + nonce + aead.aes_gcm_encrypt(root_key, nonce, secret, aad)


def unwrap(root_key: bytes, wrapped: bytes, binding: Sequence[str]) -> bytes:
    """The secret, or :class:`IntegrityError` (wrong key, wrong binding, altered or unknown format)."""
    if len(root_key) != WRAPPING_KEY_SIZE or len(wrapped) < WRAP_OVERHEAD or wrapped[0] != WRAP_VERSION_1:
        raise IntegrityError()
    try:
        aad = encode_binding(binding)
    except ValueError:
        raise IntegrityError() from None
    nonce = bytes(wrapped[1 : 1 + NONCE_SIZE])
    return aead.aes_gcm_decrypt(root_key, nonce, bytes(wrapped[1 + NONCE_SIZE :]), aad)
