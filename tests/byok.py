"""What a customer does before ImportKeyMaterial, written with pyca only (never with openkms code): wrap key
material under the ``PublicKey`` of GetParametersForImport with AWS's documented wrapping algorithms, and make
private keys to import as PKCS #8 DER."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256")
WRAPPING_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")


def oaep(algorithm: str) -> padding.OAEP:
    """AWS's OAEP: MGF1 with the same hash as the label hash, empty label."""
    hash_type = hashes.SHA256() if algorithm.endswith("SHA_256") else hashes.SHA1()  # noqa: S303 - AWS's algorithm
    return padding.OAEP(mgf=padding.MGF1(hash_type), algorithm=hash_type, label=None)


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """EncryptedKeyMaterial: RSA-OAEP of the material, or RSA-OAEP of a fresh AES-256 key followed by the material
    under AES Key Wrap with Padding (RFC 5649), as AWS's OpenSSL example does (``-id-aes256-wrap-pad``)."""
    public = serialization.load_der_public_key(public_key_der)
    assert isinstance(public, rsa.RSAPublicKey)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, oaep(algorithm))
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


def pkcs8(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def spki(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
