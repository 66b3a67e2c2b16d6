"""Bearer tokens for console sessions: random, stored only as a digest, with a CSRF token bound to each.

The browser holds the token; the database holds its SHA-256, so a copy of the database signs nobody in.
The CSRF token is an HMAC of a fixed label under the session token: a page can embed it in its forms, an
attacker who cannot read the cookie cannot compute it, and nothing more needs storing.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

from openkms.crypto.rand import random_bytes

TOKEN_BYTES = 32
_CSRF_LABEL = b"openkms console csrf v1"


def new_token() -> str:
    """256 random bits, URL-safe (fits a cookie and a form field unescaped)."""
    return base64.urlsafe_b64encode(random_bytes(TOKEN_BYTES)).decode("ascii").rstrip("=")


def token_digest(token: str) -> str:
    """What storage keeps of a token: hex SHA-256."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(token.encode("utf-8"))
    return digest.finalize().hex()


def _csrf_mac(token: str) -> _hmac.HMAC:
    mac = _hmac.HMAC(token.encode("utf-8"), hashes.SHA256())
    mac.update(_CSRF_LABEL)
    return mac


def csrf_token(token: str) -> str:
    """The CSRF token of the session (or pre-session) ``token``."""
    return base64.urlsafe_b64encode(_csrf_mac(token).finalize()).decode("ascii").rstrip("=")


def csrf_matches(token: str, presented: str) -> bool:
    """Whether ``presented`` is ``token``'s CSRF token, compared in constant time (pyca's ``verify``)."""
    try:
        raw = base64.urlsafe_b64decode(presented + "=" * (-len(presented) % 4))
    except (ValueError, TypeError):
        return False
    try:
        _csrf_mac(token).verify(raw)
    except InvalidSignature:
        return False
    return True
