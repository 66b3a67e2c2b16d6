"""Sign/Verify with the KMS algorithm names, checked by plain pyca calls and by the ``openssl`` command line.

The independent checks never pass a digest or a mu to the checker: a ``DIGEST`` signature over H(m) must verify
as an ordinary signature over m, and an ``EXTERNAL_MU`` signature as an ordinary ML-DSA signature over m.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

from openkms.crypto import ed25519ph, keypairs, signatures
from openkms.crypto.errors import InvalidSignatureError

HAS_MLDSA = "ML_DSA_44" in keypairs.SUPPORTED_SPECS
needs_mldsa = pytest.mark.skipif(not HAS_MLDSA, reason="this pyca/OpenSSL build has no ML-DSA")

RSA_ALGORITHMS = [f"RSASSA_{scheme}_SHA_{bits}" for scheme in ("PSS", "PKCS1_V1_5") for bits in (256, 384, 512)]
# (spec, algorithm): the AWS pairings, plus RSA sizes spot-checked with a couple of algorithms each.
HASHED_PAIRS = [
    *(("RSA_2048", algorithm) for algorithm in RSA_ALGORITHMS),
    ("RSA_3072", "RSASSA_PSS_SHA_384"),
    ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256"),
    ("RSA_4096", "RSASSA_PSS_SHA_512"),
    ("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384"),
    ("ECC_NIST_P521", "ECDSA_SHA_512"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
]
ROUND_TRIPS = [
    *((spec, algorithm, message_type) for spec, algorithm in HASHED_PAIRS for message_type in ("RAW", "DIGEST")),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "RAW"),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "DIGEST"),
    *(
        pytest.param(spec, "ML_DSA_SHAKE_256", message_type, marks=needs_mldsa)
        for spec in ("ML_DSA_44", "ML_DSA_65", "ML_DSA_87")
        for message_type in ("RAW", "EXTERNAL_MU")
    ),
]
HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
MESSAGE = b"openkms asymmetric signature test message"


@functools.cache
def _private(spec: str) -> keypairs.PrivateKey:
    return keypairs.load_private_key(spec, keypairs.generate_private_key(spec))


def _public(spec: str) -> keypairs.PublicKey:
    return keypairs.public_key(_private(spec))


def _hash_of(algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[algorithm[-3:]]


def _input(spec: str, algorithm: str, message_type: str, message: bytes) -> bytes:
    """What a KMS client sends for ``message``: the message, its digest, or its mu."""
    if message_type == "DIGEST":
        return hashlib.new(_hash_of(algorithm).name, message).digest()
    if message_type == "EXTERNAL_MU":
        return signatures.compute_external_mu(_public(spec), message)
    return message


def _sodium_ed25519ph_verify(public: ed25519.Ed25519PublicKey, message: bytes, signature: bytes) -> None:
    """AWS's ED25519_PH_SHA_512 spelled out with libsodium: Ed25519ph over the client's SHA-512 digest of the
    message (KMS prehashes that digest once more). pyca has no Ed25519ph; the RFC 8032 vector below anchors this."""
    state = sodium.crypto_sign_ed25519ph_state()
    sodium.crypto_sign_ed25519ph_update(state, hashlib.sha512(message).digest())
    try:
        sodium.crypto_sign_ed25519ph_final_verify(state, signature, public.public_bytes_raw())
    except BadSignatureError:
        raise InvalidSignature() from None


def _pyca_verify(public: keypairs.PublicKey, algorithm: str, message: bytes, signature: bytes) -> None:
    """AWS's definitions spelled out with plain pyca calls, on the *message* (raises InvalidSignature)."""
    if algorithm.startswith("RSASSA_PSS_"):
        assert isinstance(public, rsa.RSAPublicKey)
        hash_algorithm = _hash_of(algorithm)
        pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
        public.verify(signature, message, pss, hash_algorithm)
    elif algorithm.startswith("RSASSA_PKCS1_V1_5_"):
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, message, padding.PKCS1v15(), _hash_of(algorithm))
    elif algorithm.startswith("ECDSA_"):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, message, ec.ECDSA(_hash_of(algorithm)))
    elif algorithm == "ED25519_SHA_512":
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(signature, message)
    elif algorithm == "ED25519_PH_SHA_512":
        assert isinstance(public, ed25519.Ed25519PublicKey)
        _sodium_ed25519ph_verify(public, message, signature)
    else:
        assert isinstance(public, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey)
        public.verify(signature, message, context=b"")


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), ROUND_TRIPS)
def test_round_trip_and_independent_verification(spec: str, algorithm: str, message_type: str) -> None:
    private, public = _private(spec), _public(spec)
    data = _input(spec, algorithm, message_type, MESSAGE)
    signature = signatures.sign(private, algorithm, data, message_type)
    signatures.verify(public, algorithm, data, message_type, signature)
    _pyca_verify(public, algorithm, MESSAGE, signature)
    with pytest.raises(InvalidSignature):
        _pyca_verify(public, algorithm, MESSAGE + b"!", signature)
    # The other message type of the same algorithm accepts the same signature.
    other = {
        "RAW": "EXTERNAL_MU" if algorithm == "ML_DSA_SHAKE_256" else "DIGEST",
        "DIGEST": "RAW",
        "EXTERNAL_MU": "RAW",
    }[message_type]
    if not algorithm.startswith("ED25519_"):  # each Ed25519 algorithm takes one message type only
        signatures.verify(public, algorithm, _input(spec, algorithm, other, MESSAGE), other, signature)


def _mutations(signature: bytes) -> list[bytes]:
    flipped = [bytearray(signature) for _ in range(3)]
    for copy, index in zip(flipped, (0, len(signature) // 2, -1), strict=True):
        copy[index] ^= 0x01
    return [bytes(f) for f in flipped] + [signature[:-1], signature + b"\x00", b"", bytes(len(signature))]


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), ROUND_TRIPS)
def test_altered_message_or_signature_is_invalid_signature(spec: str, algorithm: str, message_type: str) -> None:
    private, public = _private(spec), _public(spec)
    data = _input(spec, algorithm, message_type, MESSAGE)
    signature = signatures.sign(private, algorithm, data, message_type)
    altered = _input(spec, algorithm, message_type, MESSAGE[:-1] + b"?")
    with pytest.raises(InvalidSignatureError):
        signatures.verify(public, algorithm, altered, message_type, signature)
    for bad in _mutations(signature):
        with pytest.raises(InvalidSignatureError):
            signatures.verify(public, algorithm, data, message_type, bad)


def test_another_key_of_the_same_spec_does_not_verify() -> None:
    other = keypairs.load_private_key("ECC_NIST_P256", keypairs.generate_private_key("ECC_NIST_P256"))
    signature = signatures.sign(other, "ECDSA_SHA_256", MESSAGE, "RAW")
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public("ECC_NIST_P256"), "ECDSA_SHA_256", MESSAGE, "RAW", signature)


@pytest.mark.parametrize(("spec", "algorithm"), HASHED_PAIRS)
def test_digest_of_the_wrong_length_is_a_value_error(spec: str, algorithm: str) -> None:
    size = _hash_of(algorithm).digest_size
    assert signatures.digest_size(algorithm) == size
    good = signatures.sign(_private(spec), algorithm, bytes(size), "DIGEST")
    for length in (0, size - 1, size + 1, 2 * size):
        with pytest.raises(ValueError):
            signatures.sign(_private(spec), algorithm, bytes(length), "DIGEST")
        with pytest.raises(ValueError) as raised:
            signatures.verify(_public(spec), algorithm, bytes(length), "DIGEST", good)
        assert not isinstance(raised.value, InvalidSignatureError)


@needs_mldsa
def test_external_mu_must_be_64_bytes() -> None:
    mu = signatures.compute_external_mu(_public("ML_DSA_44"), MESSAGE)
    assert len(mu) == signatures.MU_SIZE == 64
    good = signatures.sign(_private("ML_DSA_44"), "ML_DSA_SHAKE_256", mu, "EXTERNAL_MU")
    for length in (0, 32, 63, 65, 128):
        with pytest.raises(ValueError):
            signatures.sign(_private("ML_DSA_44"), "ML_DSA_SHAKE_256", bytes(length), "EXTERNAL_MU")
        with pytest.raises(ValueError):
            signatures.verify(_public("ML_DSA_44"), "ML_DSA_SHAKE_256", bytes(length), "EXTERNAL_MU", good)


@needs_mldsa
def test_external_mu_of_another_key_does_not_verify() -> None:
    """mu binds the public key (tr = H(pk)), so a mu computed for ML_DSA_65's key is not this key's mu."""
    foreign_mu = signatures.compute_external_mu(_public("ML_DSA_65"), MESSAGE)
    signature = signatures.sign(_private("ML_DSA_44"), "ML_DSA_SHAKE_256", foreign_mu, "EXTERNAL_MU")
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public("ML_DSA_44"), "ML_DSA_SHAKE_256", MESSAGE, "RAW", signature)


INVALID_COMBINATIONS = [
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "DIGEST"),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "EXTERNAL_MU"),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "RAW"),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "EXTERNAL_MU"),
    ("ECC_NIST_P256", "ED25519_PH_SHA_512", "DIGEST"),
    ("RSA_2048", "ED25519_PH_SHA_512", "DIGEST"),
    ("RSA_2048", "RSASSA_PSS_SHA_256", "EXTERNAL_MU"),
    ("ECC_NIST_P256", "ECDSA_SHA_256", "EXTERNAL_MU"),
    ("ECC_NIST_P256", "ECDSA_SHA_256", "raw"),
    ("ECC_NIST_P256", "ECDSA_SHA_256", "HASH"),
    ("ECC_NIST_P256", "ECDSA_SHA_224", "RAW"),
    ("ECC_NIST_P256", "RSASSA_PSS_SHA_256", "RAW"),
    ("ECC_NIST_P256", "ED25519_SHA_512", "RAW"),
    ("RSA_2048", "ECDSA_SHA_256", "RAW"),
    ("RSA_2048", "ML_DSA_SHAKE_256", "RAW"),
    ("ECC_NIST_EDWARDS25519", "ECDSA_SHA_256", "RAW"),
    ("ECC_NIST_EDWARDS25519", "RSASSA_PKCS1_V1_5_SHA_256", "RAW"),
    ("RSA_2048", "SYMMETRIC_DEFAULT", "RAW"),
    ("RSA_2048", "RSAES_OAEP_SHA_256", "RAW"),
    pytest.param("ML_DSA_44", "ML_DSA_SHAKE_256", "DIGEST", marks=needs_mldsa),
    pytest.param("ML_DSA_44", "ECDSA_SHA_256", "RAW", marks=needs_mldsa),
    pytest.param("ML_DSA_44", "ED25519_SHA_512", "RAW", marks=needs_mldsa),
    pytest.param("ML_KEM_768", "ML_DSA_SHAKE_256", "RAW", marks=needs_mldsa),
    pytest.param("ECC_NIST_P256", "ML_DSA_SHAKE_256", "EXTERNAL_MU", marks=needs_mldsa),
]


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), INVALID_COMBINATIONS)
def test_invalid_combination_is_a_value_error(spec: str, algorithm: str, message_type: str) -> None:
    message = bytes(64)  # a plausible length for every message type, so only the combination is wrong
    with pytest.raises(ValueError):
        signatures.sign(_private(spec), algorithm, message, message_type)
    with pytest.raises(ValueError):
        signatures.verify(_public(spec), algorithm, message, message_type, bytes(64))


def test_spec_algorithm_pairing_is_the_callers_policy() -> None:
    """AWS allows only ECDSA_SHA_256 on P-256; pyca (and so this layer) signs P-256 with SHA-384 too."""
    signature = signatures.sign(_private("ECC_NIST_P256"), "ECDSA_SHA_384", MESSAGE, "RAW")
    signatures.verify(_public("ECC_NIST_P256"), "ECDSA_SHA_384", MESSAGE, "RAW", signature)


# RFC 8032 section 7.3, "TEST abc": Ed25519ph with an empty context.
RFC8032_PH_SECRET = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"
RFC8032_PH_PUBLIC = "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
RFC8032_PH_SIGNATURE = (
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)


def test_ed25519ph_matches_the_rfc8032_vector() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_PH_SECRET))
    public = private.public_key()
    assert public.public_bytes_raw().hex() == RFC8032_PH_PUBLIC
    signature = ed25519ph.sign(private, b"abc")
    assert signature.hex() == RFC8032_PH_SIGNATURE
    ed25519ph.verify(public, signature, b"abc")
    for message, bad in [
        (b"abd", signature),
        (b"abc", signature[:-1] + b"\x07"),
        (b"abc", signature[:63]),
        (b"abc", b""),
    ]:
        with pytest.raises(InvalidSignatureError):
            ed25519ph.verify(public, bad, message)
    # Ed25519ph is domain-separated from pure Ed25519: its signature does not verify as a pure one.
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"abc")


def test_ed25519ph_signs_the_digest_with_one_more_prehash() -> None:
    """AWS: with ED25519_PH_SHA_512 and MessageType DIGEST, KMS still applies the SHA-512 prehash."""
    private, public = _private("ECC_NIST_EDWARDS25519"), _public("ECC_NIST_EDWARDS25519")
    assert isinstance(private, ed25519.Ed25519PrivateKey) and isinstance(public, ed25519.Ed25519PublicKey)
    digest = hashlib.sha512(MESSAGE).digest()
    signature = signatures.sign(private, "ED25519_PH_SHA_512", digest, "DIGEST")
    assert signature == ed25519ph.sign(private, digest)  # deterministic, and the digest is the Ed25519ph message
    with pytest.raises(InvalidSignatureError):
        ed25519ph.verify(public, signature, MESSAGE)  # not Ed25519ph of the message itself
    for length in (0, 32, 63, 65):
        with pytest.raises(ValueError):
            signatures.sign(private, "ED25519_PH_SHA_512", bytes(length), "DIGEST")


def test_digest_sizes_and_algorithm_names() -> None:
    sizes = {algorithm: signatures.digest_size(algorithm) for algorithm in signatures.SIGNING_ALGORITHMS}
    assert sizes == {
        **{f"RSASSA_PSS_SHA_{b}": b // 8 for b in (256, 384, 512)},
        **{f"RSASSA_PKCS1_V1_5_SHA_{b}": b // 8 for b in (256, 384, 512)},
        **{f"ECDSA_SHA_{b}": b // 8 for b in (256, 384, 512)},
        "ED25519_SHA_512": None,
        "ED25519_PH_SHA_512": 64,
        "ML_DSA_SHAKE_256": None,
    }
    with pytest.raises(ValueError):
        signatures.digest_size("SHA_256")


@pytest.mark.parametrize("salt_length", [0, 20, padding.PSS.MAX_LENGTH])
def test_pss_salt_length_must_be_the_digest_length(salt_length: int) -> None:
    private = _private("RSA_2048")
    assert isinstance(private, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
    other_salt = private.sign(MESSAGE, pss, hashes.SHA256())
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public("RSA_2048"), "RSASSA_PSS_SHA_256", MESSAGE, "RAW", other_salt)
    aws_salt = private.sign(MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    signatures.verify(_public("RSA_2048"), "RSASSA_PSS_SHA_256", MESSAGE, "RAW", aws_salt)


def test_ecdsa_signature_is_der_not_raw_r_s() -> None:
    signature = signatures.sign(_private("ECC_NIST_P256"), "ECDSA_SHA_256", MESSAGE, "RAW")
    r, s = utils.decode_dss_signature(signature)
    assert utils.encode_dss_signature(r, s) == signature
    raw_r_s = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public("ECC_NIST_P256"), "ECDSA_SHA_256", MESSAGE, "RAW", raw_r_s)


@needs_mldsa
def test_compute_external_mu_needs_an_ml_dsa_key() -> None:
    for spec in ("ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ML_KEM_768"):
        with pytest.raises(ValueError):
            signatures.compute_external_mu(_public(spec), MESSAGE)


@needs_mldsa
def test_external_mu_matches_pycas_hasher_and_depends_on_the_message() -> None:
    public = _public("ML_DSA_65")
    assert isinstance(public, mldsa.MLDSA65PublicKey)
    hasher = mldsa.MLDSAMuHasher(public)
    hasher.update(MESSAGE[:5])
    hasher.update(MESSAGE[5:])
    assert signatures.compute_external_mu(public, MESSAGE) == hasher.finalize()
    assert signatures.compute_external_mu(public, MESSAGE) != signatures.compute_external_mu(public, MESSAGE + b".")


# --- the openssl command line, an implementation that shares no code path with our wrappers ------------------------

OPENSSL = shutil.which("openssl")
# (spec, algorithm, openssl arguments to sign/verify a message with `openssl dgst`, or None for pkeyutl -rawin)
OPENSSL_SAMPLES = [
    (
        "RSA_2048",
        "RSASSA_PSS_SHA_256",
        [
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-sigopt",
            "rsa_mgf1_md:sha256",
        ],
    ),
    ("ECC_NIST_P256", "ECDSA_SHA_256", ["-sha256"]),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", None),
]


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None, "the openssl command-line tool is needed for this independent check"
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=False, timeout=60)


def _write_keys(tmp_path: Path, spec: str) -> tuple[keypairs.PrivateKey, Path, Path]:
    """A new key of ``spec`` loaded through our wrapper, and its PEM files for openssl."""
    der = keypairs.generate_private_key(spec)
    private = keypairs.load_private_key(spec, der)
    private_pem, public_pem = tmp_path / "key.pem", tmp_path / "pub.pem"
    pem_key = serialization.load_der_private_key(der, None)
    pkcs8 = serialization.PrivateFormat.PKCS8
    private_pem.write_bytes(pem_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    public = serialization.load_der_public_key(keypairs.public_key_der(private))
    public_pem.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, private_pem, public_pem


def _openssl_verify(options: list[str] | None, public_pem: Path, message: Path, signature: Path) -> bool:
    if options is None:
        args: list[str | Path] = [
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            public_pem,
            "-rawin",
            "-in",
            message,
            "-sigfile",
            signature,
        ]
        return _openssl(*args).returncode == 0
    return _openssl("dgst", *options, "-verify", public_pem, "-signature", signature, message).returncode == 0


@pytest.mark.parametrize(("spec", "algorithm", "options"), OPENSSL_SAMPLES)
def test_openssl_verifies_ours_and_we_verify_openssls(
    tmp_path: Path, spec: str, algorithm: str, options: list[str] | None
) -> None:
    private, private_pem, public_pem = _write_keys(tmp_path, spec)
    public = keypairs.public_key(private)
    message, altered, ours, theirs = (tmp_path / name for name in ("msg", "altered", "ours.sig", "theirs.sig"))
    message.write_bytes(MESSAGE)
    altered.write_bytes(MESSAGE + b"!")

    ours.write_bytes(signatures.sign(private, algorithm, MESSAGE, "RAW"))
    assert _openssl_verify(options, public_pem, message, ours)
    assert not _openssl_verify(options, public_pem, altered, ours)

    if options is None:
        signed = _openssl("pkeyutl", "-sign", "-inkey", private_pem, "-rawin", "-in", message, "-out", theirs)
    else:
        signed = _openssl("dgst", *options, "-sign", private_pem, "-out", theirs, message)
    assert signed.returncode == 0, signed.stderr
    signatures.verify(public, algorithm, MESSAGE, "RAW", theirs.read_bytes())


def test_openssl_pkeyutl_verifies_our_digest_signature(tmp_path: Path) -> None:
    """The DIGEST path as a client would check it: openssl is handed the digest, never the message."""
    private, _, public_pem = _write_keys(tmp_path, "ECC_NIST_P256")
    digest = hashlib.sha256(MESSAGE).digest()
    signature = signatures.sign(private, "ECDSA_SHA_256", digest, "DIGEST")
    (tmp_path / "digest").write_bytes(digest)
    (tmp_path / "sig").write_bytes(signature)
    args: list[str | Path] = [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        public_pem,
        "-in",
        tmp_path / "digest",
        "-sigfile",
        tmp_path / "sig",
    ]
    assert _openssl(*args, "-pkeyopt", "digest:sha256").returncode == 0
    (tmp_path / "digest").write_bytes(bytes(32))
    assert _openssl(*args, "-pkeyopt", "digest:sha256").returncode != 0


# --- properties -------------------------------------------------------------------------------------------------

FAST = [
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
    ("RSA_2048", "RSASSA_PSS_SHA_256"),
    *([("ML_DSA_44", "ML_DSA_SHAKE_256")] if HAS_MLDSA else []),
]


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=4096), pair=st.sampled_from(FAST), bit=st.integers(min_value=0))
def test_property_sign_verify_and_any_flipped_message_bit_fails(
    message: bytes, pair: tuple[str, str], bit: int
) -> None:
    spec, algorithm = pair
    signature = signatures.sign(_private(spec), algorithm, message, "RAW")
    signatures.verify(_public(spec), algorithm, message, "RAW", signature)
    flipped = bytearray(message or b"\x00")
    flipped[bit // 8 % len(flipped)] ^= 1 << (bit % 8)
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public(spec), algorithm, bytes(flipped), "RAW", signature)


@settings(max_examples=200, deadline=None)
@given(signature=st.binary(max_size=600), pair=st.sampled_from([*FAST, ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256")]))
def test_property_arbitrary_bytes_never_verify_and_raise_only_invalid_signature(
    signature: bytes, pair: tuple[str, str]
) -> None:
    spec, algorithm = pair
    with pytest.raises(InvalidSignatureError):
        signatures.verify(_public(spec), algorithm, MESSAGE, "RAW", signature)
