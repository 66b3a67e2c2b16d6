"""Encrypt, Decrypt, ReEncrypt (symmetric and RSA keys), GenerateDataKey(WithoutPlaintext), GenerateRandom."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.context import RequestContext
from openkms.crypto import rsa_oaep, symmetric
from openkms.crypto.blob import SymmetricBlob, peek_key_id
from openkms.crypto.errors import DecryptionError
from openkms.crypto.rand import random_bytes
from openkms.errors import (
    CustomKeyStoreNotFoundException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.operations import authorization, keyrefs, keyspecs, keystates, metadata
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


def _refuse_context_for_asymmetric(context: Mapping[str, str]) -> None:
    if context:
        raise ValidationException("EncryptionContext is not supported when encrypting/decrypting with asymmetric CMKs.")


def encrypt_under(
    svc: Services,
    key: KeyRecord,
    version: KeyVersionRecord,
    algorithm: str,
    plaintext: bytes,
    context: Mapping[str, str],
) -> bytes:
    """Encrypt under ``key``: our symmetric blob, or plain RSA-OAEP that anyone can also make offline.
    Also wraps the private keys of GenerateDataKeyPair."""
    if algorithm == keyspecs.SYMMETRIC_DEFAULT:
        material = svc.materials.material(key, version)
        try:
            return symmetric.encrypt(material, key.key_id, bytes.fromhex(version.version_id), plaintext, context)
        except ValueError:
            raise ValidationException("The encryption context is too large.") from None
    return rsa_oaep.encrypt(svc.materials.private_key(key, version).public_key(), algorithm, plaintext)


def _check_asymmetric_plaintext(
    svc: Services, key: KeyRecord, version: KeyVersionRecord, algorithm: str, size: int, context: Mapping[str, str]
) -> None:
    """What AWS checks before an RSA encryption: no context, and a plaintext OAEP can hold."""
    if algorithm == keyspecs.SYMMETRIC_DEFAULT:
        return
    _refuse_context_for_asymmetric(context)
    limit = rsa_oaep.max_plaintext_size(svc.materials.private_key(key, version).public_key(), algorithm)
    if size > limit:
        raise ValidationException(
            f"Algorithm {algorithm} and key spec {key.key_spec} cannot encrypt data larger than {limit} bytes."
        )


def _source_action(ctx: RequestContext) -> str | None:
    """ReEncrypt needs kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination."""
    return "kms:ReEncryptFrom" if ctx.operation == "ReEncrypt" else None


def _destination(
    svc: Services,
    tx: Transaction,
    ctx: RequestContext,
    key_ref: str,
    algorithm: str | None,
    operation: str,
) -> tuple[KeyRecord, KeyVersionRecord, str]:
    action = "kms:ReEncryptTo" if operation == "ReEncrypt" else None
    key = keyrefs.require_key(tx, ctx, key_ref, keyspecs.ENCRYPT_DECRYPT, operation, action)
    chosen = keyspecs.require_encryption_algorithm(key, algorithm)
    return key, keyrefs.current_version(tx, key, ctx), chosen


def _open(
    svc: Services,
    tx: Transaction,
    ctx: RequestContext,
    blob_bytes: bytes,
    context: Mapping[str, str],
    key_ref: str | None,
    algorithm: str | None,
) -> tuple[KeyRecord, KeyVersionRecord, bytes, str]:
    """Decrypt in the caller's account: a symmetric blob names its key; RSA ciphertext needs ``key_ref``."""
    if algorithm is None or algorithm == keyspecs.SYMMETRIC_DEFAULT:
        return _open_symmetric(svc, tx, ctx, blob_bytes, context, key_ref)
    if key_ref is None:
        named = peek_key_id(blob_bytes)
        # A symmetric blob names its key, which then refuses the algorithm. Only a key that exists counts: an
        # RSA ciphertext's first bytes parse as a blob header about once in 256 (they are random).
        if named is not None and tx.get_key(named) is not None:
            return _open_symmetric(svc, tx, ctx, blob_bytes, context, key_ref)
        raise ValidationException("KeyId must not be null")
    key = keyrefs.require_key(tx, ctx, key_ref, keyspecs.ENCRYPT_DECRYPT, ctx.operation, _source_action(ctx))
    keyspecs.require_encryption_algorithm(key, algorithm)
    _refuse_context_for_asymmetric(context)
    version = keyrefs.current_version(tx, key, ctx)
    try:
        plaintext = rsa_oaep.decrypt(svc.materials.private_key(key, version), algorithm, blob_bytes)
    except DecryptionError:
        raise InvalidCiphertextException() from None  # one answer for every failure (docs/tests.md C-4)
    return key, version, plaintext, algorithm


def _open_symmetric(
    svc: Services,
    tx: Transaction,
    ctx: RequestContext,
    blob_bytes: bytes,
    context: Mapping[str, str],
    key_ref: str | None,
) -> tuple[KeyRecord, KeyVersionRecord, bytes, str]:
    blob = SymmetricBlob.decode(blob_bytes)  # RSA ciphertext without an RSA algorithm fails here, as at AWS
    found = tx.get_key(blob.key_id)
    if key_ref is not None:
        named_id = keyrefs.named_key_id(tx, ctx, key_ref, allow_alias=True)
        # A header naming a key we do not have is no blob of ours (an RSA ciphertext's first bytes parse as one
        # about once in 256): it gets the answer of any other malformed ciphertext, below.
        if named_id != blob.key_id and found is not None:
            raise IncorrectKeyException()
    if found is None or found.region != ctx.region:
        raise InvalidCiphertextException()
    ctx.audit.add_key(found.arn, found.key_spec)
    key = keystates.effective_key(tx, found, ctx.now)  # expired imported material is unusable at once
    authorization.authorize_key(tx, ctx, key, _source_action(ctx))  # the key's policy decides, in any account
    keystates.require_enabled(key)
    keyspecs.require_usage(key, keyspecs.ENCRYPT_DECRYPT, ctx.operation)
    version = tx.get_version(key.key_id, blob.version_id.hex())
    if version is None:
        raise InvalidCiphertextException()
    ctx.audit.key_material_id = metadata.key_material_id(version.version_id)
    material = svc.materials.material(key, version)
    return key, version, symmetric.decrypt(material, blob, context), keyspecs.SYMMETRIC_DEFAULT


def _material_id(key: KeyRecord, version: KeyVersionRecord) -> str | None:
    """AWS reports key material ids for symmetric encryption keys only."""
    return metadata.key_material_id(version.version_id) if key.key_spec == keyspecs.SYMMETRIC_DEFAULT else None


def _require_ciphertext(params: Params) -> bytes:
    if "CiphertextBlob" not in params:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: "
            "Member must not be null"
        )
    blob: bytes = params["CiphertextBlob"]
    return blob


@operation("Encrypt")
def encrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    plaintext: bytes = params["Plaintext"]
    context = _context(params)
    with svc.storage.read() as tx:
        key, version, algorithm = _destination(
            svc, tx, ctx, params["KeyId"], params.get("EncryptionAlgorithm"), "Encrypt"
        )
    _check_asymmetric_plaintext(svc, key, version, algorithm, len(plaintext), context)
    keyrefs.check_dry_run(params)
    blob = encrypt_under(svc, key, version, algorithm, plaintext, context)
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}


@operation("Decrypt")
def decrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    _refuse_recipient(params)
    blob = _require_ciphertext(params)
    with svc.storage.read() as tx:
        key, version, plaintext, algorithm = _open(
            svc, tx, ctx, blob, _context(params), params.get("KeyId"), params.get("EncryptionAlgorithm")
        )
        keyspecs.require_encryption_algorithm(key, params.get("EncryptionAlgorithm"))
    keyrefs.check_dry_run(params)
    result: Result = {"KeyId": key.arn, "Plaintext": plaintext, "EncryptionAlgorithm": algorithm}
    material_id = _material_id(key, version)
    if material_id is not None:
        result["KeyMaterialId"] = material_id
    return result


@operation("ReEncrypt")
def re_encrypt(svc: Services, ctx: RequestContext, params: Params) -> Result:
    blob = _require_ciphertext(params)
    destination_context = _context(params, "DestinationEncryptionContext")
    with svc.storage.read() as tx:
        source, source_version, plaintext, source_algorithm = _open(
            svc,
            tx,
            ctx,
            blob,
            _context(params, "SourceEncryptionContext"),
            params.get("SourceKeyId"),
            params.get("SourceEncryptionAlgorithm"),
        )
        keyspecs.require_encryption_algorithm(source, params.get("SourceEncryptionAlgorithm"))
        destination, destination_version, destination_algorithm = _destination(
            svc, tx, ctx, params["DestinationKeyId"], params.get("DestinationEncryptionAlgorithm"), "ReEncrypt"
        )
    _check_asymmetric_plaintext(
        svc, destination, destination_version, destination_algorithm, len(plaintext), destination_context
    )
    keyrefs.check_dry_run(params)
    new_blob = encrypt_under(
        svc, destination, destination_version, destination_algorithm, plaintext, destination_context
    )
    result: Result = {
        "CiphertextBlob": new_blob,
        "SourceKeyId": source.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": destination_algorithm,
    }
    for name, material_id in (
        ("SourceKeyMaterialId", _material_id(source, source_version)),
        ("DestinationKeyMaterialId", _material_id(destination, destination_version)),
    ):
        if material_id is not None:
            result[name] = material_id
    return result


def _data_key_length(params: Params) -> int:
    spec: str | None = params.get("KeySpec")
    count: int | None = params.get("NumberOfBytes")
    if spec is not None and count is None:
        return DATA_KEY_SPEC_BYTES[spec]
    if count is not None and spec is None:
        return count
    raise ValidationException("Please specify either number of bytes or key spec.")  # neither or both (AWS)


def _generate_data_key(svc: Services, ctx: RequestContext, params: Params) -> tuple[Result, bytes]:
    length = _data_key_length(params)
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, ctx.operation)
        if key.key_spec != keyspecs.SYMMETRIC_DEFAULT:  # data keys need a symmetric key; AWS's words (sweep)
            raise InvalidKeyUsageException("You cannot generate a data key with an asymmetric CMK")
        version = keyrefs.current_version(tx, key, ctx)
    keyrefs.check_dry_run(params)
    data_key = random_bytes(length)
    blob = encrypt_under(svc, key, version, keyspecs.SYMMETRIC_DEFAULT, data_key, _context(params))
    result: Result = {
        "CiphertextBlob": blob,
        "KeyId": key.arn,
        "KeyMaterialId": metadata.key_material_id(version.version_id),
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
    with svc.storage.read() as tx:
        authorization.authorize_account(tx, ctx)
    return {"Plaintext": random_bytes(count)}
