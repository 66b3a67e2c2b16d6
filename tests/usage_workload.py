"""One key of each pricing family and a few calls on each, for the usage report's tests (CLI and operations).

``EXPECTED`` is what the workload does to each key, by family: the trail counts every call that names a
key, CreateKey and CreateAlias included.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.inprocess import InProcessKMS

EXPECTED = {
    "sym": {"symmetric": 5, "rsa_2048": 0, "asymmetric": 0, "generate_data_key_pair": 1},
    "rsa": {"symmetric": 0, "rsa_2048": 3, "asymmetric": 0, "generate_data_key_pair": 0},
    "ecc": {"symmetric": 0, "rsa_2048": 0, "asymmetric": 2, "generate_data_key_pair": 0},
    "idle": {"symmetric": 1, "rsa_2048": 0, "asymmetric": 0, "generate_data_key_pair": 0},
}
PLAINTEXT = base64.b64encode(b"p").decode()


def call(kms: InProcessKMS, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    status, body = kms.call(operation, params)
    assert status == 200, (operation, body)
    return body


def create_key(kms: InProcessKMS, **params: Any) -> str:
    return str(call(kms, "CreateKey", params)["KeyMetadata"]["KeyId"])


def run_workload(kms: InProcessKMS) -> dict[str, str]:
    """The calls of ``EXPECTED``; returns the key ids by label (``alias/usage-sym`` names ``sym``)."""
    keys = {
        "sym": create_key(kms),
        "rsa": create_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"),
        "ecc": create_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
        "idle": create_key(kms),
    }
    for _ in range(3):
        call(kms, "Encrypt", {"KeyId": keys["sym"], "Plaintext": PLAINTEXT})
    call(kms, "GenerateDataKeyPair", {"KeyId": keys["sym"], "KeyPairSpec": "ECC_NIST_P256"})
    for _ in range(2):
        call(kms, "Encrypt", {"KeyId": keys["rsa"], "Plaintext": PLAINTEXT, "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"})
    call(kms, "Sign", {"KeyId": keys["ecc"], "Message": PLAINTEXT, "SigningAlgorithm": "ECDSA_SHA_256"})
    call(kms, "CreateAlias", {"AliasName": "alias/usage-sym", "TargetKeyId": keys["sym"]})
    return keys
