"""docs/tests.md C-1 (asymmetric part): Wycheproof vectors routed through openkms.crypto's own wrappers.

Keys go through ``keypairs`` (public keys via :func:`load_public_key` with the KMS spec of the file; RSA private
keys via :func:`import_private_key`, the path for foreign material, then :func:`load_private_key`), signatures
through ``signatures.verify`` with the KMS algorithm name, OAEP through ``rsa_oaep.decrypt`` and ECDH through
``agreement.ecdh``. Recorded decisions (each is asserted, none is a skip):

- ECDSA: every vector is also checked through ``DIGEST`` (the SHA-2 of the message): both paths must agree.
- RSA-PSS: AWS fixes the salt length to the digest length. ``rsa_pss_4096_sha512_mgf1_32`` (salt 32 with
  SHA-512) is therefore not our algorithm: its valid vectors must be *rejected by design*.
- RSA-OAEP: AWS uses MGF1 with the label hash and no label. Vectors whose MGF1 hash differs from the label hash
  (the ``*_sha256_mgf1sha1`` files and those groups of ``rsa_oaep_misc``), and vectors with a non-empty label,
  must be rejected by design. ``rsa_oaep_misc`` groups with a key size that is not a KMS spec (1024, 1536,
  2688, 3104, 4032, 8192) or a label hash KMS lacks (SHA-224/384/512) have no KMS name to route through and are
  counted as not applicable.
- ML-DSA: vectors without ``ctx`` are verified as ``RAW`` and, through :func:`compute_external_mu`, as
  ``EXTERNAL_MU``; both must agree. KMS signs with the empty context only, so vectors with a ``ctx`` are
  checked through ``EXTERNAL_MU`` with mu computed by pyca for that context (a context over 255 bytes cannot
  make a mu: rejected), and a valid one with a non-empty context must be rejected as ``RAW``.
- ECDH: ``ecdh_secp256k1`` is rejected by design (AWS offers key agreement on the NIST curves only): the key
  loads as ECC_SECG_P256K1 and ``ecdh`` refuses it with ``ValueError``.
- Not routed: ``rsa_pkcs1_*`` (PKCS #1 v1.5 *decryption*, which KMS and openkms do not offer; C-4 requires it
  refused) and ``ecdh_*_ecpoint`` files (absent here; KMS takes SPKI public keys only).
- ``acceptable`` results: the decision per flag lives in :data:`ACCEPTABLE`. A vector whose flags carry no
  decision, or conflicting ones, fails until a decision is recorded.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, mldsa

from openkms.crypto import agreement, keypairs, rsa_oaep, signatures
from openkms.crypto.errors import DecryptionError, InvalidKeyError, InvalidSignatureError
from tests.crypto.wycheproof import WYCHEPROOF, Summary, Tally, accepts, expect, load

PKCS1_SIGNATURE_FILES = sorted(
    f"rsa_signature_{bits}_sha{h}_test.json" for bits in (2048, 3072, 4096) for h in (256, 384, 512)
)
_REJECT_EXPLICIT_CURVE = {
    # pyca accepts named curves only; explicit parameters are refused whatever they say.
    flag: False
    for flag in (
        "UnnamedCurve",
        "UnusedParam",
        "WrongOrder",
        "ModifiedGenerator",
        "ModifiedCofactor",
        "NoCofactor",
        "ModifiedCurveParameter",
    )
}
_ECDH_DECISIONS = {
    # Strict DER only (pyca's parser): BER length forms and the like are refused.
    "InvalidAsn": False,
    # RFC 5480 allows compressed points in SPKI; pyca decompresses and checks the point is on the curve.
    "CompressedPublic": True,
    "CompressedPoint": True,
    **_REJECT_EXPLICIT_CURVE,
}
# file -> flag -> True if our wrapper must accept an `acceptable` vector carrying that flag, False if reject.
ACCEPTABLE: dict[str, dict[str, bool]] = {
    "ecdh_secp256r1_test.json": _ECDH_DECISIONS,
    "ecdh_secp384r1_test.json": _ECDH_DECISIONS,
    "ecdh_secp521r1_test.json": _ECDH_DECISIONS,
    # ecdh_secp256k1: every vector is rejected by design before its result is looked at.
    # A PKCS #1 v1.5 DigestInfo without the NULL parameter: AWS and OpenSSL emit the NULL; OpenSSL's verify
    # refuses the variant, and so do we.
    **{name: {"MissingNull": False} for name in PKCS1_SIGNATURE_FILES},
    # rsa_oaep_misc: its `acceptable` vectors all use a label, which KMS never does.
    "rsa_oaep_misc_test.json": {"EncryptionWithLabel": False},
}

ECDSA_FILES = {
    "ecdsa_secp256r1_sha256_test.json": ("ECC_NIST_P256", "ECDSA_SHA_256"),
    "ecdsa_secp384r1_sha384_test.json": ("ECC_NIST_P384", "ECDSA_SHA_384"),
    "ecdsa_secp521r1_sha512_test.json": ("ECC_NIST_P521", "ECDSA_SHA_512"),
    "ecdsa_secp256k1_sha256_test.json": ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
}
ECDH_FILES = {
    "ecdh_secp256r1_test.json": ("ECC_NIST_P256", ec.SECP256R1()),
    "ecdh_secp384r1_test.json": ("ECC_NIST_P384", ec.SECP384R1()),
    "ecdh_secp521r1_test.json": ("ECC_NIST_P521", ec.SECP521R1()),
}
MLDSA_FILES = {
    "mldsa_44_verify_test.json": "ML_DSA_44",
    "mldsa_65_verify_test.json": "ML_DSA_65",
    "mldsa_87_verify_test.json": "ML_DSA_87",
}
PSS_FILES = sorted(p.name for p in WYCHEPROOF.glob("rsa_pss_*_test.json")) or ["rsa_pss_2048_sha256_mgf1_32_test.json"]
OAEP_FILES = sorted(p.name for p in WYCHEPROOF.glob("rsa_oaep_*_test.json") if "misc" not in p.name) or [
    "rsa_oaep_2048_sha256_mgf1sha256_test.json"
]
_SHA = {"SHA-1": "SHA_1", "SHA-256": "SHA_256", "SHA-384": "SHA_384", "SHA-512": "SHA_512"}
_DIGEST_SIZES = {"SHA-1": 20, "SHA-224": 28, "SHA-256": 32, "SHA-384": 48, "SHA-512": 64}


SUMMARY = Summary("Wycheproof C-1 summary (asymmetric)", width=44, not_applicable=True)


@pytest.fixture(scope="module", autouse=True)
def c1_summary() -> Iterator[None]:
    """Print the per-file C-1 figures after the module (visible with -s or -rP; per xdist worker)."""
    yield
    SUMMARY.report()


def _expect(tally: Tally, name: str, test: dict[str, Any], accepted: bool) -> None:
    expect(tally, ACCEPTABLE.get(name, {}), test, accepted)


def _by_design(tally: Tally, test: dict[str, Any], accepted: bool, why: str) -> None:
    """A vector outside what KMS does: whatever its result, our wrapper must reject it."""
    if accepted:
        tally.failures.append(f"tcId {test['tcId']}: {why}, but the wrapper accepted it")
    tally.rejected_by_design += 1


def _public(spec: str, der_hex: str) -> keypairs.PublicKey | None:
    try:
        return keypairs.load_public_key(spec, bytes.fromhex(der_hex))
    except InvalidKeyError:
        return None


def _verifies(public: keypairs.PublicKey | None, algorithm: str, msg: bytes, message_type: str, sig: bytes) -> bool:
    if public is None:
        return False
    return accepts(InvalidSignatureError, signatures.verify, public, algorithm, msg, message_type, sig)


def _rsa_verifies(scheme: str, group: dict[str, Any], test: dict[str, Any]) -> bool:
    """An RSA signature vector through ``RSASSA_<scheme>_<hash>`` with the group's key size and hash."""
    public = _public(f"RSA_{group['keySize']}", group["publicKeyDer"])
    algorithm = f"RSASSA_{scheme}_{_SHA[group['sha']]}"
    return _verifies(public, algorithm, bytes.fromhex(test["msg"]), "RAW", bytes.fromhex(test["sig"]))


@functools.lru_cache(maxsize=64)
def _imported_rsa(spec: str, pkcs8_hex: str) -> keypairs.PrivateKey:
    """A Wycheproof RSA key is foreign material: full validation on import, then the stored-key load."""
    return keypairs.load_private_key(spec, keypairs.import_private_key(spec, bytes.fromhex(pkcs8_hex)))


# --- signatures -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ECDSA_FILES))
def test_ecdsa(name: str) -> None:
    spec, algorithm = ECDSA_FILES[name]
    hash_name = algorithm.removeprefix("ECDSA_SHA_")
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        public = _public(spec, group["publicKeyDer"])
        msg, sig = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
        accepted = _verifies(public, algorithm, msg, "RAW", sig)
        digest = hashlib.new(f"sha{hash_name}", msg).digest()
        if _verifies(public, algorithm, digest, "DIGEST", sig) != accepted:
            tally.failures.append(f"tcId {test['tcId']}: RAW and DIGEST verification disagree")
        _expect(tally, name, test, accepted)
    SUMMARY.finish(name, tally)


def test_ed25519() -> None:
    name = "ed25519_test.json"
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        public = _public(keypairs.ED25519_SPEC, group["publicKeyDer"])
        accepted = _verifies(public, "ED25519_SHA_512", bytes.fromhex(test["msg"]), "RAW", bytes.fromhex(test["sig"]))
        _expect(tally, name, test, accepted)
    SUMMARY.finish(name, tally)


@pytest.mark.parametrize("name", PKCS1_SIGNATURE_FILES)
def test_rsa_pkcs1_signature(name: str) -> None:
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        _expect(tally, name, test, _rsa_verifies("PKCS1_V1_5", group, test))
    SUMMARY.finish(name, tally)


@pytest.mark.parametrize("name", PSS_FILES)
def test_rsa_pss_signature(name: str) -> None:
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        accepted = _rsa_verifies("PSS", group, test)
        if group["mgfSha"] == group["sha"] and group["sLen"] == _DIGEST_SIZES[group["sha"]]:
            _expect(tally, name, test, accepted)
        else:
            _by_design(tally, test, accepted, f"salt length {group['sLen']} is not the digest length")
    SUMMARY.finish(name, tally)


@pytest.mark.skipif("ML_DSA_44" not in keypairs.SUPPORTED_SPECS, reason="this pyca/OpenSSL build has no ML-DSA")
@pytest.mark.parametrize("name", sorted(MLDSA_FILES))
def test_mldsa(name: str) -> None:
    spec = MLDSA_FILES[name]
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        public = _public(spec, group["publicKeyDer"])
        msg, sig = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
        raw = _verifies(public, "ML_DSA_SHAKE_256", msg, "RAW", sig)
        if "ctx" not in test:
            mu = signatures.compute_external_mu(public, msg) if public is not None else b""
            if _verifies(public, "ML_DSA_SHAKE_256", mu, "EXTERNAL_MU", sig) != raw:
                tally.failures.append(f"tcId {test['tcId']}: RAW and EXTERNAL_MU verification disagree")
            _expect(tally, name, test, raw)
            continue
        ctx = bytes.fromhex(test["ctx"])
        via_mu = False
        if public is not None and len(ctx) <= 255:
            assert isinstance(public, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey)
            hasher = mldsa.MLDSAMuHasher(public, context=ctx)
            hasher.update(msg)
            via_mu = _verifies(public, "ML_DSA_SHAKE_256", hasher.finalize(), "EXTERNAL_MU", sig)
        _expect(tally, name, test, via_mu)
        if ctx and raw:
            tally.failures.append(f"tcId {test['tcId']}: a signature with a non-empty context verified as RAW")
    SUMMARY.finish(name, tally)


# --- RSA-OAEP ---------------------------------------------------------------------------------------------------


def _oaep_vector(tally: Tally, name: str, group: dict[str, Any], test: dict[str, Any]) -> None:
    tally.run += 1
    spec, label_hash = f"RSA_{group['keySize']}", _SHA.get(group["sha"])
    algorithm = f"RSAES_OAEP_{label_hash}"
    if spec not in keypairs.SUPPORTED_SPECS or algorithm not in rsa_oaep.ENCRYPTION_ALGORITHMS:
        tally.not_applicable += 1
        return
    private = _imported_rsa(spec, group["privateKeyPkcs8"])
    try:
        plaintext = rsa_oaep.decrypt(private, algorithm, bytes.fromhex(test["ct"]))
    except DecryptionError:
        accepted = False
    else:
        accepted = plaintext == bytes.fromhex(test["msg"])
    if group["mgfSha"] != group["sha"]:
        _by_design(tally, test, accepted, f"MGF1-{group['mgfSha']} differs from the label hash")
    elif test["label"] and test["result"] != "acceptable":
        _by_design(tally, test, accepted, "KMS uses no OAEP label")
    else:
        _expect(tally, name, test, accepted)


@pytest.mark.parametrize("name", OAEP_FILES)
def test_rsa_oaep(name: str) -> None:
    tally = Tally()
    for group, test in load(name):
        _oaep_vector(tally, name, group, test)
    SUMMARY.finish(name, tally)


def test_rsa_oaep_misc() -> None:
    name = "rsa_oaep_misc_test.json"
    tally = Tally()
    for group, test in load(name):
        _oaep_vector(tally, name, group, test)
    assert tally.run > tally.not_applicable > 0
    SUMMARY.finish(name, tally)


# --- ECDH -------------------------------------------------------------------------------------------------------


def _private_from_hex(spec: str, curve: ec.EllipticCurve, private_hex: str) -> keypairs.PrivateKey:
    key = ec.derive_private_key(int(private_hex, 16), curve)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return keypairs.load_private_key(spec, der)


@pytest.mark.parametrize("name", sorted(ECDH_FILES))
def test_ecdh(name: str) -> None:
    spec, curve = ECDH_FILES[name]
    tally = Tally()
    for _group, test in load(name):
        tally.run += 1
        private = _private_from_hex(spec, curve, test["private"])
        public = _public(spec, test["public"])
        try:
            shared = agreement.ecdh(private, public) if public is not None else None
        except InvalidKeyError:
            shared = None
        _expect(tally, name, test, shared == bytes.fromhex(test["shared"]))
    SUMMARY.finish(name, tally)


def test_ecdh_secp256k1_is_refused() -> None:
    name = "ecdh_secp256k1_test.json"
    tally = Tally()
    for _group, test in load(name):
        tally.run += 1
        private = _private_from_hex("ECC_SECG_P256K1", ec.SECP256K1(), test["private"])
        public = _public("ECC_SECG_P256K1", test["public"])
        if public is None:  # the peer key is refused already
            _by_design(tally, test, False, "")
            continue
        with pytest.raises(ValueError) as refused:
            agreement.ecdh(private, public)
        assert type(refused.value) is ValueError  # the curve is refused, not the peer key
        _by_design(tally, test, False, "")
    SUMMARY.finish(name, tally)
