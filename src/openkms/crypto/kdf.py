"""Key derivation: HKDF-SHA256 for per-message keys, Argon2id for passphrase seals.

Argon2id parameters are public and stored next to the sealed root key as JSON. They carry an algorithm name so
that a later KDF can be added without guessing, and :meth:`PassphraseKdfParams.from_json` bounds every cost so a
tampered parameter file cannot make unseal allocate gigabytes or loop for hours (it can only fail to unseal).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.crypto.rand import random_bytes

KEK_SIZE = 32
ARGON2ID = "argon2id"
_MIN_SALT, _MAX_SALT = 16, 64
_MAX_ITERATIONS = 64
_MAX_LANES = 64
_MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 extract-and-expand; ``length`` above 255 * 32 raises ``ValueError``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _int_field(data: dict[str, object], name: str) -> int:
    value = data.get(name)
    if type(value) is not int:  # bool is an int subclass; reject it too
        raise ValueError(f"malformed Argon2id parameter {name}")
    return value


@dataclass(frozen=True, slots=True)
class PassphraseKdfParams:
    """Public Argon2id costs and salt; ``memory_cost_kib`` is in KiB as in RFC 9106."""

    salt: bytes
    iterations: int
    lanes: int
    memory_cost_kib: int

    def __post_init__(self) -> None:
        if not _MIN_SALT <= len(self.salt) <= _MAX_SALT:
            raise ValueError("Argon2id salt must be 16 to 64 bytes")
        if not 1 <= self.iterations <= _MAX_ITERATIONS:
            raise ValueError("Argon2id iterations out of range")
        if not 1 <= self.lanes <= _MAX_LANES:
            raise ValueError("Argon2id lanes out of range")
        if not 8 * self.lanes <= self.memory_cost_kib <= _MAX_MEMORY_KIB:
            raise ValueError("Argon2id memory cost out of range")

    def to_json(self) -> str:
        return json.dumps(
            {
                "kdf": ARGON2ID,
                "salt": base64.b64encode(self.salt).decode("ascii"),
                "iterations": self.iterations,
                "lanes": self.lanes,
                "memory_cost_kib": self.memory_cost_kib,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> PassphraseKdfParams:
        """Parse what :meth:`to_json` wrote; anything else raises ``ValueError``."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("kdf") != ARGON2ID:
            raise ValueError("not Argon2id parameters")
        salt_text = data.get("salt")
        if not isinstance(salt_text, str):
            raise ValueError("malformed Argon2id salt")
        try:
            salt = base64.b64decode(salt_text, validate=True)
        except binascii.Error:
            raise ValueError("malformed Argon2id salt") from None
        return cls(salt, _int_field(data, "iterations"), _int_field(data, "lanes"), _int_field(data, "memory_cost_kib"))


def new_passphrase_params(iterations: int = 3, lanes: int = 4, memory_cost_kib: int = 64 * 1024) -> PassphraseKdfParams:
    """Fresh random salt with RFC 9106's second recommended profile (t=3, p=4, m=64 MiB)."""
    return PassphraseKdfParams(random_bytes(32), iterations, lanes, memory_cost_kib)


def derive_passphrase_kek(passphrase: bytes, params: PassphraseKdfParams) -> bytes:
    """The 32-byte key-encryption key for a passphrase seal; slow on purpose."""
    kdf = Argon2id(
        salt=params.salt,
        length=KEK_SIZE,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_cost_kib,
    )
    return kdf.derive(passphrase)
