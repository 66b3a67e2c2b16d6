"""Ciphertexts whose first bytes happen to read as a symmetric blob header (a random RSA ciphertext does about
once in 256): with an RSA algorithm and no KeyId, ValidationException; with a KeyId and no algorithm,
InvalidCiphertextException when the header names no key we have, as for any other malformed ciphertext."""

from __future__ import annotations

import os
import uuid

from openkms.crypto.blob import encode_header
from tests.operations.conftest import KMS


def _lookalike() -> bytes:
    return encode_header(str(uuid.uuid4()), os.urandom(16), os.urandom(32), os.urandom(12)) + os.urandom(190)


def test_a_header_naming_no_existing_key_is_not_a_symmetric_blob(kms: KMS) -> None:
    lookalike = _lookalike()
    kms.fails("Decrypt", "ValidationException", CiphertextBlob=lookalike, EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_a_symmetric_blob_of_an_existing_key_still_refuses_the_rsa_algorithm(kms: KMS) -> None:
    key_id = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(key_id, b"symmetric")
    kms.fails("Decrypt", "InvalidKeyUsageException", CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_with_a_key_id_a_header_naming_no_existing_key_is_invalid_ciphertext(kms: KMS) -> None:
    rsa = kms.ok("CreateKey", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    symmetric = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    for key_id in (rsa, symmetric):
        kms.fails("Decrypt", "InvalidCiphertextException", KeyId=key_id, CiphertextBlob=_lookalike())


def test_with_a_key_id_a_blob_of_another_existing_key_is_incorrect_key(kms: KMS) -> None:
    first = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    second = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    kms.fails("Decrypt", "IncorrectKeyException", KeyId=second, CiphertextBlob=kms.encrypt(first, b"symmetric"))
