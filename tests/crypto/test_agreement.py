"""Raw ECDH for DeriveSharedSecret: both sides agree, plain pyca and openssl agree, wrong curves are refused."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.crypto import agreement, keypairs
from openkms.crypto.errors import InvalidKeyError

NIST = {"ECC_NIST_P256": 32, "ECC_NIST_P384": 48, "ECC_NIST_P521": 66}


@functools.cache
def _der(spec: str, which: int = 0) -> bytes:
    return keypairs.generate_private_key(spec)


def _private(spec: str, which: int = 0) -> keypairs.PrivateKey:
    return keypairs.load_private_key(spec, _der(spec, which))


def _peer(spec: str, which: int = 1) -> keypairs.PublicKey:
    """A peer public key as DeriveSharedSecret receives it: SPKI bytes through load_public_key."""
    return keypairs.load_public_key(spec, keypairs.public_key_der(_private(spec, which)))


@pytest.mark.parametrize("spec", sorted(NIST))
def test_both_sides_agree_and_match_plain_pyca(spec: str) -> None:
    ours = agreement.ecdh(_private(spec, 0), _peer(spec, 1))
    assert ours == agreement.ecdh(_private(spec, 1), _peer(spec, 0))
    assert len(ours) == NIST[spec]
    mine = serialization.load_der_private_key(_der(spec, 0), None)
    theirs = serialization.load_der_private_key(_der(spec, 1), None)
    assert isinstance(mine, ec.EllipticCurvePrivateKey) and isinstance(theirs, ec.EllipticCurvePrivateKey)
    assert ours == mine.exchange(ec.ECDH(), theirs.public_key())
    assert ours != agreement.ecdh(_private(spec, 0), _peer(spec, 2))


def test_openssl_derives_the_same_secret(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command-line tool is needed for this independent check"
    mine = serialization.load_der_private_key(_der("ECC_NIST_P384", 0), None)
    (tmp_path / "key.pem").write_bytes(
        mine.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    peer_spki = keypairs.public_key_der(_private("ECC_NIST_P384", 1))
    (tmp_path / "peer.der").write_bytes(peer_spki)
    args = ["pkeyutl", "-derive", "-inkey", "key.pem", "-peerkey", "peer.der", "-peerform", "DER", "-out", "secret"]
    done = subprocess.run([openssl, *args], cwd=tmp_path, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "secret").read_bytes() == agreement.ecdh(_private("ECC_NIST_P384", 0), _peer("ECC_NIST_P384"))


MISMATCHED = [
    ("ECC_NIST_P256", "ECC_NIST_P384"),
    ("ECC_NIST_P521", "ECC_NIST_P256"),
    ("ECC_NIST_P256", "ECC_SECG_P256K1"),
    ("ECC_NIST_P256", "ECC_NIST_EDWARDS25519"),
    ("ECC_NIST_P256", "RSA_2048"),
]


@pytest.mark.parametrize(("spec", "peer_spec"), MISMATCHED)
def test_a_peer_of_another_curve_or_type_is_an_invalid_key(spec: str, peer_spec: str) -> None:
    with pytest.raises(InvalidKeyError):
        agreement.ecdh(_private(spec), _peer(peer_spec))


@pytest.mark.parametrize("spec", ["ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "RSA_2048"])
def test_key_agreement_is_for_nist_curves_only(spec: str) -> None:
    """A private key that may not agree is the caller's plain ValueError, not a bad peer key."""
    with pytest.raises(ValueError) as raised:
        agreement.ecdh(_private(spec), _peer(spec))
    assert type(raised.value) is ValueError


def test_a_peer_point_off_the_curve_never_reaches_ecdh() -> None:
    spki = bytearray(keypairs.public_key_der(_private("ECC_NIST_P256", 1)))
    spki[-1] ^= 0x01
    with pytest.raises(InvalidKeyError):
        keypairs.load_public_key("ECC_NIST_P256", bytes(spki))


def test_a_compressed_peer_point_is_accepted() -> None:
    """RFC 5480 permits compressed points; the Wycheproof decision (CompressedPublic) is to accept them."""
    uncompressed = keypairs.public_key_der(_private("ECC_NIST_P256", 1))
    public = serialization.load_der_public_key(uncompressed)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    # pyca writes SPKI uncompressed only: same AlgorithmIdentifier (21 bytes), a 33-byte BIT STRING payload.
    compressed = b"\x30\x39" + uncompressed[2:23] + b"\x03\x22\x00" + point
    peer = keypairs.load_public_key("ECC_NIST_P256", compressed)
    assert agreement.ecdh(_private("ECC_NIST_P256"), peer) == agreement.ecdh(
        _private("ECC_NIST_P256"), _peer("ECC_NIST_P256")
    )
