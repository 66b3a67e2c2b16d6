"""GetPublicKey: the DER SubjectPublicKeyInfo of an asymmetric key, with its spec, usage and algorithms."""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.crypto import keypairs
from openkms.errors import UnsupportedOperationException
from openkms.operations import keyrefs, keyspecs, keystates
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services


@operation("GetPublicKey")
def get_public_key(svc: Services, ctx: RequestContext, params: Params) -> Result:
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=True)
        keystates.require_enabled(key)
        if not keyspecs.info(key.key_spec).asymmetric:
            # No message field, as AWS answers a symmetric or HMAC key here (an AWS-checked emulator's suite,
            # floci's, pins it; AWS's spec refusals of RotateKeyOnDemand are recorded alike).
            raise UnsupportedOperationException()
        version = keyrefs.current_version(tx, key, ctx)
    public_der = keypairs.public_key_der(svc.materials.private_key(key, version))
    return {
        "KeyId": key.arn,
        "PublicKey": public_der,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
        **keyspecs.algorithm_fields(key.key_spec, key.key_usage),
    }
