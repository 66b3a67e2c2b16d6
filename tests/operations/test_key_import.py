"""operations/key_import.py through the whole request path, in process, with a frozen clock, on each engine.

The rules are AWS's, as its API reference states them (GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial) and its key-state table; the boto3 end-to-end tests (tests/e2e/test_key_import_api.py)
cover the wrapping algorithms, key types and error shapes over HTTP.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.crypto import keypairs
from openkms.operations import keyspecs
from tests.byok import pkcs8, spki
from tests.operations.conftest import DAY, KMS, T0, counting_write_transactions


def test_an_external_key_waits_for_its_material(kms: KMS) -> None:
    key_id = kms.external_key(Description="byok")
    meta = kms.describe(key_id)
    assert meta["Origin"] == "EXTERNAL" and meta["KeyState"] == "PendingImport" and meta["Enabled"] is False
    for absent in ("ExpirationModel", "ValidTo", "CurrentKeyMaterialId"):
        assert absent not in meta
    assert kms.versions(key_id) == []
    arn = meta["Arn"]
    for operation, params in (
        ("Encrypt", {"Plaintext": b"x"}),
        ("GenerateDataKey", {"KeySpec": "AES_256"}),
        ("EnableKey", {}),
        ("DisableKey", {}),
    ):
        assert kms.fails(operation, "KMSInvalidStateException", KeyId=key_id, **params) == f"{arn} is pending import."


def test_parameters_are_valid_for_24_hours(kms: KMS) -> None:
    key_id = kms.external_key()
    params = kms.import_params(key_id, os.urandom(32))
    got_valid_to = kms.parameters(key_id)["ParametersValidTo"]
    assert got_valid_to == pytest.approx(T0 + DAY, abs=0.001)
    kms.clock.set(T0 + DAY + 0.5)
    kms.fails("ImportKeyMaterial", "ExpiredImportTokenException", **params)
    kms.clock.set(T0 + DAY - 1)
    kms.ok("ImportKeyMaterial", **params)  # the same token, still in time
    assert kms.describe(key_id)["KeyState"] == "Enabled"


def test_expired_material_is_unusable_at_once_and_the_same_material_restores_it(kms: KMS) -> None:
    key_id, material = kms.imported_key(ValidTo=T0 + 3600, ExpirationModel="KEY_MATERIAL_EXPIRES")
    meta = kms.describe(key_id)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and meta["ValidTo"] == T0 + 3600
    material_id = meta["CurrentKeyMaterialId"]
    blob = kms.encrypt(key_id)
    kms.clock.set(T0 + 3599)
    assert kms.decrypt(blob) == b"secret"

    kms.clock.set(T0 + 3600)  # ValidTo reached: the job has not run, yet the key is PendingImport
    arn = meta["Arn"]
    assert kms.fails("Decrypt", "KMSInvalidStateException", CiphertextBlob=blob) == f"{arn} is pending import."
    kms.fails("Encrypt", "KMSInvalidStateException", KeyId=key_id, Plaintext=b"x")
    expired = kms.describe(key_id)
    assert expired["KeyState"] == "PendingImport" and expired["Enabled"] is False
    # As after DeleteImportedKeyMaterial (recorded AWS responses): no expiration shown, the material still named.
    assert "ExpirationModel" not in expired and "ValidTo" not in expired
    assert expired["CurrentKeyMaterialId"] == material_id
    assert len(kms.versions(key_id)) == 1  # still stored until the expiry job runs

    kms.import_material(key_id, material, ValidTo=T0 + 7200, ExpirationModel="KEY_MATERIAL_EXPIRES")
    assert kms.decrypt(blob) == b"secret"
    assert kms.describe(key_id)["CurrentKeyMaterialId"] == material_id
    assert kms.describe(key_id)["ValidTo"] == T0 + 7200


def test_delete_then_reimport_keeps_the_version_identity(kms: KMS) -> None:
    key_id, material = kms.imported_key()
    before = kms.describe(key_id)
    blob = kms.encrypt(key_id)
    [version_id] = kms.versions(key_id)

    deleted = kms.ok("DeleteImportedKeyMaterial", KeyId=key_id)
    assert deleted == {"KeyId": before["Arn"], "KeyMaterialId": before["CurrentKeyMaterialId"]}
    assert kms.versions(key_id) == []
    assert kms.describe(key_id)["KeyState"] == "PendingImport"
    kms.fails("Decrypt", "KMSInvalidStateException", CiphertextBlob=blob)

    other = kms.import_params(key_id, os.urandom(32))
    kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **other)
    assert kms.versions(key_id) == []

    assert kms.import_material(key_id, material)["KeyMaterialId"] == before["CurrentKeyMaterialId"]
    assert kms.versions(key_id) == [version_id]
    assert kms.decrypt(blob) == b"secret"
    assert kms.describe(key_id)["KeyState"] == "Enabled"


def test_deleting_twice_and_deleting_nothing_succeed(kms: KMS) -> None:
    """On a PendingImport key the operation succeeds with no effect (key-state table)."""
    never = kms.external_key()
    assert kms.ok("DeleteImportedKeyMaterial", KeyId=never) == {"KeyId": kms.describe(never)["Arn"]}
    key_id, _ = kms.imported_key()
    first = kms.ok("DeleteImportedKeyMaterial", KeyId=key_id)
    assert kms.ok("DeleteImportedKeyMaterial", KeyId=key_id) == first
    assert kms.describe(key_id)["KeyState"] == "PendingImport"


def test_reimport_into_an_enabled_key_changes_only_the_expiration(kms: KMS) -> None:
    key_id, material = kms.imported_key(ValidTo=T0 + 3600, ExpirationModel="KEY_MATERIAL_EXPIRES")
    kms.import_material(key_id, material, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    meta = kms.describe(key_id)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in meta
    kms.clock.set(T0 + 10 * DAY)
    assert kms.decrypt(kms.encrypt(key_id)) == b"secret"
    kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **kms.import_params(key_id, os.urandom(32)))


def test_valid_to_rules(kms: KMS) -> None:
    key_id = kms.external_key()
    material = os.urandom(32)
    cases: dict[str, dict[str, Any]] = {
        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES": {
            "ExpirationModel": "KEY_MATERIAL_EXPIRES"
        },
        "ValidTo must be in the future": {"ValidTo": T0},
        "ValidTo must be at most 365 days from the request date": {"ValidTo": T0 + 365 * DAY + 1},
        "The parameter ValidTo cannot be specified for a key with an expiration model of "
        "KEY_MATERIAL_DOES_NOT_EXPIRE": {
            "ValidTo": T0 + 60,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    }
    for message, extra in cases.items():
        params = kms.import_params(key_id, material, **extra)
        assert kms.fails("ImportKeyMaterial", "ValidationException", **params) == message
    params = kms.import_params(key_id, material, ValidTo=T0 + 365 * DAY)  # ExpirationModel defaults to EXPIRES
    kms.ok("ImportKeyMaterial", **params)
    assert kms.describe(key_id)["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"


def test_disabled_and_pending_deletion_keys(kms: KMS) -> None:
    key_id, material = kms.imported_key()
    arn = kms.describe(key_id)["Arn"]
    kms.ok("DisableKey", KeyId=key_id)
    kms.import_material(key_id, material)  # a Disabled key may re-import (to change the expiration) and stays so
    assert kms.describe(key_id)["KeyState"] == "Disabled"
    kms.ok("DeleteImportedKeyMaterial", KeyId=key_id)
    assert kms.describe(key_id)["KeyState"] == "PendingImport"
    kms.import_material(key_id, material)
    assert kms.describe(key_id)["KeyState"] == "Enabled"  # "the state of the KMS key changes to Enabled"

    kms.ok("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    message = kms.fails("GetParametersForImport", "KMSInvalidStateException", KeyId=key_id,
                        WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")  # fmt: skip
    assert message == f"{arn} is pending deletion."
    kms.ok("DeleteImportedKeyMaterial", KeyId=key_id)  # allowed; the state stays PendingDeletion
    assert kms.describe(key_id)["KeyState"] == "PendingDeletion" and kms.versions(key_id) == []
    kms.ok("CancelKeyDeletion", KeyId=key_id)
    assert kms.describe(key_id)["KeyState"] == "PendingImport"  # no material: never Disabled or Enabled
    kms.fails("EnableKey", "KMSInvalidStateException", KeyId=key_id)
    kms.import_material(key_id, material)
    assert kms.describe(key_id)["KeyState"] == "Enabled"


def test_import_type_and_key_material_id(kms: KMS) -> None:
    key_id = kms.external_key()
    material = os.urandom(32)
    first = kms.import_params(key_id, material, ImportType="EXISTING_KEY_MATERIAL")
    kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **first)
    with_id = kms.import_params(key_id, material, ImportType="NEW_KEY_MATERIAL", KeyMaterialId="a" * 64)
    kms.fails("ImportKeyMaterial", "ValidationException", **with_id)
    material_id = kms.import_material(key_id, material, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]

    same_as_new = kms.import_params(key_id, material, ImportType="NEW_KEY_MATERIAL")
    kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **same_as_new)
    other_as_new = kms.import_params(key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    staged = kms.ok("ImportKeyMaterial", **other_as_new)["KeyMaterialId"]  # PENDING_ROTATION: nothing else moves
    assert staged != material_id and kms.describe(key_id)["CurrentKeyMaterialId"] == material_id
    wrong_id = kms.import_params(key_id, material, KeyMaterialId="b" * 64)
    kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **wrong_id)
    right = kms.import_params(key_id, material, ImportType="EXISTING_KEY_MATERIAL", KeyMaterialId=material_id)
    assert kms.ok("ImportKeyMaterial", **right)["KeyMaterialId"] == material_id

    kms.fails("DeleteImportedKeyMaterial", "NotFoundException", KeyId=key_id, KeyMaterialId="c" * 64)
    assert kms.describe(key_id)["KeyState"] == "Enabled"
    kms.ok("DeleteImportedKeyMaterial", KeyId=key_id, KeyMaterialId=material_id)
    assert kms.describe(key_id)["KeyState"] == "PendingImport"


def test_symmetric_only_parameters_on_other_keys(kms: KMS) -> None:
    key_id = kms.external_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    for name, value in (
        ("ImportType", "NEW_KEY_MATERIAL"),
        ("KeyMaterialDescription", "hsm export 7"),
        ("KeyMaterialId", "0" * 64),
    ):
        params = kms.import_params(key_id, os.urandom(32), **{name: value})
        message = kms.fails("ImportKeyMaterial", "ValidationException", **params)
        assert message == f"{name} is only valid for symmetric encryption KMS keys."
    assert "KeyMaterialId" not in kms.import_material(key_id, os.urandom(32))  # named for symmetric keys only


@pytest.mark.parametrize(
    ("spec", "usage", "good", "bad"),
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", [32], [16, 31, 33, 64]),
        ("HMAC_224", "GENERATE_VERIFY_MAC", [28, 64], [27, 65]),
        ("HMAC_256", "GENERATE_VERIFY_MAC", [32, 64], [31, 65]),
        ("HMAC_384", "GENERATE_VERIFY_MAC", [48, 128], [47, 129]),
        ("HMAC_512", "GENERATE_VERIFY_MAC", [64, 128], [63, 129]),
    ],
)
def test_material_lengths(kms: KMS, spec: str, usage: str, good: list[int], bad: list[int]) -> None:
    for length in bad:
        key_id = kms.external_key(KeySpec=spec, KeyUsage=usage)
        params = kms.import_params(key_id, os.urandom(length), algorithm="RSA_AES_KEY_WRAP_SHA_256")
        kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **params)
        assert kms.describe(key_id)["KeyState"] == "PendingImport"
    for length in good:
        key_id = kms.external_key(KeySpec=spec, KeyUsage=usage)
        kms.import_material(key_id, os.urandom(length), algorithm="RSA_AES_KEY_WRAP_SHA_256")
        assert kms.describe(key_id)["KeyState"] == "Enabled"


def test_private_keys_must_be_pkcs8_of_the_key_spec(kms: KMS) -> None:
    key_id = kms.external_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for material in (pkcs8(ec.generate_private_key(ec.SECP384R1())), b"\x30\x03\x02\x01\x00", os.urandom(64)):
        params = kms.import_params(key_id, material, algorithm="RSA_AES_KEY_WRAP_SHA_256")
        kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **params)
    private = ec.generate_private_key(ec.SECP256R1())
    kms.import_material(key_id, pkcs8(private), algorithm="RSA_AES_KEY_WRAP_SHA_256")
    assert base64.b64decode(kms.ok("GetPublicKey", KeyId=key_id)["PublicKey"]) == spki(private)


def test_tokens_are_bound_to_their_key(kms: KMS) -> None:
    first, second = kms.external_key(), kms.external_key()
    params = kms.import_params(first, os.urandom(32))
    kms.fails("ImportKeyMaterial", "InvalidImportTokenException", **{**params, "KeyId": second})
    token = params["ImportToken"]
    for bad in (token[:-1], token[:10] + bytes([token[10] ^ 1]) + token[11:], os.urandom(len(token)), b"\x01"):
        kms.fails("ImportKeyMaterial", "InvalidImportTokenException", **{**params, "ImportToken": bad})
    kms.ok("ImportKeyMaterial", **params)


def test_each_operation_writes_in_at_most_one_transaction(kms: KMS) -> None:
    """The audit layer attaches a request's record to its one write transaction (docs/design.md section 8)."""
    key_id = kms.external_key()
    material = os.urandom(32)
    params = kms.import_params(key_id, material)
    with counting_write_transactions(kms.storage) as opened:
        kms.parameters(key_id)
    assert opened == []
    with counting_write_transactions(kms.storage) as opened:
        kms.ok("ImportKeyMaterial", **params)
    assert opened == ["transaction"]
    with counting_write_transactions(kms.storage) as opened:
        kms.fails("ImportKeyMaterial", "IncorrectKeyMaterialException", **kms.import_params(key_id, os.urandom(32)))
    assert opened == ["transaction"]  # rolled back
    with counting_write_transactions(kms.storage) as opened:
        kms.ok("DeleteImportedKeyMaterial", KeyId=key_id)
    assert opened == ["transaction"]


ASYMMETRIC = sorted(
    (spec, usage)
    for spec, info in keyspecs.SPECS.items()
    if info.asymmetric and keyspecs.served(spec)
    for usage in info.usages
)


@pytest.mark.parametrize(("spec", "usage"), ASYMMETRIC)
def test_every_served_asymmetric_spec_imports(kms: KMS, spec: str, usage: str) -> None:
    """The material is made by the key pair module (any PKCS #8 source would do); what is imported is what
    GetPublicKey then derives."""
    material = keypairs.generate_private_key(spec)
    key_id = kms.external_key(KeySpec=spec, KeyUsage=usage)
    kms.import_material(key_id, material, algorithm="RSA_AES_KEY_WRAP_SHA_256")
    meta = kms.describe(key_id)
    assert (meta["KeyState"], meta["KeySpec"], meta["KeyUsage"]) == ("Enabled", spec, usage)
    public = base64.b64decode(kms.ok("GetPublicKey", KeyId=key_id)["PublicKey"])
    assert public == keypairs.public_key_der(keypairs.load_private_key(spec, material))


def test_staged_material_that_expired_before_its_rotation_cannot_become_current(kms: KMS) -> None:
    key_id, _ = kms.imported_key(ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    current = kms.describe(key_id)["CurrentKeyMaterialId"]
    staged = kms.import_material(
        key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL", ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=T0 + 100
    )["KeyMaterialId"]
    listed = kms.ok("ListKeyRotations", KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(r["KeyMaterialId"], r["ImportState"], r.get("ValidTo")) for r in listed] == [
        (current, "IMPORTED", None),
        (staged, "IMPORTED", T0 + 100),
    ]
    kms.clock.set(T0 + 100)
    listed = kms.ok("ListKeyRotations", KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(r["KeyMaterialState"], r["ImportState"]) for r in listed] == [
        ("CURRENT", "IMPORTED"),
        ("PENDING_ROTATION", "PENDING_IMPORT"),
    ]
    kms.fails("RotateKeyOnDemand", "UnsupportedOperationException", KeyId=key_id)
    assert kms.describe(key_id)["CurrentKeyMaterialId"] == current


def test_list_key_rotations_pages_imported_material(kms: KMS) -> None:
    key_id, _ = kms.imported_key(ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    staged = [
        kms.import_material(key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"] for _ in range(2)
    ]
    first = kms.ok("ListKeyRotations", KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=2)
    assert first["Truncated"] is True and len(first["Rotations"]) == 2
    rest = kms.ok("ListKeyRotations", KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL", Marker=first["NextMarker"])
    assert "NextMarker" not in rest and rest["Truncated"] is False
    pages = first["Rotations"] + rest["Rotations"]
    assert [r["KeyMaterialState"] for r in pages] == ["CURRENT", "PENDING_ROTATION", "PENDING_ROTATION"]
    assert sorted(r["KeyMaterialId"] for r in pages[1:]) == sorted(staged)
