"""The AES-GCM wrapper's contract: only 96-bit nonces, one error for every failure, a clearable cache."""

from __future__ import annotations

import pytest

from openkms.crypto import aead
from openkms.crypto.errors import IntegrityError

KEY = bytes(range(32))
NONCE = bytes(12)


def test_round_trip_with_and_without_cache() -> None:
    for cache in (True, False):
        sealed = aead.aes_gcm_encrypt(KEY, NONCE, b"data", b"aad", cache=cache)
        assert len(sealed) == 4 + 16
        assert aead.aes_gcm_decrypt(KEY, NONCE, sealed, b"aad", cache=not cache) == b"data"


@pytest.mark.parametrize("nonce_size", [0, 8, 11, 13, 16])
def test_only_96_bit_nonces(nonce_size: int) -> None:
    with pytest.raises(ValueError):
        aead.aes_gcm_encrypt(KEY, bytes(nonce_size), b"data", b"")
    with pytest.raises(IntegrityError):
        aead.aes_gcm_decrypt(KEY, bytes(nonce_size), bytes(32), b"")


@pytest.mark.parametrize("key_size", [0, 15, 20, 31, 33, 64])
def test_key_sizes(key_size: int) -> None:
    with pytest.raises(ValueError):
        aead.aes_gcm_encrypt(bytes(key_size), NONCE, b"data", b"")
    with pytest.raises(IntegrityError):
        aead.aes_gcm_decrypt(bytes(key_size), NONCE, bytes(32), b"")


@pytest.mark.parametrize("length", [0, 1, 15])
def test_shorter_than_a_tag(length: int) -> None:
    with pytest.raises(IntegrityError):
        aead.aes_gcm_decrypt(KEY, NONCE, bytes(length), b"")


def test_wrong_aad_key_or_nonce() -> None:
    sealed = aead.aes_gcm_encrypt(KEY, NONCE, b"data", b"aad")
    for key, nonce, aad in ((KEY, NONCE, b"aaD"), (bytes(32), NONCE, b"aad"), (KEY, bytes([1]) * 12, b"aad")):
        with pytest.raises(IntegrityError):
            aead.aes_gcm_decrypt(key, nonce, sealed, aad)


def test_clear_cache_forgets_keys() -> None:
    aead.aes_gcm_encrypt(KEY, NONCE, b"data", b"", cache=True)
    assert aead._cached_aesgcm.cache_info().currsize > 0
    aead.clear_cache()
    assert aead._cached_aesgcm.cache_info().currsize == 0


def test_cache_is_opt_in() -> None:
    aead.clear_cache()
    sealed = aead.aes_gcm_encrypt(KEY, NONCE, b"data", b"")
    aead.aes_gcm_decrypt(KEY, NONCE, sealed, b"")
    assert aead._cached_aesgcm.cache_info().currsize == 0


def test_cache_is_bounded() -> None:
    assert aead._cached_aesgcm.cache_info().maxsize == 1024
