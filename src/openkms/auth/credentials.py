"""From a SigV4-signed request to a :class:`Principal`: access-key lookup, status and secret unwrap.

The access key's row is read on every request, so deactivating or deleting a key takes effect at once;
only the unwrap of the secret is cached, keyed by the wrapped bytes that were just read, and the user id an
access key belongs to (which never changes).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from openkms import identity, ids
from openkms.auth import sigv4
from openkms.context import Principal
from openkms.crypto.errors import IntegrityError
from openkms.errors import InvalidSignatureException, KMSInternalException, UnrecognizedClientException
from openkms.lru import LRUCache
from openkms.seal.keyring import Keyring
from openkms.storage.ports import Storage
from openkms.storage.records import AccessKeyRecord


class Authenticator:
    def __init__(self, storage: Storage, keyring: Keyring, max_cached_secrets: int = 1024) -> None:
        self._storage = storage
        self._keyring = keyring
        self._secrets: LRUCache[bytes, str] = LRUCache(max_cached_secrets)  # by wrapped secret
        # An access key belongs to one user for its whole life and a user's id never changes, so this
        # mapping cannot go stale (a deleted user's keys are deleted with it, and their status is read anew).
        self._user_ids: LRUCache[str, str] = LRUCache(max_cached_secrets * 64)

    def authenticate(
        self,
        request: sigv4.SignedRequest,
        now: float,
        max_skew_seconds: int,
        service: str = "kms",
        region_ok: Callable[[str], bool] | None = None,
    ) -> tuple[Principal, str]:
        """Verify the signature, scoped to ``service`` (the API the request is for: a signature made for one
        AWS service is refused by another) and, if ``region_ok`` is given, to a region it accepts, judged
        before the signature (sigv4.verify); returns the principal and the region of the credential scope."""
        found: list[tuple[AccessKeyRecord, str]] = []

        def lookup_secret(access_key_id: str) -> str:
            with self._storage.read() as tx:
                record = tx.get_access_key(access_key_id)
                user_id = self._user_ids.get(access_key_id) if record is not None else None
                if record is not None and user_id is None:
                    user = tx.get_user(record.account_id, record.user_name)
                    if user is not None:
                        user_id = user.user_id
                        self._user_ids.put(access_key_id, user_id)
            if record is None or record.status != identity.ACTIVE:
                raise UnrecognizedClientException()
            found.append((record, user_id or ""))
            return self._secret(record)

        verified = sigv4.verify(
            request, lookup_secret, now, service=service, max_skew_seconds=max_skew_seconds, region_ok=region_ok
        )
        if verified.security_token is not None:
            # openkms issues no temporary credentials, so no session token can be valid (AWS's answer).
            raise UnrecognizedClientException()
        record, user_id = found[0]
        principal = Principal(
            account_id=record.account_id,
            arn=ids.user_arn(record.account_id, record.user_name),
            user_name=record.user_name,
            access_key_id=record.access_key_id,
            user_id=user_id,
        )
        if not ids.is_valid_region(verified.region):
            raise InvalidSignatureException("Credential should be scoped to a valid region.")
        return principal, verified.region

    def principal_of(self, access_key_id: str) -> Principal:
        """The principal an active access key stands for, read now (a console session acts as it on every
        page: a deactivated or deleted key ends the session at once). Raises UnrecognizedClientException."""
        return self._active(access_key_id)[0]

    def check_secret(self, access_key_id: str, secret_access_key: str) -> Principal:
        """Sign-in with an access key pair (the console): the principal if the secret is this key's, compared
        in constant time; one error for an unknown key, an inactive one and a wrong secret alike."""
        principal, record = self._active(access_key_id)
        expected = self._secret(record)
        if not hmac.compare_digest(expected.encode("utf-8"), secret_access_key.encode("utf-8")):
            raise UnrecognizedClientException()
        return principal

    def _active(self, access_key_id: str) -> tuple[Principal, AccessKeyRecord]:
        """One read of an access key and its user; UnrecognizedClientException unless both exist and it is
        active."""
        with self._storage.read() as tx:
            record = tx.get_access_key(access_key_id)
            user = tx.get_user(record.account_id, record.user_name) if record is not None else None
        if record is None or user is None or record.status != identity.ACTIVE:
            raise UnrecognizedClientException()
        principal = Principal(
            account_id=record.account_id,
            arn=ids.user_arn(record.account_id, record.user_name),
            user_name=record.user_name,
            access_key_id=record.access_key_id,
            user_id=user.user_id,
        )
        return principal, record

    def _secret(self, record: AccessKeyRecord) -> str:
        return self._secrets.get_or_compute(record.wrapped_secret, self._reveal, record)

    def _reveal(self, record: AccessKeyRecord) -> str:
        try:
            return identity.reveal_secret(self._keyring.root_key(), record)
        except IntegrityError:
            raise KMSInternalException() from None
