"""AES-GCM with the only parameters openkms uses: 96-bit nonces and 128-bit tags.

pyca's ``AESGCM`` accepts nonces of 8 to 128 bytes; we refuse everything but 12, so that a caller cannot drift
into a GHASH-derived counter (non-96-bit IVs) by accident. Decryption turns every failure into one
:class:`IntegrityError`.

Constructing ``AESGCM`` costs about as much as encrypting 4 KiB (0.8 us here), so a caller with a long-lived
key on a hot path may opt in to a bounded LRU cache with ``cache=True``. It is off by default because a cached
key stays in memory until evicted or :func:`clear_cache` runs (which must then happen on seal), and today no
caller needs it: symmetric blobs use a fresh key per message, and wrap/unwrap results are cached by their callers.
"""

from __future__ import annotations

import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.crypto.errors import IntegrityError

NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZES = frozenset({16, 24, 32})
_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cached_aesgcm(key: bytes) -> AESGCM:
    return AESGCM(key)


def _aesgcm(key: bytes, cache: bool) -> AESGCM:
    return _cached_aesgcm(key) if cache else AESGCM(key)


def clear_cache() -> None:
    """Forget every cached key object (call on seal and after root-key rotation)."""
    _cached_aesgcm.cache_clear()


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes, *, cache: bool = False) -> bytes:
    """Return ``ciphertext || tag``; a wrong key or nonce length is a programming error (``ValueError``)."""
    if len(key) not in KEY_SIZES:
        raise ValueError("AES key must be 16, 24 or 32 bytes")
    if len(nonce) != NONCE_SIZE:
        raise ValueError("AES-GCM nonce must be 12 bytes")
    return _aesgcm(bytes(key), cache).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes, *, cache: bool = False) -> bytes:
    """Return the plaintext or raise :class:`IntegrityError`, whatever went wrong."""
    if len(key) not in KEY_SIZES or len(nonce) != NONCE_SIZE or len(ciphertext_and_tag) < TAG_SIZE:
        raise IntegrityError()
    try:
        return _aesgcm(bytes(key), cache).decrypt(nonce, ciphertext_and_tag, aad)
    except (InvalidTag, ValueError, OverflowError):
        raise IntegrityError() from None
