"""Ed25519ph (RFC 8032 section 5.1, empty context; FIPS 186-5 HashEdDSA), through libsodium (PyNaCl).

pyca/cryptography offers pure Ed25519 only, and we write no primitive ourselves; libsodium's
``crypto_sign_ed25519ph_*`` is the maintained implementation. Its keys are the same Ed25519 keys: the
32-byte seed pyca holds gives libsodium's 64-byte secret key (seed || public key).

``message`` is what Ed25519ph prehashes with SHA-512. AWS KMS's ``ED25519_PH_SHA_512`` takes a 64-byte
``DIGEST`` and still applies that prehash to it ("the input is hashed twice", botocore's model), so the
operation passes the caller's digest here unchanged.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ed25519
from nacl import bindings, exceptions

from openkms.crypto.errors import InvalidSignatureError

SIGNATURE_BYTES = 64


def _prehashed(message: bytes) -> bindings.crypto_sign_ed25519ph_state:
    state = bindings.crypto_sign_ed25519ph_state()
    bindings.crypto_sign_ed25519ph_update(state, bytes(message))
    return state


def sign(private: ed25519.Ed25519PrivateKey, message: bytes) -> bytes:
    """The 64-byte Ed25519ph signature of ``message`` (deterministic, like pure Ed25519)."""
    _, secret = bindings.crypto_sign_seed_keypair(private.private_bytes_raw())
    return bytes(bindings.crypto_sign_ed25519ph_final_create(_prehashed(message), secret))


def verify(public: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Return ``None`` if ``signature`` is right; else :class:`InvalidSignatureError`, whatever is wrong."""
    if len(signature) != SIGNATURE_BYTES:
        raise InvalidSignatureError()
    try:
        bindings.crypto_sign_ed25519ph_final_verify(_prehashed(message), bytes(signature), public.public_bytes_raw())
    except (exceptions.BadSignatureError, exceptions.ValueError, exceptions.TypeError):
        raise InvalidSignatureError() from None
