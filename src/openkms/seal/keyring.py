"""The in-memory root key: present while unsealed, absent while sealed (never written in plaintext)."""

from __future__ import annotations

import threading

from openkms.errors import ServiceSealedException


class Keyring:
    """Holds the 256-bit root key of this process.

    Every path that needs key material asks :meth:`root_key`, which raises while sealed, so a sealed
    server cannot touch wrapped material even by mistake.
    """

    def __init__(self) -> None:
        self._root_key: bytes | None = None
        self._lock = threading.Lock()

    @property
    def sealed(self) -> bool:
        return self._root_key is None

    def root_key(self) -> bytes:
        key = self._root_key
        if key is None:
            raise ServiceSealedException()
        return key

    def unseal(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise ValueError("the root key is 32 bytes")
        with self._lock:
            self._root_key = bytes(root_key)

    def seal(self) -> None:
        with self._lock:
            self._root_key = None
