"""Unwrapping key-version material under the root key, with a bounded cache of the results.

The cache is keyed by the *wrapped* bytes read from storage on every request, so it can never make a
destroyed or disabled key usable again: the request must first find the wrapped row and the key's
state in the database (docs/design.md section 8, revocation at once).
"""

from __future__ import annotations

from collections.abc import Iterable

from openkms.crypto import keypairs, wrap
from openkms.crypto.errors import IntegrityError
from openkms.errors import KMSInternalException
from openkms.lru import LRUCache
from openkms.seal.keyring import Keyring
from openkms.storage.records import KeyRecord, KeyVersionRecord

MATERIAL_BINDING = "kms-key-material"


def material_binding(key: KeyRecord, version_id: str) -> tuple[str, str, str]:
    return (MATERIAL_BINDING, key.arn, version_id)


class MaterialCache:
    def __init__(self, keyring: Keyring, max_entries: int = 4096) -> None:
        self._keyring = keyring
        self._entries: LRUCache[bytes, bytes] = LRUCache(max_entries)
        self._private_keys: LRUCache[bytes, keypairs.PrivateKey] = LRUCache(max_entries)

    def material(self, key: KeyRecord, version: KeyVersionRecord) -> bytes:
        return self._entries.get_or_compute(version.wrapped_material, self._unwrap, key, version)

    def _unwrap(self, key: KeyRecord, version: KeyVersionRecord) -> bytes:
        try:
            return wrap.unwrap(
                self._keyring.root_key(), version.wrapped_material, material_binding(key, version.version_id)
            )
        except IntegrityError:
            # Moved or altered material (docs/tests.md C-8): fail closed, reveal nothing.
            raise KMSInternalException() from None

    def private_key(self, key: KeyRecord, version: KeyVersionRecord) -> keypairs.PrivateKey:
        """The loaded private key of an asymmetric version, cached like the bytes (parsing a PKCS#8 RSA
        key costs far more than using it)."""
        return self._private_keys.get_or_compute(version.wrapped_material, self._load, key, version)

    def _load(self, key: KeyRecord, version: KeyVersionRecord) -> keypairs.PrivateKey:
        try:
            return keypairs.load_private_key(key.key_spec, self.material(key, version))
        except ValueError:
            raise KMSInternalException() from None

    def wrap_new(self, key: KeyRecord, version_id: str, material: bytes) -> bytes:
        return wrap.wrap(self._keyring.root_key(), material, material_binding(key, version_id))

    def forget(self, wrapped: Iterable[bytes]) -> None:
        """Drop the entries of destroyed versions (key deletion), so their plaintext leaves this cache now."""
        for cache_key in wrapped:
            self._entries.discard(cache_key)
            self._private_keys.discard(cache_key)

    def clear(self) -> None:
        self._entries.clear()
        self._private_keys.clear()
