"""RSAES-OAEP Encrypt/Decrypt with the KMS EncryptionAlgorithmSpec names.

AWS uses MGF1 with the *same* hash as the label hash and an empty label, so ``RSAES_OAEP_SHA_256`` is
OAEP(SHA-256, MGF1-SHA-256, label ""). Ciphertexts from a library that defaults MGF1 to SHA-1 (Java's
``OAEPWithSHA-256AndMGF1Padding``) do not decrypt, as on AWS.

Decryption fails with one :class:`DecryptionError` without detail, whatever the cause: wrong length, integer
not below the modulus, bad padding, wrong label hash (docs/tests.md C-4, against Bleichenbacher/Manger-style
oracles). Length and range depend only on public values, but a ciphertext failing them is still put through
one private-key operation (on the all-zero block, refused whatever it decodes to), and both checks are
always computed, so that every rejection runs the same Python and the same RSA operation and C-4's timing
comparison holds for all classes, not only the right-length ones. The padding check itself is OpenSSL's
constant-time OAEP decoding.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openkms.crypto.errors import DecryptionError
from openkms.crypto.keypairs import PrivateKey, PublicKey
from openkms.crypto.rand import random_bytes

_HASHES: dict[str, hashes.HashAlgorithm] = {
    "RSAES_OAEP_SHA_1": hashes.SHA1(),  # noqa: S303 - an AWS algorithm; OAEP relies on no collision resistance
    "RSAES_OAEP_SHA_256": hashes.SHA256(),
}
ENCRYPTION_ALGORITHMS = frozenset(_HASHES)


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[algorithm]
    except KeyError:
        raise ValueError(f"unsupported RSA encryption algorithm {algorithm!r}") from None


def _oaep(algorithm: str) -> padding.OAEP:
    hash_algorithm = _hash(algorithm)
    return padding.OAEP(mgf=padding.MGF1(hash_algorithm), algorithm=hash_algorithm, label=None)


def max_plaintext_size(key: PrivateKey | PublicKey, algorithm: str) -> int:
    """The longest plaintext ``algorithm`` can encrypt under ``key``: k - 2 * hLen - 2 (RFC 8017 7.1.1)."""
    if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise ValueError("RSAES-OAEP needs an RSA key")
    return (key.key_size + 7) // 8 - 2 * _hash(algorithm).digest_size - 2


def encrypt(public: PublicKey, algorithm: str, plaintext: bytes) -> bytes:
    """OAEP ciphertext of ``plaintext`` (k bytes); a plaintext above :func:`max_plaintext_size` is ``ValueError``."""
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("RSAES-OAEP needs an RSA public key")
    if len(plaintext) > max_plaintext_size(public, algorithm):
        raise ValueError("plaintext too long for this key and algorithm")
    return public.encrypt(bytes(plaintext), _oaep(algorithm))


def decrypt(private: PrivateKey, algorithm: str, ciphertext: bytes) -> bytes:
    """The plaintext, or :class:`DecryptionError` for every malformed ciphertext.

    An unknown algorithm or a non-RSA key is the caller's ``ValueError``, raised before the ciphertext is read.
    """
    oaep = _oaep(algorithm)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError("RSAES-OAEP needs an RSA private key")
    size = (private.key_size + 7) // 8
    ciphertext = bytes(ciphertext)
    # Public checks only; see the module docstring for why a failure still costs a private-key operation. Both
    # are computed whatever the input and combined without short-circuit or branch: skipping ``public_numbers()``
    # (about 3 us) for a wrong length made those ciphertexts measurably faster to reject (docs/tests.md C-4).
    modulus = private.public_key().public_numbers().n
    in_range = int.from_bytes(ciphertext, "big") < modulus
    well_formed = (len(ciphertext) == size) & in_range
    # The stand-in for a malformed input is a random block below the modulus (a leading zero byte), so the
    # private-key operation works on a number like any other ciphertext's: an all-zero block made OpenSSL's
    # work measurably different (hundreds of ns, docs/tests.md C-4). Drawn for every input, used for some.
    stand_in = b"\x00" + random_bytes(size - 1)
    chosen = (stand_in, ciphertext)[well_formed]  # no branch: every input runs the same bytecode
    try:
        plaintext = private.decrypt(chosen, oaep)
    except ValueError:
        raise DecryptionError() from None
    if not well_formed:  # a random block fails OAEP decoding except with probability about 2^-160
        raise DecryptionError()
    return plaintext
