"""docs/tests.md C-4's ciphertext classes for ``RSAES_OAEP_SHA_256``, shared by the in-process and HTTP timing tests.

Each malformed class fails a different check of a careless decryptor: the label hash (Manger's attack learns
from *which* OAEP check fails), the leading zero byte, the range test against n, and the length. Textbook RSA
(``pow(m, e, n)``) appears only here, to forge an encoded message whose first byte is not zero.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

VALID = "valid"
MALFORMED = ("wrong-label-hash", "bad-leading-byte", "not-below-modulus", "too-short", "too-long")
PLAINTEXT = b"sixteen byte key"


def oaep(hash_algorithm: hashes.HashAlgorithm) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_algorithm), algorithm=hash_algorithm, label=None)


def ciphertext_classes(public: rsa.RSAPublicKey) -> dict[str, bytes]:
    """``valid`` (decrypts to :data:`PLAINTEXT`) and every class in :data:`MALFORMED`."""
    numbers = public.public_numbers()
    n, e = numbers.n, numbers.e
    size = (public.key_size + 7) // 8
    valid = public.encrypt(PLAINTEXT, oaep(hashes.SHA256()))
    # An encoded message starting 0x01 instead of 0x00: below n (whose top byte is at least 0x80), so it
    # reaches the private-key operation and fails only OAEP's first check.
    leading_one = (1 << (8 * (size - 1))) | int.from_bytes(os.urandom(size - 1), "big")
    classes = {
        VALID: valid,
        # OAEP with SHA-1 for label hash and MGF1 (RSAES_OAEP_SHA_1), decrypted as RSAES_OAEP_SHA_256.
        "wrong-label-hash": public.encrypt(PLAINTEXT, oaep(hashes.SHA1())),  # noqa: S303 - an AWS algorithm
        "bad-leading-byte": pow(leading_one, e, n).to_bytes(size, "big"),
        "not-below-modulus": (n + int.from_bytes(valid, "big") % ((1 << (8 * size)) - n)).to_bytes(size, "big"),
        "too-short": valid[:-1],
        "too-long": b"\x00" + valid,  # the same integer as a valid ciphertext, one byte longer
    }
    assert set(classes) == {VALID, *MALFORMED}
    return classes
