"""GenerateDataKeyPair(WithoutPlaintext): a fresh key pair whose private key comes back encrypted under a
symmetric KMS key (our ordinary ciphertext blob, so Decrypt opens it), plus the public key.

The private key is PKCS#8 DER and the public key DER SubjectPublicKeyInfo, as AWS returns them.
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.context import RequestContext
from openkms.crypto import keypairs
from openkms.errors import UnsupportedOperationException
from openkms.operations import keyrefs, keyspecs, metadata
from openkms.operations.encryption import encrypt_under
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services


def _generate(svc: Services, ctx: RequestContext, params: Params) -> tuple[Result, bytes]:
    if params.get("Recipient") is not None:
        raise UnsupportedOperationException("Recipient (Nitro Enclaves attestation) is not supported by openkms.")
    pair_spec: str = params["KeyPairSpec"]
    if pair_spec not in keypairs.SUPPORTED_SPECS:
        reason = "SM2 is offered only in AWS China Regions" if pair_spec == "SM2" else "its crypto library lacks it"
        raise UnsupportedOperationException(f"KeyPairSpec {pair_spec} is not supported by openkms ({reason}).")
    context: Mapping[str, str] = params.get("EncryptionContext") or {}
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, ctx.operation)
        keyspecs.require_encryption_algorithm(key, None)  # the private key is wrapped by a symmetric key
        version = keyrefs.current_version(tx, key, ctx)
    keyrefs.check_dry_run(params)
    private_der = keypairs.generate_private_key(pair_spec)
    public_der = keypairs.public_key_der(keypairs.load_private_key(pair_spec, private_der))
    blob = encrypt_under(svc, key, version, keyspecs.SYMMETRIC_DEFAULT, private_der, context)
    result: Result = {
        "PrivateKeyCiphertextBlob": blob,
        "PublicKey": public_der,
        "KeyId": key.arn,
        "KeyPairSpec": pair_spec,
        "KeyMaterialId": metadata.key_material_id(version.version_id),
    }
    return result, private_der


@operation("GenerateDataKeyPair")
def generate_data_key_pair(svc: Services, ctx: RequestContext, params: Params) -> Result:
    result, private_der = _generate(svc, ctx, params)
    return {**result, "PrivateKeyPlaintext": private_der}


@operation("GenerateDataKeyPairWithoutPlaintext")
def generate_data_key_pair_without_plaintext(svc: Services, ctx: RequestContext, params: Params) -> Result:
    result, _ = _generate(svc, ctx, params)
    return result
