"""Signed digests over the chain: each one covers the records appended since the previous one.

A digest's body (canonical JSON, signed with Ed25519)::

    {"version": 1, "digestSeq": n, "fromSeq": first record covered, "toSeq": last record covered
     (fromSeq - 1 if the interval was empty), "periodStart": ..., "periodEnd": ...,
     "headHash": hash of record toSeq, "previousDigestHash": SHA-256 of the previous digest's body and
     signature, "signingKeyId": ..., "signatureAlgorithm": "ED25519_SHA_512",
     "digestIntervalSeconds": the schedule it was signed on (absent from digests signed on demand)}

``digestIntervalSeconds`` is the signer's promise that the next digest follows within that interval while
the service runs; the verifier holds a trail to it (audit/verify.py, "stale"), and an attacker cannot
relax it without breaking the signature.

Digests chain among themselves, so removing or replacing one breaks the next; the signature makes the
chain's head unforgeable without the service's key, which is what an attacker who rewrote every record
hash would need. The signing key is generated on first use and stored wrapped under the root key; its
public key is exported with ``openkms audit public-key`` so a verifier can pin it.

:func:`write_digest` is a background job step: one write transaction that holds the chain head (so the
digest covers exactly the records committed before it) and re-checks that a digest is due, so any number
of workers and nodes may run it and at most one digest per interval results.
"""

from __future__ import annotations

import base64
import hashlib

from openkms.audit.chain import GENESIS_HASH, canonical_json
from openkms.crypto import keypairs, signatures, wrap
from openkms.crypto.rand import random_bytes
from openkms.settings import AUDIT_DIGEST_INTERVAL_SECONDS
from openkms.storage.audit import DigestRow, SigningKeyRow
from openkms.storage.ports import Storage, Transaction

KEY_SPEC = "ECC_NIST_EDWARDS25519"
SIGNATURE_ALGORITHM = "ED25519_SHA_512"
BODY_VERSION = 1
DEFAULT_INTERVAL_SECONDS = AUDIT_DIGEST_INTERVAL_SECONDS  # what the server signs by default


def signing_key_binding(key_id: str) -> tuple[str, str]:
    return ("audit-signing-key", key_id)


def digest_hash(digest: DigestRow | None) -> str:
    """What the next digest's ``previousDigestHash`` must be."""
    if digest is None:
        return GENESIS_HASH
    return hashlib.sha256(f"{digest.body}\n{digest.signature}".encode()).hexdigest()


def _signing_key(tx: Transaction, root_key: bytes, now: float) -> tuple[SigningKeyRow, bytes]:
    """The newest signing key and its private PKCS#8 bytes; created on first use."""
    keys = tx.list_signing_keys()
    if keys:
        key = keys[-1]
        return key, wrap.unwrap(root_key, key.wrapped_private_key, signing_key_binding(key.key_id))
    key_id = random_bytes(16).hex()
    private = keypairs.generate_private_key(KEY_SPEC)
    public = keypairs.public_key_der(keypairs.load_private_key(KEY_SPEC, private))
    wrapped = wrap.wrap(root_key, private, signing_key_binding(key_id))
    key = SigningKeyRow(key_id, SIGNATURE_ALGORITHM, public, wrapped, now)
    tx.insert_signing_key(key)
    return key, private


def write_digest(
    storage: Storage, root_key: bytes, now: float, interval: float, force: bool = False
) -> DigestRow | None:
    """Sign a digest if the last one is at least ``interval`` seconds old (or ``force``); None if not due."""
    with storage.transaction() as tx:
        head = tx.audit_head()  # locks the head: no record can be appended until this commits
        last = tx.last_digest()
        if last is not None and not force and now - last.period_end < interval:
            return None
        if last is None and head.seq == 0 and not force:
            return None  # nothing has happened yet
        key, private = _signing_key(tx, root_key, now)
        digest_seq = 1 if last is None else last.digest_seq + 1
        from_seq = 1 if last is None else last.to_seq + 1
        fields: dict[str, object] = {} if force else {"digestIntervalSeconds": interval}
        body = canonical_json(
            {
                **fields,
                "version": BODY_VERSION,
                "digestSeq": digest_seq,
                "fromSeq": from_seq,
                "toSeq": head.seq,
                "periodStart": head.started_at if last is None else last.period_end,
                "periodEnd": now,
                "headHash": head.hash,
                "previousDigestHash": digest_hash(last),
                "signingKeyId": key.key_id,
                "signatureAlgorithm": SIGNATURE_ALGORITHM,
            }
        )
        signer = keypairs.load_private_key(KEY_SPEC, private)
        signature = signatures.sign(signer, SIGNATURE_ALGORITHM, body.encode(), "RAW")
        digest = DigestRow(digest_seq, from_seq, head.seq, now, body, base64.b64encode(signature).decode())
        tx.insert_digest(digest)
    return digest


def public_keys(storage: Storage) -> list[SigningKeyRow]:
    with storage.read() as tx:
        return tx.list_signing_keys()
