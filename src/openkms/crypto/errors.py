"""Errors of the crypto layer, deliberately without detail.

They are not :class:`openkms.errors.KMSError`: the caller decides what a failure means on the wire (a moved
wrapped key is an internal error, a bad MAC is ``KMSInvalidMacException``). Like pyca's ``InvalidToken``, one
class covers every way a check can fail, so the error cannot tell an attacker which check failed.
"""

from __future__ import annotations


class IntegrityError(Exception):
    """Authenticated decryption failed: wrong key, wrong binding, altered or truncated bytes."""


class InvalidMacError(Exception):
    """A MAC did not verify."""


class InvalidSignatureError(Exception):
    """A signature did not verify: wrong key, altered message, malformed or wrong-length signature."""


class DecryptionError(Exception):
    """Asymmetric decryption or decapsulation failed. One class, no detail, for every cause (docs/tests.md C-4)."""


class InvalidKeyError(ValueError):
    """Key bytes are malformed or are not the key spec the caller named (curve, size, algorithm)."""
