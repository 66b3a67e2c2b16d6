"""Decrypt with an RSA algorithm and no KeyId: ValidationException, even when the ciphertext's first bytes
happen to read as a symmetric blob header (a random RSA ciphertext does about once in 256)."""

from __future__ import annotations

import os
import uuid

from openkms.crypto.blob import encode_header
from tests.operations.conftest import Kms


def test_a_header_naming_no_existing_key_is_not_a_symmetric_blob(kms: Kms) -> None:
    lookalike = encode_header(str(uuid.uuid4()), os.urandom(16), os.urandom(32), os.urandom(12)) + os.urandom(190)
    kms.fails("Decrypt", "ValidationException", CiphertextBlob=lookalike, EncryptionAlgorithm="RSAES_OAEP_SHA_256")


def test_a_symmetric_blob_of_an_existing_key_still_refuses_the_rsa_algorithm(kms: Kms) -> None:
    key_id = kms.ok("CreateKey")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(key_id, b"symmetric")
    kms.fails("Decrypt", "InvalidKeyUsageException", CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
