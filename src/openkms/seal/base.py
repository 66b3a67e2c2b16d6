"""What every seal provider shares: the root key wrapped under a key-encryption key (KEK).

A provider's only job is to produce the KEK (from a key file, a passphrase, later Shamir shares or an
HSM). The wrapped root key and the provider's public parameters live in storage (:class:`SealRecord`);
the root key itself exists only in memory.
"""

from __future__ import annotations

from openkms.crypto import wrap
from openkms.crypto.errors import IntegrityError


class UnsealError(Exception):
    """The unseal material is wrong (or the stored root key was altered); nothing is revealed."""


def _binding(kind: str) -> tuple[str, str]:
    return ("openkms-root-key", kind)


def wrap_root_key(kek: bytes, root_key: bytes, kind: str) -> bytes:
    return wrap.wrap(kek, root_key, _binding(kind))


def unwrap_root_key(kek: bytes, wrapped_root_key: bytes, kind: str) -> bytes:
    try:
        return wrap.unwrap(kek, wrapped_root_key, _binding(kind))
    except IntegrityError:
        raise UnsealError("the unseal material does not open this data directory") from None
