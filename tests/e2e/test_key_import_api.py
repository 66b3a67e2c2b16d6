"""Importing key material (BYOK) over HTTP with boto3, on every storage engine: GetParametersForImport,
ImportKeyMaterial, DeleteImportedKeyMaterial, and the keys they make usable.

The material is wrapped the way AWS documents it ("Importing key material", step 3) with pyca only
(tests/byok.py), for every wrapping algorithm and wrapping key spec. What AWS answers is the reference: the API
reference pages of the three operations and the key-state table; docs/import.md lists the sources and the few
messages AWS does not document. Clock-driven expiry is tested in process (tests/operations), where the clock can
move; here the server's clock is the wall clock.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.byok import WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS, pkcs8, spki, wrap
from tests.e2e.kmsapi import assert_close, expect_error, key_arn, new_key, unique_alias, utcnow
from tests.e2e.principals import allow, make_user
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

DAY = datetime.timedelta(days=1)


def _external(kms: Any, **params: Any) -> str:
    return new_key(kms, "byok", Origin="EXTERNAL", **params)


def _parameters(kms: Any, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048") -> Any:
    return kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=spec)


def _import(
    kms: Any, key_id: str, material: bytes, algorithm: str = "RSAES_OAEP_SHA_256", spec: str = "RSA_2048", **params: Any
) -> Any:
    got = _parameters(kms, key_id, algorithm, spec)
    params.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=got["ImportToken"],
        EncryptedKeyMaterial=wrap(got["PublicKey"], algorithm, material),
        **params,
    )


def _meta(kms: Any, key_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    return meta


# -- CreateKey and GetParametersForImport ---------------------------------------------------------------------


def test_an_external_key_is_pending_import(kms: Any) -> None:
    meta = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
    assert (meta["Origin"], meta["KeyState"], meta["Enabled"]) == ("EXTERNAL", "PendingImport", False)
    assert "ExpirationModel" not in meta and "ValidTo" not in meta and "CurrentKeyMaterialId" not in meta
    exc = expect_error(kms.encrypt, "KMSInvalidStateException", KeyId=meta["KeyId"], Plaintext=b"x")
    assert exc.response["Error"]["Message"] == f"{meta['Arn']} is pending import."


@pytest.mark.parametrize("spec", WRAPPING_KEY_SPECS)
def test_parameters_for_import(kms: Any, spec: str) -> None:
    key_id = _external(kms)
    before = utcnow()
    got = _parameters(kms, key_id, "RSA_AES_KEY_WRAP_SHA_256", spec)
    assert got["KeyId"] == key_arn(key_id)
    public = serialization.load_der_public_key(got["PublicKey"])  # DER SubjectPublicKeyInfo
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == int(spec.removeprefix("RSA_"))
    assert_close(got["ParametersValidTo"], before + DAY, seconds=60)
    assert got["ImportToken"] != _parameters(kms, key_id, "RSA_AES_KEY_WRAP_SHA_256", spec)["ImportToken"]


def test_pkcs1_v1_5_and_sm2_wrapping_are_refused(kms: Any) -> None:
    key_id = _external(kms)
    exc = expect_error(_parameters, "ValidationException", kms=kms, key_id=key_id, algorithm="RSAES_PKCS1_V1_5")
    assert "RSAES_PKCS1_V1_5" in exc.response["Error"]["Message"]
    expect_error(_parameters, "UnsupportedOperationException", kms=kms, key_id=key_id, algorithm="SM2PKE", spec="SM2")
    expect_error(_parameters, "UnsupportedOperationException", kms=kms, key_id=key_id, spec="SM2")


def test_only_external_keys_by_id_or_arn(kms: Any) -> None:
    plain = new_key(kms)
    arn = key_arn(plain)
    message = f"{arn} origin is AWS_KMS which is not valid for this operation."
    assert (
        expect_error(_parameters, "UnsupportedOperationException", kms=kms, key_id=plain).response["Error"]["Message"]
        == message
    )
    assert (
        expect_error(kms.delete_imported_key_material, "UnsupportedOperationException", KeyId=arn).response["Error"][
            "Message"
        ]
        == message
    )
    alias = unique_alias("byok")
    external = _external(kms)
    kms.create_alias(AliasName=alias, TargetKeyId=external)
    expect_error(_parameters, "InvalidArnException", kms=kms, key_id=alias)  # key id or key ARN only (AWS's answer)
    assert _parameters(kms, key_arn(external))["KeyId"] == key_arn(external)


# -- ImportKeyMaterial, symmetric: every wrapping algorithm and wrapping key spec ------------------------------


@pytest.mark.parametrize("algorithm", WRAPPING_ALGORITHMS)
@pytest.mark.parametrize("spec", WRAPPING_KEY_SPECS)
def test_import_with_each_wrapping(kms: Any, algorithm: str, spec: str) -> None:
    key_id = _external(kms)
    imported = _import(kms, key_id, os.urandom(32), algorithm, spec)
    meta = _meta(kms, key_id)
    assert (imported["KeyId"], imported["KeyMaterialId"]) == (key_arn(key_id), meta["CurrentKeyMaterialId"])
    assert (meta["KeyState"], meta["Enabled"], meta["ExpirationModel"]) == (
        "Enabled",
        True,
        "KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"imported")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob)
    assert decrypted["Plaintext"] == b"imported"
    assert decrypted["KeyMaterialId"] == meta["CurrentKeyMaterialId"]


def test_delete_and_reimport(kms: Any) -> None:
    """Deleting makes the ciphertexts undecryptable; the same material, in a fresh wrapping, brings them back; other
    material never fits this key again."""
    material = os.urandom(32)
    key_id = _external(kms)
    _import(kms, key_id, material, "RSA_AES_KEY_WRAP_SHA_1", "RSA_3072")
    material_id = _meta(kms, key_id)["CurrentKeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept", EncryptionContext={"app": "byok"})["CiphertextBlob"]

    deleted = kms.delete_imported_key_material(KeyId=key_id)
    assert (deleted["KeyId"], deleted["KeyMaterialId"]) == (key_arn(key_id), material_id)
    meta = _meta(kms, key_id)
    assert (meta["KeyState"], meta["Enabled"]) == ("PendingImport", False)
    exc = expect_error(kms.decrypt, "KMSInvalidStateException", CiphertextBlob=blob, EncryptionContext={"app": "byok"})
    assert exc.response["Error"]["Message"] == f"{key_arn(key_id)} is pending import."

    exc = expect_error(_import, "IncorrectKeyMaterialException", kms=kms, key_id=key_id, material=os.urandom(32))
    assert key_arn(key_id) in exc.response["Error"]["Message"]
    assert _meta(kms, key_id)["KeyState"] == "PendingImport"

    assert _import(kms, key_id, material, "RSAES_OAEP_SHA_1", "RSA_4096")["KeyMaterialId"] == material_id
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "byok"})["Plaintext"] == b"kept"
    assert _meta(kms, key_id)["CurrentKeyMaterialId"] == material_id


def test_expiration_is_shown_and_changed_by_reimport(kms: Any) -> None:
    material = os.urandom(32)
    key_id = _external(kms)
    valid_to = (utcnow() + 30 * DAY).replace(microsecond=0)
    _import(kms, key_id, material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    meta = _meta(kms, key_id)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and meta["ValidTo"] == valid_to
    _import(kms, key_id, material)  # re-import into the Enabled key to drop the expiration
    meta = _meta(kms, key_id)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in meta
    assert meta["KeyState"] == "Enabled"


def test_valid_to_must_be_in_the_coming_year(kms: Any) -> None:
    key_id = _external(kms)
    for valid_to in (utcnow() - DAY, utcnow() + 366 * DAY):
        expect_error(_import, "ValidationException", kms=kms, key_id=key_id, material=os.urandom(32),
                     ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)  # fmt: skip
    expect_error(_import, "ValidationException", kms=kms, key_id=key_id, material=os.urandom(32),
                 ExpirationModel="KEY_MATERIAL_EXPIRES")  # fmt: skip
    assert _meta(kms, key_id)["KeyState"] == "PendingImport"


# -- tokens and wrappings that must fail ----------------------------------------------------------------------


def test_forged_foreign_and_mismatched_tokens(kms: Any) -> None:
    key_id, other = _external(kms), _external(kms)
    got = _parameters(kms, key_id)
    encrypted = wrap(got["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    token = got["ImportToken"]
    base: dict[str, Any] = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "EncryptedKeyMaterial": encrypted}
    expect_error(kms.import_key_material, "InvalidImportTokenException", KeyId=other, ImportToken=token, **base)
    for forged in (
        token[:-1],
        token + b"\x00",
        token[:40] + bytes([token[40] ^ 0x20]) + token[41:],
        os.urandom(len(token)),
        b"\x01" * 64,
    ):
        expect_error(kms.import_key_material, "InvalidImportTokenException", KeyId=key_id, ImportToken=forged, **base)
    kms.import_key_material(KeyId=key_id, ImportToken=token, **base)


def test_wrong_wrappings_are_invalid_ciphertext(kms: Any) -> None:
    """Material wrapped under another public key, with another algorithm, or altered: one identical answer."""
    key_id = _external(kms)
    got = _parameters(kms, key_id, "RSAES_OAEP_SHA_256")
    other = _parameters(kms, _external(kms), "RSAES_OAEP_SHA_256")
    material = os.urandom(32)
    good = wrap(got["PublicKey"], "RSAES_OAEP_SHA_256", material)
    public = serialization.load_der_public_key(got["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    answers = set()
    for encrypted in (
        wrap(other["PublicKey"], "RSAES_OAEP_SHA_256", material),
        wrap(got["PublicKey"], "RSAES_OAEP_SHA_1", material),
        wrap(got["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", material),
        public.encrypt(material, padding.PKCS1v15()),
        good[:-1] + bytes([good[-1] ^ 1]),
        good[:128],
    ):
        exc = expect_error(kms.import_key_material, "InvalidCiphertextException", KeyId=key_id,
                           ImportToken=got["ImportToken"], EncryptedKeyMaterial=encrypted,
                           ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")  # fmt: skip
        answers.add((exc.response["Error"]["Code"], exc.response["Error"].get("Message", "")))
    assert len(answers) == 1
    assert _meta(kms, key_id)["KeyState"] == "PendingImport"


# -- HMAC and asymmetric keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "algorithm", "digest", "length"),
    [("HMAC_224", "HMAC_SHA_224", "sha224", 28), ("HMAC_256", "HMAC_SHA_256", "sha256", 64),
     ("HMAC_384", "HMAC_SHA_384", "sha384", 100), ("HMAC_512", "HMAC_SHA_512", "sha512", 128)],
)  # fmt: skip
def test_hmac_import_then_mac_checked_offline(kms: Any, spec: str, algorithm: str, digest: str, length: int) -> None:
    key_id = _external(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
    material = os.urandom(length)
    imported = _import(kms, key_id, material, "RSAES_OAEP_SHA_256", "RSA_4096")
    assert "KeyMaterialId" not in imported  # AWS names the key material of symmetric encryption keys only
    message = b"message to authenticate"
    mac = kms.generate_mac(KeyId=key_id, MacAlgorithm=algorithm, Message=message)["Mac"]
    assert mac == hmac.new(material, message, digest).digest()
    assert kms.verify_mac(KeyId=key_id, MacAlgorithm=algorithm, Message=message, Mac=mac)["MacValid"] is True
    short = os.urandom(int(spec.removeprefix("HMAC_")) // 8 - 1)
    expect_error(_import, "IncorrectKeyMaterialException", kms=kms,
                 key_id=_external(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC"), material=short)  # fmt: skip


def test_rsa_signing_key_import_then_sign_verified_offline(kms: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = _external(kms, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    _import(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")
    assert kms.get_public_key(KeyId=key_id)["PublicKey"] == spki(private)
    message = b"signed by imported material"
    for algorithm, pad in (
        ("RSASSA_PSS_SHA_256", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)),
        ("RSASSA_PKCS1_V1_5_SHA_256", padding.PKCS1v15()),
    ):
        signature = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=algorithm)["Signature"]
        private.public_key().verify(signature, message, pad, hashes.SHA256())


def test_rsa_encryption_key_import_then_decrypt_what_anyone_encrypted(kms: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    key_id = _external(kms, KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")
    _import(kms, key_id, pkcs8(private), "RSA_AES_KEY_WRAP_SHA_1", "RSA_4096")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    ciphertext = private.public_key().encrypt(b"to the imported key", oaep)
    decrypted = kms.decrypt(KeyId=key_id, CiphertextBlob=ciphertext, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert decrypted["Plaintext"] == b"to the imported key"


@pytest.mark.parametrize(
    ("spec", "curve", "algorithm", "hash_type", "wrapping"),
    [
        ("ECC_NIST_P256", ec.SECP256R1, "ECDSA_SHA_256", hashes.SHA256, "RSAES_OAEP_SHA_256"),
        ("ECC_NIST_P384", ec.SECP384R1, "ECDSA_SHA_384", hashes.SHA384, "RSAES_OAEP_SHA_1"),
        ("ECC_NIST_P521", ec.SECP521R1, "ECDSA_SHA_512", hashes.SHA512, "RSA_AES_KEY_WRAP_SHA_256"),
        ("ECC_SECG_P256K1", ec.SECP256K1, "ECDSA_SHA_256", hashes.SHA256, "RSA_AES_KEY_WRAP_SHA_1"),
    ],
)
def test_ecc_key_import_then_sign_verified_offline(
    kms: Any,
    spec: str,
    curve: type[ec.EllipticCurve],
    algorithm: str,
    hash_type: type[hashes.HashAlgorithm],
    wrapping: str,
) -> None:
    private = ec.generate_private_key(curve())
    key_id = _external(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    _import(kms, key_id, pkcs8(private), wrapping, "RSA_3072")
    message = b"signed by an imported EC key"
    signature = kms.sign(KeyId=key_id, Message=message, SigningAlgorithm=algorithm)["Signature"]
    private.public_key().verify(signature, message, ec.ECDSA(hash_type()))
    other = ec.generate_private_key(curve())
    expect_error(_import, "IncorrectKeyMaterialException", kms=kms, key_id=key_id, material=pkcs8(other),
                 algorithm="RSA_AES_KEY_WRAP_SHA_256")  # fmt: skip
    digest = hashlib.new(hash_type().name, message).digest()
    signed = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm)["Signature"]
    private.public_key().verify(signed, message, ec.ECDSA(hash_type()))


# -- authorisation: the import condition keys -----------------------------------------------------------------


def test_import_condition_keys_reach_the_policy(server: ServerProcess, kms: Any) -> None:
    """kms:WrappingAlgorithm, kms:WrappingKeySpec, kms:ExpirationModel and kms:ValidTo (AWS's condition keys of
    these two operations) decide an identity policy."""
    limit = utcnow() + 10 * DAY
    policy = allow(["kms:DescribeKey", "kms:CreateKey"])
    policy["Statement"] += [
        {
            "Effect": "Allow",
            "Action": "kms:GetParametersForImport",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:WrappingAlgorithm": "RSA_AES_KEY_WRAP_SHA_256", "kms:WrappingKeySpec": "RSA_4096"}
            },
        },
        {
            "Effect": "Allow",
            "Action": "kms:ImportKeyMaterial",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_EXPIRES"},
                "NumericLessThanEquals": {"kms:ValidTo": str(limit.timestamp())},
            },
        },
    ]
    user = make_user(server, "importer", policy=policy)
    key_id = _external(user.kms)
    for algorithm, spec in (("RSA_AES_KEY_WRAP_SHA_1", "RSA_4096"), ("RSA_AES_KEY_WRAP_SHA_256", "RSA_2048")):
        expect_error(_parameters, "AccessDeniedException", kms=user.kms, key_id=key_id, algorithm=algorithm, spec=spec)
    got = _parameters(user.kms, key_id, "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096")
    encrypted = wrap(got["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", os.urandom(32))
    base: dict[str, Any] = {"KeyId": key_id, "ImportToken": got["ImportToken"], "EncryptedKeyMaterial": encrypted}
    expect_error(user.kms.import_key_material, "AccessDeniedException", ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
                 **base)  # fmt: skip
    expect_error(user.kms.import_key_material, "AccessDeniedException", ExpirationModel="KEY_MATERIAL_EXPIRES",
                 ValidTo=limit + DAY, **base)  # fmt: skip
    user.kms.import_key_material(ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=limit - DAY, **base)
    assert _meta(kms, key_id)["KeyState"] == "Enabled"
    expect_error(user.kms.delete_imported_key_material, "AccessDeniedException", KeyId=key_id)


def test_errors_have_aws_shapes(kms: Any) -> None:
    """The new error codes arrive as botocore's modelled exceptions."""
    key_id = _external(kms)
    got = _parameters(kms, key_id)
    with pytest.raises(kms.exceptions.InvalidImportTokenException):
        kms.import_key_material(KeyId=key_id, ImportToken=b"\x00" * 100, EncryptedKeyMaterial=b"\x00" * 256,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")  # fmt: skip
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.import_key_material(KeyId=key_id, ImportToken=got["ImportToken"], EncryptedKeyMaterial=b"\x00" * 256,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")  # fmt: skip
    _import(kms, key_id, os.urandom(32))
    try:
        _import(kms, key_id, os.urandom(32))
    except ClientError as exc:
        assert isinstance(exc, kms.exceptions.IncorrectKeyMaterialException)
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    else:
        pytest.fail("different material was accepted")


# -- rotating imported key material (ImportType NEW_KEY_MATERIAL, RotateKeyOnDemand, ListKeyRotations) ---------


def _rotations(kms: Any, key_id: str, **params: Any) -> list[dict[str, Any]]:
    rotations: list[dict[str, Any]] = kms.list_key_rotations(KeyId=key_id, **params)["Rotations"]
    return rotations


def test_rotate_into_new_imported_material(kms: Any) -> None:
    """Import A, encrypt; stage B (NEW_KEY_MATERIAL, with a description); rotate; B is current, A still decrypts;
    ListKeyRotations shows both with their states; deleting B and importing it again brings it back."""
    key_id = _external(kms)
    material_a, material_b = os.urandom(32), os.urandom(32)
    id_a = _import(kms, key_id, material_a, KeyMaterialDescription="first")["KeyMaterialId"]
    blob_a = kms.encrypt(KeyId=key_id, Plaintext=b"under a")["CiphertextBlob"]
    assert _rotations(kms, key_id) == []

    staged = _import(kms, key_id, material_b, ImportType="NEW_KEY_MATERIAL", KeyMaterialDescription="second hsm")
    id_b = staged["KeyMaterialId"]
    assert staged["KeyId"] == key_arn(key_id) and id_b != id_a
    assert _meta(kms, key_id)["CurrentKeyMaterialId"] == id_a  # staging changes nothing else
    assert _rotations(kms, key_id) == []  # ROTATIONS_ONLY: no rotation yet
    first, pending = _rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert (first["KeyMaterialId"], first["KeyMaterialState"], first["ImportState"]) == (id_a, "CURRENT", "IMPORTED")
    assert first["KeyMaterialDescription"] == "first" and "RotationDate" not in first
    assert (pending["KeyMaterialId"], pending["KeyMaterialState"], pending["ImportState"]) == (
        id_b,
        "PENDING_ROTATION",
        "IMPORTED",
    )
    assert pending["KeyMaterialDescription"] == "second hsm"
    assert pending["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "RotationType" not in pending

    before = utcnow()
    assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == key_arn(key_id)
    assert _meta(kms, key_id)["CurrentKeyMaterialId"] == id_b
    blob_b = kms.encrypt(KeyId=key_id, Plaintext=b"under b")["CiphertextBlob"]
    decrypted_a, decrypted_b = kms.decrypt(CiphertextBlob=blob_a), kms.decrypt(CiphertextBlob=blob_b)
    assert (decrypted_a["Plaintext"], decrypted_a["KeyMaterialId"]) == (b"under a", id_a)
    assert (decrypted_b["Plaintext"], decrypted_b["KeyMaterialId"]) == (b"under b", id_b)

    (rotation,) = _rotations(kms, key_id)
    assert (rotation["KeyMaterialId"], rotation["KeyMaterialState"], rotation["RotationType"]) == (
        id_b,
        "CURRENT",
        "ON_DEMAND",
    )
    assert_close(rotation["RotationDate"], before, seconds=60)
    states = [
        (r["KeyMaterialId"], r["KeyMaterialState"])
        for r in _rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    ]
    assert states == [(id_a, "NON_CURRENT"), (id_b, "CURRENT")]

    # Nothing pending any more; a material already associated with the key is not new.
    exc = expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key_id)
    assert key_arn(key_id) in exc.response["Error"]["Message"]
    for known in (material_a, material_b):
        expect_error(_import, "IncorrectKeyMaterialException", kms=kms, key_id=key_id, material=known,
                     ImportType="NEW_KEY_MATERIAL")  # fmt: skip

    # The current material deleted: no new material until it is back; the same material (EXISTING) brings it back.
    assert kms.delete_imported_key_material(KeyId=key_id)["KeyMaterialId"] == id_b
    assert _meta(kms, key_id)["KeyState"] == "PendingImport"
    entries = _rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [(r["KeyMaterialState"], r["ImportState"]) for r in entries] == [
        ("NON_CURRENT", "IMPORTED"),
        ("CURRENT", "PENDING_IMPORT"),
    ]
    exc = expect_error(_import, "KMSInvalidStateException", kms=kms, key_id=key_id, material=os.urandom(32),
                       ImportType="NEW_KEY_MATERIAL")  # fmt: skip
    assert exc.response["Error"]["Message"] == f"{key_arn(key_id)} is pending import."
    again = _import(kms, key_id, material_b, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=id_b)
    assert again["KeyMaterialId"] == id_b
    meta = _meta(kms, key_id)
    assert (meta["KeyState"], meta["CurrentKeyMaterialId"]) == ("Enabled", id_b)
    assert kms.decrypt(CiphertextBlob=blob_b)["Plaintext"] == b"under b"
    assert kms.decrypt(CiphertextBlob=blob_a)["Plaintext"] == b"under a"


def test_new_key_material_only_for_symmetric_keys(kms: Any) -> None:
    """Asymmetric and HMAC EXTERNAL keys hold one material: ImportType is refused ("only usable with symmetric
    encryption keys"), and they do not rotate on demand."""
    key_id = _external(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    _import(kms, key_id, os.urandom(32))
    exc = expect_error(_import, "ValidationException", kms=kms, key_id=key_id, material=os.urandom(32),
                       ImportType="NEW_KEY_MATERIAL")  # fmt: skip
    assert exc.response["Error"]["Message"] == "ImportType is only valid for symmetric encryption KMS keys."
    expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key_id)


def test_pending_material_can_be_deleted_and_replaced(kms: Any) -> None:
    """PENDING_ROTATION material "is not permanently associated with the KMS key": deleting it by KeyMaterialId
    leaves the key and its current material alone, and the same or other material can be staged in its place."""
    key_id = _external(kms)
    id_a = _import(kms, key_id, os.urandom(32))["KeyMaterialId"]
    staged_material = os.urandom(32)
    id_b = _import(kms, key_id, staged_material, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    deleted = kms.delete_imported_key_material(KeyId=key_id, KeyMaterialId=id_b)
    assert (deleted["KeyId"], deleted["KeyMaterialId"]) == (key_arn(key_id), id_b)
    meta = _meta(kms, key_id)
    assert (meta["KeyState"], meta["CurrentKeyMaterialId"]) == ("Enabled", id_a)
    listed = _rotations(kms, key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [(r["KeyMaterialId"], r["KeyMaterialState"]) for r in listed] == [(id_a, "CURRENT")]
    expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key_id)
    expect_error(kms.delete_imported_key_material, "NotFoundException", KeyId=key_id, KeyMaterialId=id_b)

    id_c = _import(kms, key_id, staged_material, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    kms.rotate_key_on_demand(KeyId=key_id)
    assert _meta(kms, key_id)["CurrentKeyMaterialId"] == id_c != id_b
    # Once rotated, material is permanently associated: deleting an older one by id is not built (docs/import.md).
    expect_error(kms.delete_imported_key_material, "NotFoundException", KeyId=key_id, KeyMaterialId=id_a)
