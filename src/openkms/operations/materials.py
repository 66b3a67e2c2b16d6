"""Unwrapping key-version material under the root key, with a bounded cache of the results.

The cache is keyed by the *wrapped* bytes read from storage on every request, so it can never make a
destroyed or disabled key usable again: the request must first find the wrapped row and the key's
state in the database (docs/design.md section 8, revocation at once).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from openkms.crypto import keypairs, wrap
from openkms.crypto.errors import IntegrityError
from openkms.errors import KMSInternalException
from openkms.seal.keyring import Keyring
from openkms.storage.records import KeyRecord, KeyVersionRecord

MATERIAL_BINDING = "kms-key-material"


def material_binding(key: KeyRecord, version_id: str) -> tuple[str, str, str]:
    return (MATERIAL_BINDING, key.arn, version_id)


class MaterialCache:
    def __init__(self, keyring: Keyring, max_entries: int = 4096) -> None:
        self._keyring = keyring
        self._max = max_entries
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._private_keys: OrderedDict[bytes, keypairs.PrivateKey] = OrderedDict()
        self._lock = threading.Lock()

    def material(self, key: KeyRecord, version: KeyVersionRecord) -> bytes:
        cache_key = version.wrapped_material
        with self._lock:
            found = self._entries.get(cache_key)
            if found is not None:
                self._entries.move_to_end(cache_key)
                return found
        root = self._keyring.root_key()
        try:
            plain = wrap.unwrap(root, version.wrapped_material, material_binding(key, version.version_id))
        except IntegrityError:
            # Moved or altered material (docs/tests.md C-8): fail closed, reveal nothing.
            raise KMSInternalException() from None
        with self._lock:
            self._entries[cache_key] = plain
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return plain

    def private_key(self, key: KeyRecord, version: KeyVersionRecord) -> keypairs.PrivateKey:
        """The loaded private key of an asymmetric version, cached like the bytes (parsing a PKCS#8 RSA
        key costs far more than using it)."""
        cache_key = version.wrapped_material
        with self._lock:
            found = self._private_keys.get(cache_key)
            if found is not None:
                self._private_keys.move_to_end(cache_key)
                return found
        try:
            loaded = keypairs.load_private_key(key.key_spec, self.material(key, version))
        except ValueError:
            raise KMSInternalException() from None
        with self._lock:
            self._private_keys[cache_key] = loaded
            if len(self._private_keys) > self._max:
                self._private_keys.popitem(last=False)
        return loaded

    def wrap_new(self, key: KeyRecord, version_id: str, material: bytes) -> bytes:
        return wrap.wrap(self._keyring.root_key(), material, material_binding(key, version_id))

    def forget(self, wrapped: Iterable[bytes]) -> None:
        """Drop the entries of destroyed versions (key deletion), so their plaintext leaves this cache now."""
        with self._lock:
            for cache_key in wrapped:
                self._entries.pop(cache_key, None)
                self._private_keys.pop(cache_key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._private_keys.clear()
