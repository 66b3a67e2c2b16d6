"""DeriveSharedSecret: ECDH between a KEY_AGREEMENT key's private key and a caller's public key.

The shared secret is the raw ECDH output (the x-coordinate), as AWS returns it; callers run their own
KDF over it. The caller's key must be a DER SubjectPublicKeyInfo on the same curve.
"""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.crypto import agreement, keypairs
from openkms.crypto.errors import InvalidKeyError
from openkms.errors import UnsupportedOperationException, ValidationException
from openkms.operations import keyrefs, keyspecs
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services


@operation("DeriveSharedSecret")
def derive_shared_secret(svc: Services, ctx: RequestContext, params: Params) -> Result:
    if params.get("Recipient") is not None:
        raise UnsupportedOperationException("Recipient (Nitro Enclaves attestation) is not supported by openkms.")
    with svc.storage.read() as tx:
        key = keyrefs.require_key(tx, ctx, params["KeyId"], keyspecs.KEY_AGREEMENT, "DeriveSharedSecret")
        algorithm = keyspecs.require_algorithm(key, keyspecs.KEY_AGREEMENT, params["KeyAgreementAlgorithm"])
        version = keyrefs.current_version(tx, key, ctx)
    try:
        peer = keypairs.load_public_key(key.key_spec, params["PublicKey"])
    except InvalidKeyError:
        if keypairs.spec_of_public_key(params["PublicKey"]) is None:
            # A key that does not parse: AWS answers with an empty message (recorded responses, issue 18 item 12).
            raise ValidationException("", empty_message_field=True) from None
        raise ValidationException(
            f"PublicKey must be a DER-encoded SubjectPublicKeyInfo on the curve of key spec {key.key_spec}."
        ) from None
    keyrefs.check_dry_run(params)
    private = svc.materials.private_key(key, version)
    try:
        secret = agreement.ecdh(private, peer)
    except ValueError:
        raise ValidationException(f"PublicKey does not fit key spec {key.key_spec}.") from None
    return {"KeyId": key.arn, "SharedSecret": secret, "KeyAgreementAlgorithm": algorithm, "KeyOrigin": key.origin}
