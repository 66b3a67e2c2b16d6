"""Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom (symmetric keys)."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.crypto import symmetric
from openkms.crypto.blob import SymmetricBlob
from openkms.crypto.rand import random_bytes
from openkms.errors import (
    CustomKeyStoreNotFoundException,
    IncorrectKeyException,
    InvalidCiphertextException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.operations import common
from openkms.operations.context import RequestContext
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.ports import Transaction
from openkms.storage.records import KeyRecord, KeyVersionRecord

DATA_KEY_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}


def _context(params: Params, name: str = "EncryptionContext") -> Mapping[str, str]:
    context: Mapping[str, str] = params.get(name) or {}
    return context


def _refuse_recipient(params: Params) -> None:
    if params.get("Recipient") is not None:
        raise UnsupportedOperationException("Recipient (Nitro Enclaves attestation) is not supported by openkms.")


def _encryption_key(tx: Transaction, ctx: RequestContext, key_ref: str, operation: str) -> KeyRecord:
    key = common.resolve_key(tx, ctx, key_ref, allow_alias=True)
    common.require_enabled(key)
    common.require_usage(key, common.ENCRYPT_DECRYPT, operation)
    return key


def _current_version(tx: Transaction, key: KeyRecord) -> KeyVersionRecord:
    if key.current_version_id is None:
        raise InvalidCiphertextException()
    version = tx.get_version(key.key_id, key.current_version_id)
    if version is None:
        raise KMSInvalidStateException(common.state_message(key))
    return version


def _seal(
    svc: Services, key: KeyRecord, version: KeyVersionRecord, plaintext: bytes, context: Mapping[str, str]
) -> bytes:
    material = svc.materials.material(key, version)
    try:
        return symmetric.encrypt(material, key.key_id, bytes.fromhex(version.version_id), plaintext, context)
    except ValueError:
        raise ValidationException("The encryption context is too large.") from None


def _open(
    svc: Services,
    tx: Transaction,
    ctx: RequestContext,
    blob_bytes: bytes,
    context: Mapping[str, str],
    key_ref: str | None,
) -> tuple[KeyRecord, KeyVersionRecord, bytes]:
    """Decrypt a symmetric blob in the caller's account; unknown keys look like bad ciphertext."""
    blob = SymmetricBlob.decode(blob_bytes)
    if key_ref is not None:
        named = common.resolve_key(tx, ctx, key_ref, allow_alias=True)
        if named.key_id != blob.key_id:
            raise IncorrectKeyException()
    key = tx.get_key(blob.key_id)
    if key is None or key.region != ctx.region:
        raise InvalidCiphertextException()
    if key.account_id != ctx.principal.account_id:
        raise common.access_denied(ctx, key.arn)
    common.require_enabled(key)
    common.require_usage(key, common.ENCRYPT_DECRYPT, ctx.operation)
    version = tx.get_version(key.key_id, blob.version_id.hex())
    if version is None:
        raise InvalidCiphertextException()
    material = svc.materials.material(key, version)
    return key, version, symmetric.decrypt(material, blob, context)


@operation("Encrypt")
def encrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.read() as tx:
        key = _encryption_key(tx, ctx, params["KeyId"], "Encrypt")
        algorithm = common.require_symmetric_algorithm(key, params.get("EncryptionAlgorithm"))
        version = _current_version(tx, key)
    common.check_dry_run(params)
    blob = _seal(svc, key, version, params["Plaintext"], _context(params))
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}


@operation("Decrypt")
def decrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _refuse_recipient(params)
    if "CiphertextBlob" not in params:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: "
            "Member must not be null"
        )
    with svc.storage.read() as tx:
        key, version, plaintext = _open(svc, tx, ctx, params["CiphertextBlob"], _context(params), params.get("KeyId"))
        common.require_symmetric_algorithm(key, params.get("EncryptionAlgorithm"))
    common.check_dry_run(params)
    return {
        "KeyId": key.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": common.SYMMETRIC_DEFAULT,
        "KeyMaterialId": common.key_material_id(version.version_id),
    }


@operation("ReEncrypt")
def re_encrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    if "CiphertextBlob" not in params:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: "
            "Member must not be null"
        )
    with svc.storage.read() as tx:
        source, source_version, plaintext = _open(
            svc,
            tx,
            ctx,
            params["CiphertextBlob"],
            _context(params, "SourceEncryptionContext"),
            params.get("SourceKeyId"),
        )
        source_algorithm = common.require_symmetric_algorithm(source, params.get("SourceEncryptionAlgorithm"))
        destination = _encryption_key(tx, ctx, params["DestinationKeyId"], "ReEncrypt")
        destination_algorithm = common.require_symmetric_algorithm(
            destination, params.get("DestinationEncryptionAlgorithm")
        )
        destination_version = _current_version(tx, destination)
    common.check_dry_run(params)
    blob = _seal(svc, destination, destination_version, plaintext, _context(params, "DestinationEncryptionContext"))
    return {
        "CiphertextBlob": blob,
        "SourceKeyId": source.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": destination_algorithm,
        "SourceKeyMaterialId": common.key_material_id(source_version.version_id),
        "DestinationKeyMaterialId": common.key_material_id(destination_version.version_id),
    }


def _data_key_length(params: Params) -> int:
    spec: str | None = params.get("KeySpec")
    count: int | None = params.get("NumberOfBytes")
    if spec is not None and count is None:
        return DATA_KEY_SPEC_BYTES[spec]
    if count is not None and spec is None:
        return count
    raise ValidationException("Please specify either KeySpec or NumberOfBytes, but not both.")


def _generate_data_key(svc: Services, ctx: RequestContext, params: Params) -> tuple[Result, bytes]:
    length = _data_key_length(params)
    with svc.storage.read() as tx:
        key = _encryption_key(tx, ctx, params["KeyId"], ctx.operation)
        version = _current_version(tx, key)
    common.check_dry_run(params)
    data_key = random_bytes(length)
    blob = _seal(svc, key, version, data_key, _context(params))
    result: Result = {
        "CiphertextBlob": blob,
        "KeyId": key.arn,
        "KeyMaterialId": common.key_material_id(version.version_id),
    }
    return result, data_key


@operation("GenerateDataKey")
def generate_data_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _refuse_recipient(params)
    result, data_key = _generate_data_key(svc, ctx, params)
    return {**result, "Plaintext": data_key}


@operation("GenerateDataKeyWithoutPlaintext")
def generate_data_key_without_plaintext(svc: Services, ctx: RequestContext, params: Params) -> Result:
    result, _ = _generate_data_key(svc, ctx, params)
    return result


@operation("GenerateRandom")
def generate_random(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _refuse_recipient(params)
    if params.get("CustomKeyStoreId") is not None:
        raise CustomKeyStoreNotFoundException("Custom key stores are not supported by openkms.")
    count: int | None = params.get("NumberOfBytes")
    if count is None:
        raise ValidationException("NumberOfBytes is required.")
    return {"Plaintext": random_bytes(count)}
