"""Encapsulate and Decapsulate with ML-KEM keys (FIPS 203, KeyUsage ENCAPSULATE_DECAPSULATE).

Encapsulate needs only the public key, so a caller can also encapsulate offline with the key from
GetPublicKey; Decapsulate recovers the same shared secret with the private key, which never leaves.
"""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.crypto import kem
from openkms.crypto.errors import DecryptionError
from openkms.errors import InvalidCiphertextException
from openkms.operations import keyrefs, keyspecs
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.records import KeyRecord, KeyVersionRecord


def _kem_key(svc: Services, ctx: RequestContext, params: Params) -> tuple[KeyRecord, KeyVersionRecord, str]:
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.ENCAPSULATE_DECAPSULATE, ctx.operation)
        algorithm = keyspecs.require_algorithm(key, keyspecs.ENCAPSULATE_DECAPSULATE, params["EncapsulationAlgorithm"])
        version = keyrefs.current_version(tx, key, ctx)
    return key, version, algorithm


@operation("Encapsulate")
def encapsulate(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, version, algorithm = _kem_key(svc, ctx, params)
    keyrefs.check_dry_run(params)
    secret, ciphertext = kem.encapsulate(svc.materials.private_key(key, version).public_key())
    return {
        "KeyId": key.arn,
        "SharedSecret": secret,
        "SharedSecretCiphertextBlob": ciphertext,
        "EncapsulationAlgorithm": algorithm,
    }


@operation("Decapsulate")
def decapsulate(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, version, algorithm = _kem_key(svc, ctx, params)
    private = svc.materials.private_key(key, version)
    try:
        secret = kem.decapsulate(private, params["SharedSecretCiphertextBlob"])
    except DecryptionError:
        raise InvalidCiphertextException() from None
    keyrefs.check_dry_run(params)
    return {"KeyId": key.arn, "SharedSecret": secret, "EncapsulationAlgorithm": algorithm}
