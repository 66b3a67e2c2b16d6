"""Console sessions: sign in with an access key pair, then a cookie token stands for that access key.

A session is a row keyed by the SHA-256 of a random token (crypto/tokens.py); the browser holds the token.
Every page resolves the token anew: the row must exist and be unexpired, and its access key must still be
active (the Authenticator reads it), so sign-out, expiry and deactivating or deleting the access key end a
session at once, on every node sharing the database. Nothing is cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.auth.credentials import Authenticator
from openkms.context import Principal
from openkms.crypto import tokens
from openkms.errors import UnrecognizedClientException
from openkms.storage.ports import Storage
from openkms.storage.records import ConsoleSessionRecord

MAX_TOKEN_CHARS = 128  # a longer cookie is not one of ours: refused before any hashing or lookup


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token: str  # the cookie's value (for the CSRF token; never stored)
    expires_at: float

    @property
    def csrf(self) -> str:
        return tokens.csrf_token(self.token)


class SessionStore:
    def __init__(self, storage: Storage, authenticator: Authenticator, lifetime_seconds: int) -> None:
        self._storage = storage
        self._auth = authenticator
        self._lifetime = lifetime_seconds

    @property
    def lifetime_seconds(self) -> int:
        return self._lifetime

    def sign_in(self, access_key_id: str, secret_access_key: str, now: float) -> Session:
        """A new session for a correct key pair; UnrecognizedClientException otherwise (one error for all)."""
        principal = self._auth.check_secret(access_key_id, secret_access_key)
        token = tokens.new_token()
        record = ConsoleSessionRecord(tokens.token_digest(token), access_key_id, now, now + self._lifetime)
        with self._storage.transaction() as tx:
            tx.delete_expired_console_sessions(now)
            tx.insert_console_session(record)
        return Session(principal, token, record.expires_at)

    def resolve(self, token: str | None, now: float) -> Session | None:
        """The live session ``token`` names, or None (unknown, expired, or its access key no longer active)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        with self._storage.read() as tx:
            record = tx.get_console_session(tokens.token_digest(token))
        if record is None or record.expires_at <= now:
            return None
        try:
            principal = self._auth.principal_of(record.access_key_id)
        except UnrecognizedClientException:
            return None
        return Session(principal, token, record.expires_at)

    def sign_out(self, token: str) -> None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return
        with self._storage.transaction() as tx:
            tx.delete_console_session(tokens.token_digest(token))
