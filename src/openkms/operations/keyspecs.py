"""Which KeySpec goes with which KeyUsage, and which algorithms each pair offers (AWS's tables).

One table drives CreateKey's checks, DescribeKey's and GetPublicKey's algorithm lists and every
operation's "does this algorithm fit this key" check, so the three cannot disagree. Specs that the
crypto layer cannot serve in this build (SM2 always; ML-KEM-512 with pyca/cryptography on OpenSSL) are
listed so that CreateKey can answer UnsupportedOperationException instead of a validation error.
The checks an operation makes of the key it resolved (its usage, the algorithm asked for) are here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openkms.crypto import keypairs
from openkms.errors import InvalidKeyUsageException
from openkms.storage.records import KeyRecord

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"

ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
SIGN_VERIFY = "SIGN_VERIFY"
GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
KEY_AGREEMENT = "KEY_AGREEMENT"
ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"

_RSA_ENCRYPTION = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_RSA_SIGNING = (  # AWS lists them in this order
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
)


@dataclass(frozen=True)
class SpecInfo:
    """What one KeySpec allows: algorithms per usage (an absent usage is not allowed for the spec)."""

    spec: str
    usages: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def asymmetric(self) -> bool:
        return self.spec != SYMMETRIC_DEFAULT and not self.spec.startswith("HMAC_")


def _spec(name: str, **usages: tuple[str, ...]) -> SpecInfo:
    return SpecInfo(name, dict(usages))


SPECS: dict[str, SpecInfo] = {
    info.spec: info
    for info in (
        _spec(SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT=(SYMMETRIC_DEFAULT,)),
        *(
            _spec(f"RSA_{bits}", ENCRYPT_DECRYPT=_RSA_ENCRYPTION, SIGN_VERIFY=_RSA_SIGNING)
            for bits in (2048, 3072, 4096)
        ),
        _spec("ECC_NIST_P256", SIGN_VERIFY=("ECDSA_SHA_256",), KEY_AGREEMENT=("ECDH",)),
        _spec("ECC_NIST_P384", SIGN_VERIFY=("ECDSA_SHA_384",), KEY_AGREEMENT=("ECDH",)),
        _spec("ECC_NIST_P521", SIGN_VERIFY=("ECDSA_SHA_512",), KEY_AGREEMENT=("ECDH",)),
        _spec("ECC_SECG_P256K1", SIGN_VERIFY=("ECDSA_SHA_256",)),
        _spec("ECC_NIST_EDWARDS25519", SIGN_VERIFY=("ED25519_SHA_512", "ED25519_PH_SHA_512")),
        *(_spec(f"ML_DSA_{level}", SIGN_VERIFY=("ML_DSA_SHAKE_256",)) for level in (44, 65, 87)),
        *(_spec(f"ML_KEM_{level}", ENCAPSULATE_DECAPSULATE=("ML_KEM",)) for level in (512, 768, 1024)),
        *(_spec(f"HMAC_{bits}", GENERATE_VERIFY_MAC=(f"HMAC_SHA_{bits}",)) for bits in (224, 256, 384, 512)),
        _spec("SM2", ENCRYPT_DECRYPT=("SM2PKE",), SIGN_VERIFY=("SM2DSA",), KEY_AGREEMENT=("ECDH",)),
    )
}

HMAC_KEY_BYTES = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}

# The algorithm-list field of DescribeKey / GetPublicKey for each usage.
ALGORITHM_FIELDS = {
    ENCRYPT_DECRYPT: "EncryptionAlgorithms",
    SIGN_VERIFY: "SigningAlgorithms",
    GENERATE_VERIFY_MAC: "MacAlgorithms",
    KEY_AGREEMENT: "KeyAgreementAlgorithms",
    ENCAPSULATE_DECAPSULATE: "EncapsulationAlgorithms",
}


def info(spec: str) -> SpecInfo:
    return SPECS[spec]


def served(spec: str) -> bool:
    """True if this build can create and use keys of ``spec`` (symmetric and HMAC always)."""
    if spec == SYMMETRIC_DEFAULT or spec in HMAC_KEY_BYTES:
        return True
    return spec in keypairs.SUPPORTED_SPECS


def algorithms(spec: str, usage: str) -> tuple[str, ...]:
    return SPECS[spec].usages.get(usage, ())


def algorithm_fields(spec: str, usage: str) -> dict[str, list[str]]:
    """The algorithm lists DescribeKey shows: only the one that belongs to the key's usage."""
    field_name = ALGORITHM_FIELDS.get(usage)
    if field_name is None:
        return {}
    return {field_name: list(algorithms(spec, usage))}


def require_usage(key: KeyRecord, usage: str, operation: str) -> None:
    if key.key_usage != usage:
        raise InvalidKeyUsageException(f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}.")


def require_algorithm(key: KeyRecord, usage: str, algorithm: str) -> str:
    """``algorithm`` if the key's spec offers it for ``usage`` (AWS's table), else InvalidKeyUsageException."""
    if algorithm not in algorithms(key.key_spec, usage):
        raise InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}.")
    return algorithm


def require_encryption_algorithm(key: KeyRecord, algorithm: str | None) -> str:
    """Encrypt, Decrypt and ReEncrypt default to SYMMETRIC_DEFAULT, which an RSA key refuses."""
    return require_algorithm(key, ENCRYPT_DECRYPT, algorithm or SYMMETRIC_DEFAULT)
