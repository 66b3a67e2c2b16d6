"""Sign and Verify with SIGN_VERIFY keys: RSA (PSS, PKCS#1 v1.5), ECDSA, Ed25519 and ML-DSA.

Signatures are the standard encodings (DER ECDSA, raw RSA, 64-byte Ed25519, FIPS 204 ML-DSA), so anyone
holding the public key from GetPublicKey can verify offline. MessageType rules follow AWS: DIGEST needs a
digest of the algorithm's hash length; ED25519_SHA_512 signs RAW messages and ED25519_PH_SHA_512 64-byte DIGESTs
only; ML-DSA takes RAW or a 64-byte EXTERNAL_MU.
"""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.crypto import signatures
from openkms.crypto.errors import InvalidSignatureError
from openkms.errors import KMSInvalidSignatureException, ValidationException
from openkms.operations import keyrefs, keyspecs
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.records import KeyRecord, KeyVersionRecord

RAW = "RAW"
DIGEST = "DIGEST"
EXTERNAL_MU = "EXTERNAL_MU"
EXTERNAL_MU_BYTES = 64


def check_message(key: KeyRecord, algorithm: str, message_type: str, message: bytes) -> None:
    """AWS's MessageType rules for ``key`` and ``algorithm``, as ValidationExceptions."""
    ml_dsa = key.key_spec.startswith("ML_DSA_")
    if message_type == EXTERNAL_MU:
        if not ml_dsa:
            raise ValidationException(f"Message type {message_type} is incompatible with key spec {key.key_spec}.")
        if len(message) != EXTERNAL_MU_BYTES:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        return
    if algorithm == "ED25519_PH_SHA_512":
        if message_type != DIGEST:
            raise ValidationException(f"Message type {message_type} is incompatible with algorithm {algorithm}.")
    elif message_type == DIGEST:
        if ml_dsa:
            raise ValidationException(f"Message type {message_type} is incompatible with key spec {key.key_spec}.")
        if algorithm == "ED25519_SHA_512":
            raise ValidationException(f"Message type {message_type} is incompatible with algorithm {algorithm}.")
    if message_type == DIGEST and len(message) != signatures.digest_size(algorithm):
        raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")


def _prepare(svc: Services, ctx: RequestContext, params: Params) -> tuple[KeyRecord, KeyVersionRecord, str, str]:
    message: bytes = params["Message"]
    message_type: str = params.get("MessageType", RAW)
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.SIGN_VERIFY, ctx.operation)
        algorithm = keyspecs.require_algorithm(key, keyspecs.SIGN_VERIFY, params["SigningAlgorithm"])
        version = keyrefs.current_version(tx, key, ctx)
    check_message(key, algorithm, message_type, message)
    return key, version, algorithm, message_type


@operation("Sign")
def sign(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, version, algorithm, message_type = _prepare(svc, ctx, params)
    keyrefs.check_dry_run(params)
    private = svc.materials.private_key(key, version)
    signature = signatures.sign(private, algorithm, params["Message"], message_type)
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm}


@operation("Verify")
def verify(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, version, algorithm, message_type = _prepare(svc, ctx, params)
    public = svc.materials.private_key(key, version).public_key()
    try:
        signatures.verify(public, algorithm, params["Message"], message_type, params["Signature"])
    except InvalidSignatureError:
        raise KMSInvalidSignatureException() from None
    keyrefs.check_dry_run(params)
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}
