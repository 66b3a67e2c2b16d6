"""HMAC for the KMS MAC algorithms (GenerateMac / VerifyMac).

Verification raises instead of returning a bool (pyca's rule), and compares in constant time through
pyca's ``HMAC.verify``. Only full-length MACs verify: KMS has no truncated MACs, so a truncated one is
simply wrong.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

from openkms.crypto.errors import InvalidMacError

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "HMAC_SHA_224": hashes.SHA224,
    "HMAC_SHA_256": hashes.SHA256,
    "HMAC_SHA_384": hashes.SHA384,
    "HMAC_SHA_512": hashes.SHA512,
}
MAC_ALGORITHMS = frozenset(_HASHES)


def _new(algorithm: str, key: bytes) -> _hmac.HMAC:
    try:
        hash_type = _HASHES[algorithm]
    except KeyError:
        raise ValueError(f"unsupported MAC algorithm {algorithm!r}") from None
    return _hmac.HMAC(key, hash_type())


def hmac_generate(algorithm: str, key: bytes, message: bytes) -> bytes:
    """The full-length MAC of ``message``; ``algorithm`` is a KMS MacAlgorithmSpec name."""
    mac = _new(algorithm, key)
    mac.update(message)
    return mac.finalize()


def hmac_verify(algorithm: str, key: bytes, message: bytes, mac: bytes) -> None:
    """Return ``None`` if ``mac`` is right, raise :class:`InvalidMacError` otherwise (constant time)."""
    context = _new(algorithm, key)
    context.update(message)
    try:
        context.verify(mac)
    except InvalidSignature:
        raise InvalidMacError() from None
