"""Every key type over HTTP with boto3 (issue 3): CreateKey per KeySpec x KeyUsage, GetPublicKey, Sign, Verify,
RSA Encrypt/Decrypt/ReEncrypt, GenerateMac, VerifyMac, GenerateDataKeyPair(WithoutPlaintext), DeriveSharedSecret,
Encapsulate and Decapsulate, on every storage engine.

Every output is checked offline with pyca/cryptography against the public key from GetPublicKey (and a sample
with the ``openssl`` command line), so the service cannot pass by agreeing with itself. AWS is the reference:
the KeySpec/KeyUsage table of the CreateKey reference, the algorithm lists of the developer guide's key-spec
pages, and the errors of each operation's reference page.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa, utils
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

from tests.e2e.kmsapi import code, expect_error, fails, message, new_key, raw_client
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
RSA_SIGNING = [f"RSASSA_{kind}_SHA_{bits}" for kind in ("PKCS1_V1_5", "PSS") for bits in ("256", "384", "512")]
SIGNING_CASES = [
    *(("RSA_2048", algorithm) for algorithm in RSA_SIGNING),
    ("RSA_3072", "RSASSA_PSS_SHA_256"),
    ("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384"),
    ("ECC_NIST_P521", "ECDSA_SHA_512"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
]
ML_DSA_SPECS = ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]


class Keys:
    """Keys made once per server and reused: RSA-4096 generation alone takes a second."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms
        self._made: dict[tuple[str, str], str] = {}

    def get(self, spec: str, usage: str) -> str:
        if (spec, usage) not in self._made:
            self._made[(spec, usage)] = new_key(self._kms, f"{spec} {usage}", KeySpec=spec, KeyUsage=usage)
        return self._made[(spec, usage)]


_KEYS: dict[str, Keys] = {}


@pytest.fixture
def keys(server: ServerProcess, kms: Any) -> Keys:
    return _KEYS.setdefault(server.endpoint, Keys(kms))


def public_key(kms: Any, key_id: str) -> Any:
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


def verify_offline(public: Any, algorithm: str, message_bytes: bytes, signature: bytes, digest: bool) -> None:
    """Verify with plain pyca calls: raises InvalidSignature when the signature does not match."""
    if algorithm.startswith("ML_DSA"):
        public.verify(signature, message_bytes)
        return
    if algorithm == "ED25519_SHA_512":
        public.verify(signature, message_bytes)
        return
    hash_type = HASHES[algorithm.rsplit("_", 1)[1]]()
    chosen: Any = utils.Prehashed(hash_type) if digest else hash_type
    if algorithm.startswith("RSASSA_PSS"):
        public.verify(signature, message_bytes, padding.PSS(padding.MGF1(hash_type), hash_type.digest_size), chosen)
    elif algorithm.startswith("RSASSA_PKCS1"):
        public.verify(signature, message_bytes, padding.PKCS1v15(), chosen)
    else:
        public.verify(signature, message_bytes, ec.ECDSA(chosen))


# -- CreateKey and DescribeKey ---------------------------------------------------------------------------------

VALID_PAIRS = [
    ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]),
    ("RSA_3072", "SIGN_VERIFY", "SigningAlgorithms", RSA_SIGNING),
    ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", "KEY_AGREEMENT", "KeyAgreementAlgorithms", ["ECDH"]),
    ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "SigningAlgorithms", ["ED25519_SHA_512", "ED25519_PH_SHA_512"]),
    ("ML_DSA_65", "SIGN_VERIFY", "SigningAlgorithms", ["ML_DSA_SHAKE_256"]),
    ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE", "EncapsulationAlgorithms", ["ML_KEM"]),
    ("HMAC_384", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_384"]),
]


@pytest.mark.parametrize(("spec", "usage", "field", "algorithms"), VALID_PAIRS)
def test_create_key_shows_the_algorithms_of_its_spec_and_usage(
    kms: Any, keys: Keys, spec: str, usage: str, field: str, algorithms: list[str]
) -> None:
    meta = kms.describe_key(KeyId=keys.get(spec, usage))["KeyMetadata"]
    assert (meta["KeySpec"], meta["CustomerMasterKeySpec"], meta["KeyUsage"]) == (spec, spec, usage)
    assert meta[field] == algorithms
    others = {"EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms"} - {field}
    assert not others & set(meta), meta
    assert meta["KeyState"] == "Enabled" and meta["Origin"] == "AWS_KMS"
    assert "CurrentKeyMaterialId" not in meta  # AWS shows it for symmetric encryption keys only


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("RSA_2048", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "ENCRYPT_DECRYPT"),
        ("ECC_SECG_P256K1", "KEY_AGREEMENT"),
        ("ECC_NIST_EDWARDS25519", "KEY_AGREEMENT"),
        ("HMAC_256", "ENCRYPT_DECRYPT"),  # the default usage does not fit an HMAC spec
        ("SYMMETRIC_DEFAULT", "SIGN_VERIFY"),
        ("ML_DSA_44", "ENCRYPT_DECRYPT"),
        ("ML_KEM_768", "SIGN_VERIFY"),
    ],
)
def test_create_key_refuses_usage_that_does_not_fit_the_spec(kms: Any, spec: str, usage: str) -> None:
    exc = expect_error(kms.create_key, "ValidationException", KeySpec=spec, KeyUsage=usage)
    assert spec in message(exc) and usage in message(exc)


def test_hmac_spec_without_usage_is_refused(kms: Any) -> None:
    exc = expect_error(kms.create_key, "ValidationException", KeySpec="HMAC_256")
    # AWS's answer, recorded (issue 18)
    assert message(exc) == "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."


@pytest.mark.parametrize(("spec", "usage"), [("SM2", "SIGN_VERIFY"), ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE")])
def test_specs_this_build_cannot_serve_are_unsupported(kms: Any, spec: str, usage: str) -> None:
    exc = expect_error(kms.create_key, "UnsupportedOperationException", KeySpec=spec, KeyUsage=usage)
    assert spec in message(exc)


def test_legacy_customer_master_key_spec_creates_the_same_key(kms: Any) -> None:
    meta = kms.create_key(CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert meta["KeySpec"] == "ECC_NIST_P256" and meta["SigningAlgorithms"] == ["ECDSA_SHA_256"]


# -- GetPublicKey --------------------------------------------------------------------------------------------


def test_get_public_key_returns_der_spki_with_metadata(kms: Any, keys: Keys) -> None:
    key_id = keys.get("RSA_2048", "ENCRYPT_DECRYPT")
    answer = kms.get_public_key(KeyId=key_id)
    loaded = serialization.load_der_public_key(answer["PublicKey"])
    assert isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size == 2048
    assert answer["KeyId"].endswith(key_id) and answer["KeyId"].startswith("arn:aws:kms:")
    assert (answer["KeySpec"], answer["KeyUsage"]) == ("RSA_2048", "ENCRYPT_DECRYPT")
    assert answer["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "SigningAlgorithms" not in answer


@pytest.mark.parametrize(
    ("spec", "usage", "kind"),
    [
        ("ECC_NIST_P384", "SIGN_VERIFY", ec.EllipticCurvePublicKey),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", ed25519.Ed25519PublicKey),
        ("ML_DSA_44", "SIGN_VERIFY", mldsa.MLDSA44PublicKey),
        ("ML_KEM_1024", "ENCAPSULATE_DECAPSULATE", mlkem.MLKEM1024PublicKey),
    ],
)
def test_public_keys_load_as_their_type(kms: Any, keys: Keys, spec: str, usage: str, kind: type) -> None:
    assert isinstance(public_key(kms, keys.get(spec, usage)), kind)


def test_get_public_key_of_a_symmetric_or_hmac_key_is_unsupported(kms: Any, keys: Keys) -> None:
    expect_error(kms.get_public_key, "UnsupportedOperationException", KeyId=new_key(kms))
    expect_error(kms.get_public_key, "UnsupportedOperationException", KeyId=keys.get("HMAC_256", "GENERATE_VERIFY_MAC"))


# -- Sign and Verify -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "algorithm"), SIGNING_CASES)
def test_signatures_verify_offline_and_altered_ones_fail(kms: Any, keys: Keys, spec: str, algorithm: str) -> None:
    key_id = keys.get(spec, "SIGN_VERIFY")
    public = public_key(kms, key_id)
    data = os.urandom(300)
    answer = kms.sign(KeyId=key_id, Message=data, SigningAlgorithm=algorithm)
    assert answer["SigningAlgorithm"] == algorithm and answer["KeyId"].endswith(key_id)
    verify_offline(public, algorithm, data, answer["Signature"], digest=False)
    with pytest.raises(InvalidSignature):
        verify_offline(public, algorithm, data + b"!", answer["Signature"], digest=False)

    # DIGEST: the caller hashes; the same signature scheme, so offline verification of the message still works.
    hash_type = HASHES[algorithm.rsplit("_", 1)[1]]()
    digest = hashes.Hash(hash_type)
    digest.update(data)
    prehashed = digest.finalize()
    signed = kms.sign(KeyId=key_id, Message=prehashed, MessageType="DIGEST", SigningAlgorithm=algorithm)
    verify_offline(public, algorithm, data, signed["Signature"], digest=False)

    verified = kms.verify(KeyId=key_id, Message=data, Signature=answer["Signature"], SigningAlgorithm=algorithm)
    assert verified["SignatureValid"] is True and verified["SigningAlgorithm"] == algorithm
    kms.verify(
        KeyId=key_id, Message=prehashed, MessageType="DIGEST", Signature=answer["Signature"], SigningAlgorithm=algorithm
    )
    expect_error(
        kms.verify,
        "KMSInvalidSignatureException",
        KeyId=key_id,
        Message=data + b"!",
        Signature=answer["Signature"],
        SigningAlgorithm=algorithm,
    )


def test_verify_refuses_altered_and_malformed_signatures(kms: Any, keys: Keys) -> None:
    key_id = keys.get("ECC_NIST_P256", "SIGN_VERIFY")
    signature = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    flipped = bytearray(signature)
    flipped[-1] ^= 1
    for bad in (bytes(flipped), signature[:-1], b"\x00", os.urandom(72)):
        expect_error(
            kms.verify,
            "KMSInvalidSignatureException",
            KeyId=key_id,
            Message=b"m",
            Signature=bad,
            SigningAlgorithm="ECDSA_SHA_256",
        )


def test_ed25519_signs_raw_messages(kms: Any, keys: Keys) -> None:
    key_id = keys.get("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    public = public_key(kms, key_id)
    signature = kms.sign(KeyId=key_id, Message=b"hello", SigningAlgorithm="ED25519_SHA_512")["Signature"]
    assert len(signature) == 64
    public.verify(signature, b"hello")
    with pytest.raises(InvalidSignature):
        public.verify(signature, b"hellO")
    kms.verify(KeyId=key_id, Message=b"hello", Signature=signature, SigningAlgorithm="ED25519_SHA_512")
    exc = expect_error(
        kms.sign,
        "ValidationException",
        KeyId=key_id,
        Message=hashlib.sha512(b"x").digest(),
        MessageType="DIGEST",
        SigningAlgorithm="ED25519_SHA_512",
    )
    assert "DIGEST" in message(exc)


def _ed25519ph_verify_offline(public: Any, digest: bytes, signature: bytes) -> None:
    """libsodium's Ed25519ph over the 64-byte digest the caller sent (KMS prehashes it once more, as AWS does)."""
    state = sodium.crypto_sign_ed25519ph_state()
    sodium.crypto_sign_ed25519ph_update(state, digest)
    sodium.crypto_sign_ed25519ph_final_verify(state, signature, public.public_bytes_raw())


def test_ed25519ph_signs_digests(kms: Any, keys: Keys) -> None:
    key_id = keys.get("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    public = public_key(kms, key_id)
    digest = hashlib.sha512(b"a message too large to send").digest()
    signed = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512")
    signature = signed["Signature"]
    assert (len(signature), signed["SigningAlgorithm"]) == (64, "ED25519_PH_SHA_512")
    _ed25519ph_verify_offline(public, digest, signature)
    with pytest.raises(BadSignatureError):
        _ed25519ph_verify_offline(public, hashlib.sha512(b"another message").digest(), signature)
    with pytest.raises(InvalidSignature):
        public.verify(signature, digest)  # domain-separated from pure Ed25519
    verified = kms.verify(
        KeyId=key_id, Message=digest, MessageType="DIGEST", Signature=signature, SigningAlgorithm="ED25519_PH_SHA_512"
    )
    assert verified["SignatureValid"] is True
    altered = signature[:-1] + bytes([signature[-1] ^ 1])
    expect_error(
        kms.verify,
        "KMSInvalidSignatureException",
        KeyId=key_id,
        Message=digest,
        MessageType="DIGEST",
        Signature=altered,
        SigningAlgorithm="ED25519_PH_SHA_512",
    )
    # AWS: ED25519_PH_SHA_512 requires MessageType DIGEST, of SHA-512's length.
    exc = expect_error(
        kms.sign, "ValidationException", KeyId=key_id, Message=b"raw", SigningAlgorithm="ED25519_PH_SHA_512"
    )
    assert "RAW" in message(exc)
    expect_error(
        kms.sign,
        "ValidationException",
        KeyId=key_id,
        Message=digest[:32],
        MessageType="DIGEST",
        SigningAlgorithm="ED25519_PH_SHA_512",
    )


@pytest.mark.parametrize("spec", ML_DSA_SPECS)
def test_ml_dsa_signs_raw_and_external_mu(kms: Any, keys: Keys, spec: str) -> None:
    key_id = keys.get(spec, "SIGN_VERIFY")
    public = public_key(kms, key_id)
    data = os.urandom(1000)
    signature = kms.sign(KeyId=key_id, Message=data, SigningAlgorithm="ML_DSA_SHAKE_256")["Signature"]
    public.verify(signature, data)
    with pytest.raises(InvalidSignature):
        public.verify(signature, data[:-1])
    hasher = mldsa.MLDSAMuHasher(public)
    hasher.update(data)
    mu = hasher.finalize()
    mu_signature = kms.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256")[
        "Signature"
    ]
    public.verify(mu_signature, data)  # a signature over mu is an ordinary ML-DSA signature of the message
    kms.verify(KeyId=key_id, Message=data, Signature=mu_signature, SigningAlgorithm="ML_DSA_SHAKE_256")
    expect_error(
        kms.sign,
        "ValidationException",
        KeyId=key_id,
        Message=mu[:32],
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )
    expect_error(
        kms.sign,
        "ValidationException",
        KeyId=key_id,
        Message=hashlib.sha256(data).digest(),
        MessageType="DIGEST",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )


@pytest.mark.parametrize(("algorithm", "size"), [("RSASSA_PSS_SHA_256", 31), ("RSASSA_PKCS1_V1_5_SHA_384", 32)])
def test_digest_of_the_wrong_length_is_refused(kms: Any, keys: Keys, algorithm: str, size: int) -> None:
    exc = expect_error(
        kms.sign,
        "ValidationException",
        KeyId=keys.get("RSA_2048", "SIGN_VERIFY"),
        Message=b"d" * size,
        MessageType="DIGEST",
        SigningAlgorithm=algorithm,
    )
    assert message(exc) == f"Digest is invalid length for algorithm {algorithm}."


def test_external_mu_needs_an_ml_dsa_key(kms: Any, keys: Keys) -> None:
    expect_error(
        kms.sign,
        "ValidationException",
        KeyId=keys.get("ECC_NIST_P256", "SIGN_VERIFY"),
        Message=b"m" * 64,
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ECDSA_SHA_256",
    )


def test_signing_algorithm_must_fit_the_key(kms: Any, keys: Keys) -> None:
    exc = expect_error(
        kms.sign,
        "InvalidKeyUsageException",
        KeyId=keys.get("ECC_NIST_P256", "SIGN_VERIFY"),
        Message=b"m",
        SigningAlgorithm="ECDSA_SHA_384",
    )
    assert message(exc) == "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256."


def test_sign_with_a_key_of_another_usage_is_invalid_key_usage(kms: Any, keys: Keys) -> None:
    key_id = keys.get("RSA_2048", "ENCRYPT_DECRYPT")
    exc = expect_error(
        kms.sign, "InvalidKeyUsageException", KeyId=key_id, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )
    assert "ENCRYPT_DECRYPT which is not valid for Sign" in message(exc)
    expect_error(
        kms.sign, "InvalidKeyUsageException", KeyId=new_key(kms), Message=b"m", SigningAlgorithm="ECDSA_SHA_256"
    )
    expect_error(
        kms.encrypt,
        "InvalidKeyUsageException",
        KeyId=keys.get("RSA_2048", "SIGN_VERIFY"),
        Plaintext=b"p",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_sign_on_a_disabled_key_is_disabled_and_dry_run_answers_400(kms: Any) -> None:
    key_id = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    expect_error(
        kms.sign,
        "DryRunOperationException",
        KeyId=key_id,
        Message=b"m",
        SigningAlgorithm="ECDSA_SHA_256",
        DryRun=True,
    )
    kms.disable_key(KeyId=key_id)
    expect_error(kms.sign, "DisabledException", KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    expect_error(kms.get_public_key, "DisabledException", KeyId=key_id)


def test_message_size_limit_is_4096_bytes(server: ServerProcess, keys: Keys) -> None:
    raw = raw_client(server)
    key_id = keys.get("ECC_NIST_P256", "SIGN_VERIFY")
    raw.sign(KeyId=key_id, Message=b"m" * 4096, SigningAlgorithm="ECDSA_SHA_256")
    expect_error(raw.sign, "ValidationException", KeyId=key_id, Message=b"m" * 4097, SigningAlgorithm="ECDSA_SHA_256")


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command-line tool is not installed")
    return path


@pytest.mark.parametrize(
    ("spec", "algorithm", "options"),
    [
        ("RSA_2048", "RSASSA_PSS_SHA_256", ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32"]),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", []),
        ("ECC_NIST_P256", "ECDSA_SHA_256", []),
    ],
)
def test_openssl_verifies_signatures(
    kms: Any, keys: Keys, tmp_path: Path, openssl: str, spec: str, algorithm: str, options: list[str]
) -> None:
    key_id = keys.get(spec, "SIGN_VERIFY")
    (tmp_path / "pub.der").write_bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
    data = b"signed by openkms, checked by openssl"
    (tmp_path / "digest").write_bytes(hashlib.sha256(data).digest())
    (tmp_path / "sig").write_bytes(kms.sign(KeyId=key_id, Message=data, SigningAlgorithm=algorithm)["Signature"])
    command = [
        openssl, "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der"),
        "-in", str(tmp_path / "digest"), "-sigfile", str(tmp_path / "sig"), "-pkeyopt", "digest:sha256", *options,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verified Successfully" in result.stdout, result
    (tmp_path / "digest").write_bytes(hashlib.sha256(data + b"!").digest())
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0


def test_openssl_verifies_ed25519(kms: Any, keys: Keys, tmp_path: Path, openssl: str) -> None:
    key_id = keys.get("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    (tmp_path / "pub.der").write_bytes(kms.get_public_key(KeyId=key_id)["PublicKey"])
    data = b"ed25519 through openkms"
    (tmp_path / "msg").write_bytes(data)
    (tmp_path / "sig").write_bytes(
        kms.sign(KeyId=key_id, Message=data, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    )
    command = [
        openssl, "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", str(tmp_path / "pub.der"),
        "-rawin", "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verified Successfully" in result.stdout, result


# -- RSA encryption -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "algorithm", "limit"),
    [
        ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
        ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
        ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
        ("RSA_4096", "RSAES_OAEP_SHA_1", 470),
    ],
)
def test_rsa_encryption_round_trips_and_is_plain_oaep(
    kms: Any, keys: Keys, spec: str, algorithm: str, limit: int
) -> None:
    key_id = keys.get(spec, "ENCRYPT_DECRYPT")
    public = public_key(kms, key_id)
    hash_type = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()  # noqa: S303 (AWS offers OAEP-SHA1)
    oaep = padding.OAEP(padding.MGF1(hash_type), hash_type, None)
    data = os.urandom(limit)
    answer = kms.encrypt(KeyId=key_id, Plaintext=data, EncryptionAlgorithm=algorithm)
    assert answer["EncryptionAlgorithm"] == algorithm and len(answer["CiphertextBlob"]) == public.key_size // 8
    opened = kms.decrypt(KeyId=key_id, CiphertextBlob=answer["CiphertextBlob"], EncryptionAlgorithm=algorithm)
    assert opened["Plaintext"] == data and opened["EncryptionAlgorithm"] == algorithm
    assert "KeyMaterialId" not in opened
    offline = public.encrypt(b"made offline", oaep)  # the public key is enough to encrypt for the service
    assert (
        kms.decrypt(KeyId=key_id, CiphertextBlob=offline, EncryptionAlgorithm=algorithm)["Plaintext"] == b"made offline"
    )
    exc = expect_error(
        kms.encrypt, "ValidationException", KeyId=key_id, Plaintext=data + b"x", EncryptionAlgorithm=algorithm
    )
    assert message(exc) == f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {limit} bytes."


def test_rsa_encryption_refuses_context_and_the_default_algorithm(kms: Any, keys: Keys) -> None:
    key_id = keys.get("RSA_2048", "ENCRYPT_DECRYPT")
    exc = expect_error(kms.encrypt, "InvalidKeyUsageException", KeyId=key_id, Plaintext=b"p")
    assert message(exc) == "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
    expect_error(
        kms.encrypt,
        "ValidationException",
        KeyId=key_id,
        Plaintext=b"p",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        EncryptionContext={"a": "b"},
    )
    expect_error(kms.generate_data_key, "InvalidKeyUsageException", KeyId=key_id, KeySpec="AES_256")
    symmetric = new_key(kms)
    exc = expect_error(
        kms.encrypt, "InvalidKeyUsageException", KeyId=symmetric, Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_1"
    )
    assert message(exc) == "Algorithm RSAES_OAEP_SHA_1 is incompatible with key spec SYMMETRIC_DEFAULT."


def test_malformed_rsa_ciphertexts_all_fail_the_same_way(kms: Any, keys: Keys) -> None:
    """docs/tests.md C-4 over HTTP: one error code and one message, whatever is wrong with the ciphertext."""
    key_id = keys.get("RSA_2048", "ENCRYPT_DECRYPT")
    good = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    flipped = bytearray(good)
    flipped[10] ^= 0x40
    public = public_key(kms, key_id)
    modulus = public.public_numbers().n
    candidates = [
        bytes(flipped),
        good[:-1],
        good + b"\x00",
        b"\x00" * 256,
        (modulus - 1).to_bytes(256, "big"),
        modulus.to_bytes(256, "big"),
        b"\xff" * 256,
        os.urandom(256),
        os.urandom(17),
    ]
    answers = set()
    for blob in candidates:
        exc = fails(kms.decrypt, KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
        answers.add((code(exc), message(exc)))
    wrong_hash = fails(kms.decrypt, KeyId=key_id, CiphertextBlob=good, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    answers.add((code(wrong_hash), message(wrong_hash)))
    assert len(answers) == 1 and next(iter(answers))[0] == "InvalidCiphertextException", answers


def test_rsa_decrypt_needs_a_key_id(kms: Any, keys: Keys) -> None:
    key_id = keys.get("RSA_2048", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    expect_error(kms.decrypt, "ValidationException", CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    expect_error(kms.decrypt, "InvalidCiphertextException", KeyId=key_id, CiphertextBlob=blob)


def test_re_encrypt_moves_between_symmetric_and_rsa(kms: Any, keys: Keys) -> None:
    rsa_key = keys.get("RSA_3072", "ENCRYPT_DECRYPT")
    symmetric = new_key(kms)
    blob = kms.encrypt(KeyId=symmetric, Plaintext=b"move me", EncryptionContext={"t": "1"})["CiphertextBlob"]
    to_rsa = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"t": "1"},
        DestinationKeyId=rsa_key,
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert to_rsa["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert "DestinationKeyMaterialId" not in to_rsa and "SourceKeyMaterialId" in to_rsa
    back = kms.re_encrypt(
        CiphertextBlob=to_rsa["CiphertextBlob"],
        SourceKeyId=rsa_key,
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256",
        DestinationKeyId=symmetric,
    )
    assert back["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"move me"


# -- HMAC --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", ["224", "256", "384", "512"])
def test_generate_and_verify_mac(kms: Any, keys: Keys, bits: str) -> None:
    key_id = keys.get(f"HMAC_{bits}", "GENERATE_VERIFY_MAC")
    algorithm = f"HMAC_SHA_{bits}"
    mac = kms.generate_mac(KeyId=key_id, Message=b"data", MacAlgorithm=algorithm)
    assert mac["MacAlgorithm"] == algorithm and len(mac["Mac"]) == int(bits) // 8
    assert kms.generate_mac(KeyId=key_id, Message=b"data", MacAlgorithm=algorithm)["Mac"] == mac["Mac"]
    assert kms.generate_mac(KeyId=key_id, Message=b"datA", MacAlgorithm=algorithm)["Mac"] != mac["Mac"]
    verified = kms.verify_mac(KeyId=key_id, Message=b"data", MacAlgorithm=algorithm, Mac=mac["Mac"])
    assert verified["MacValid"] is True and verified["KeyId"].endswith(key_id)
    altered = bytearray(mac["Mac"])
    altered[0] ^= 1
    for bad_message, bad_mac in ((b"datA", mac["Mac"]), (b"data", bytes(altered)), (b"data", mac["Mac"][:-1])):
        expect_error(
            kms.verify_mac,
            "KMSInvalidMacException",
            KeyId=key_id,
            Message=bad_message,
            MacAlgorithm=algorithm,
            Mac=bad_mac,
        )


def test_hmac_keys_differ_and_algorithms_must_fit(kms: Any, keys: Keys) -> None:
    first = keys.get("HMAC_256", "GENERATE_VERIFY_MAC")
    second = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    one = kms.generate_mac(KeyId=first, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert kms.generate_mac(KeyId=second, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"] != one
    expect_error(kms.generate_mac, "InvalidKeyUsageException", KeyId=first, Message=b"m", MacAlgorithm="HMAC_SHA_512")
    expect_error(
        kms.generate_mac, "InvalidKeyUsageException", KeyId=new_key(kms), Message=b"m", MacAlgorithm="HMAC_SHA_256"
    )
    expect_error(kms.encrypt, "InvalidKeyUsageException", KeyId=first, Plaintext=b"p")
    expect_error(
        kms.generate_mac,
        "DryRunOperationException",
        KeyId=first,
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
        DryRun=True,
    )


# -- Data key pairs ----------------------------------------------------------------------------------------

PAIR_SPECS = [
    "RSA_2048",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_768",
    "ML_KEM_1024",
]


@pytest.mark.parametrize("pair_spec", PAIR_SPECS)
def test_generate_data_key_pair(kms: Any, pair_spec: str) -> None:
    wrapping = new_key(kms)
    answer = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec=pair_spec, EncryptionContext={"p": pair_spec})
    private = serialization.load_der_private_key(answer["PrivateKeyPlaintext"], None)
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert answer["PublicKey"] == public_der and answer["KeyPairSpec"] == pair_spec
    opened = kms.decrypt(CiphertextBlob=answer["PrivateKeyCiphertextBlob"], EncryptionContext={"p": pair_spec})
    assert opened["Plaintext"] == answer["PrivateKeyPlaintext"]
    without = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in without
    hidden = serialization.load_der_private_key(
        kms.decrypt(CiphertextBlob=without["PrivateKeyCiphertextBlob"])["Plaintext"], None
    )
    assert (
        hidden.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == without["PublicKey"]
    )


def test_generate_data_key_pair_needs_a_symmetric_key_and_a_served_spec(kms: Any, keys: Keys) -> None:
    expect_error(
        kms.generate_data_key_pair,
        "InvalidKeyUsageException",
        KeyId=keys.get("RSA_2048", "ENCRYPT_DECRYPT"),
        KeyPairSpec="ECC_NIST_P256",
    )
    expect_error(kms.generate_data_key_pair, "UnsupportedOperationException", KeyId=new_key(kms), KeyPairSpec="SM2")
    expect_error(
        kms.generate_data_key_pair_without_plaintext,
        "DryRunOperationException",
        KeyId=new_key(kms),
        KeyPairSpec="ECC_NIST_P256",
        DryRun=True,
    )


# -- Key agreement and ML-KEM ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "curve"),
    [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()), ("ECC_NIST_P521", ec.SECP521R1())],
)
def test_derive_shared_secret_matches_offline_ecdh(kms: Any, keys: Keys, spec: str, curve: ec.EllipticCurve) -> None:
    key_id = keys.get(spec, "KEY_AGREEMENT")
    mine = ec.generate_private_key(curve)
    mine_der = mine.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    answer = kms.derive_shared_secret(KeyId=key_id, KeyAgreementAlgorithm="ECDH", PublicKey=mine_der)
    assert answer["SharedSecret"] == mine.exchange(ec.ECDH(), public_key(kms, key_id))
    assert answer["KeyAgreementAlgorithm"] == "ECDH" and answer["KeyOrigin"] == "AWS_KMS"


def test_derive_shared_secret_refuses_foreign_curves_and_garbage(kms: Any, keys: Keys) -> None:
    key_id = keys.get("ECC_NIST_P256", "KEY_AGREEMENT")
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    other_der = other_curve.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (other_der, b"\x30\x03\x02\x01\x01", os.urandom(91)):
        expect_error(
            kms.derive_shared_secret, "ValidationException", KeyId=key_id, KeyAgreementAlgorithm="ECDH", PublicKey=bad
        )
    expect_error(
        kms.derive_shared_secret,
        "InvalidKeyUsageException",
        KeyId=keys.get("ECC_NIST_P256", "SIGN_VERIFY"),
        KeyAgreementAlgorithm="ECDH",
        PublicKey=other_der,
    )


@pytest.mark.parametrize("spec", ["ML_KEM_768", "ML_KEM_1024"])
def test_encapsulate_and_decapsulate(kms: Any, keys: Keys, spec: str) -> None:
    key_id = keys.get(spec, "ENCAPSULATE_DECAPSULATE")
    sealed = kms.encapsulate(KeyId=key_id, EncapsulationAlgorithm="ML_KEM")
    assert len(sealed["SharedSecret"]) == 32 and sealed["EncapsulationAlgorithm"] == "ML_KEM"
    opened = kms.decapsulate(
        KeyId=key_id, SharedSecretCiphertextBlob=sealed["SharedSecretCiphertextBlob"], EncapsulationAlgorithm="ML_KEM"
    )
    assert opened["SharedSecret"] == sealed["SharedSecret"]
    secret, ciphertext = public_key(kms, key_id).encapsulate()  # offline, with the public key only
    assert (
        kms.decapsulate(KeyId=key_id, SharedSecretCiphertextBlob=ciphertext, EncapsulationAlgorithm="ML_KEM")[
            "SharedSecret"
        ]
        == secret
    )
    expect_error(
        kms.decapsulate,
        "InvalidCiphertextException",
        KeyId=key_id,
        SharedSecretCiphertextBlob=ciphertext[:-1],
        EncapsulationAlgorithm="ML_KEM",
    )


@pytest.fixture(autouse=True, scope="module")
def _forget_keys() -> Iterator[None]:
    yield
    _KEYS.clear()
