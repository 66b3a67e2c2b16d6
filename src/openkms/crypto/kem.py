"""ML-KEM (FIPS 203) encapsulation and decapsulation.

Decapsulation of a right-length but forged or altered ciphertext does not fail: ML-KEM's implicit rejection
returns a pseudo-random secret unrelated to the sender's, so a mismatch shows up only when that secret is
used. Only a ciphertext of the wrong length is refused, with the same :class:`DecryptionError` as RSA.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import mlkem

from openkms.crypto.errors import DecryptionError
from openkms.crypto.keypairs import PrivateKey, PublicKey

SHARED_SECRET_SIZE = 32
CIPHERTEXT_SIZES = {"ML_KEM_768": 1088, "ML_KEM_1024": 1568}
_PRIVATE = mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey
_PUBLIC = mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey


def encapsulate(public: PublicKey) -> tuple[bytes, bytes]:
    """A fresh ``(shared_secret, ciphertext)`` for ``public``; a non-ML-KEM key is ``ValueError``."""
    if not isinstance(public, _PUBLIC):
        raise ValueError("encapsulation needs an ML-KEM public key")
    return public.encapsulate()


def decapsulate(private: PrivateKey, ciphertext: bytes) -> bytes:
    """The 32-byte shared secret; a wrong-length ciphertext is :class:`DecryptionError` (see module docstring)."""
    if not isinstance(private, _PRIVATE):
        raise ValueError("decapsulation needs an ML-KEM private key")
    try:
        return private.decapsulate(bytes(ciphertext))
    except ValueError:
        raise DecryptionError() from None
