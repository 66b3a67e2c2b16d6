"""GenerateMac and VerifyMac with HMAC keys (HMAC_224/256/384/512, KeyUsage GENERATE_VERIFY_MAC).

The MAC is plain RFC 2104 HMAC of the message, full length, so it can be checked offline by anyone who
holds the key material: which, by design, nobody outside the service does.
"""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.crypto import hmac
from openkms.crypto.errors import InvalidMacError
from openkms.errors import KMSInvalidMacException
from openkms.operations import keyrefs, keyspecs
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services
from openkms.storage.records import KeyRecord


def _mac_key(svc: Services, ctx: RequestContext, params: Params) -> tuple[KeyRecord, bytes, str]:
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.GENERATE_VERIFY_MAC, ctx.operation)
        algorithm = keyspecs.require_algorithm(key, keyspecs.GENERATE_VERIFY_MAC, params["MacAlgorithm"])
        version = keyrefs.current_version(tx, key, ctx)
    return key, svc.materials.material(key, version), algorithm


@operation("GenerateMac")
def generate_mac(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, material, algorithm = _mac_key(svc, ctx, params)
    keyrefs.check_dry_run(params)
    mac = hmac.hmac_generate(algorithm, material, params["Message"])
    return {"Mac": mac, "MacAlgorithm": algorithm, "KeyId": key.arn}


@operation("VerifyMac")
def verify_mac(svc: Services, ctx: RequestContext, params: Params) -> Result:
    key, material, algorithm = _mac_key(svc, ctx, params)
    try:
        hmac.hmac_verify(algorithm, material, params["Message"], params["Mac"])
    except InvalidMacError:
        raise KMSInvalidMacException() from None
    keyrefs.check_dry_run(params)
    return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": algorithm}
