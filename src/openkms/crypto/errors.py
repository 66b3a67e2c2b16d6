"""Errors of the crypto layer, deliberately without detail.

They are not :class:`openkms.errors.KmsError`: the caller decides what a failure means on the wire (a moved
wrapped key is an internal error, a bad MAC is ``KMSInvalidMacException``). Like pyca's ``InvalidToken``, one
class covers every way a check can fail, so the error cannot tell an attacker which check failed.
"""

from __future__ import annotations


class IntegrityError(Exception):
    """Authenticated decryption failed: wrong key, wrong binding, altered or truncated bytes."""


class InvalidMacError(Exception):
    """A MAC did not verify."""
