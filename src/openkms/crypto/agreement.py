"""Raw ECDH for DeriveSharedSecret (KeyAgreementAlgorithm ``ECDH``): the x coordinate of the shared point.

AWS returns the raw shared secret and leaves key derivation to the caller, so no KDF is applied here. Key
agreement is offered on the NIST curves only, as in AWS (ECC_SECG_P256K1 is a signing-only spec there).
The peer key comes through :func:`keypairs.load_public_key`, which already refuses points off the curve.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from openkms.crypto.errors import InvalidKeyError
from openkms.crypto.keypairs import PrivateKey, PublicKey

AGREEMENT_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def ecdh(private: PrivateKey, peer_public: PublicKey) -> bytes:
    """The raw ECDH shared secret (field-size bytes, big-endian x coordinate).

    A private key that is not on a NIST curve is the caller's ``ValueError``; a peer key that is not an EC key
    on the same curve, or that yields no valid shared point, is :class:`InvalidKeyError` (also a ``ValueError``).
    """
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name not in AGREEMENT_CURVES:
        raise ValueError("ECDH needs a private key on a NIST curve")
    if not isinstance(peer_public, ec.EllipticCurvePublicKey) or peer_public.curve.name != private.curve.name:
        raise InvalidKeyError()
    try:
        return private.exchange(ec.ECDH(), peer_public)
    except ValueError:
        raise InvalidKeyError() from None
