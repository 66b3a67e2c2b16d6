"""docs/tests.md C-1 (symmetric part): Wycheproof vectors routed through openkms.crypto's own wrappers.

Recorded decisions (each is asserted, none is a skip):

- AES-GCM: our wrapper takes only 96-bit nonces and 128-bit tags (all openkms uses). Vectors with any other IV
  size, valid or not, must be *rejected by design*: encrypt raises ``ValueError``, decrypt ``IntegrityError``.
- HMAC: only full-length MACs verify (KMS VerifyMac has no truncation). For truncated-tag groups we still check
  that the first bytes of our MAC equal a valid tag, and assert that verifying the truncated tag is rejected.
- HKDF: an output size above 255 * HashLen must raise ``ValueError``.
- ``acceptable`` results: the decision per flag lives in :data:`ACCEPTABLE`. The pinned files contain none
  (the summary reports 0); an ``acceptable`` vector with an unlisted flag fails until a decision is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from openkms.crypto import aead, hmac, kdf
from openkms.crypto.errors import IntegrityError, InvalidMacError
from tests.crypto.wycheproof import Summary, Tally, accepts, expect, load

# file -> flag -> True if our wrapper must accept an `acceptable` vector carrying that flag, False if reject.
ACCEPTABLE: dict[str, dict[str, bool]] = {
    "aes_gcm_test.json": {},
    "hkdf_sha256_test.json": {},
    "hmac_sha224_test.json": {},
    "hmac_sha256_test.json": {},
    "hmac_sha384_test.json": {},
    "hmac_sha512_test.json": {},
}
HMAC_FILES = {
    "hmac_sha224_test.json": "HMAC_SHA_224",
    "hmac_sha256_test.json": "HMAC_SHA_256",
    "hmac_sha384_test.json": "HMAC_SHA_384",
    "hmac_sha512_test.json": "HMAC_SHA_512",
}


SUMMARY = Summary("Wycheproof C-1 summary", width=24)


@pytest.fixture(scope="module", autouse=True)
def c1_summary() -> Iterator[None]:
    """Print the per-file C-1 figures after the module (visible with -s or -rP).

    Each test also asserts its own file ran vectors; under pytest-xdist a worker prints only the files it ran.
    """
    yield
    SUMMARY.report()


def _expect(tally: Tally, name: str, test: dict[str, Any], accepted: bool) -> None:
    expect(tally, ACCEPTABLE[name], test, accepted)


def test_aes_gcm() -> None:
    name = "aes_gcm_test.json"
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        key, iv, aad, msg = (bytes.fromhex(test[f]) for f in ("key", "iv", "aad", "msg"))
        ct_tag = bytes.fromhex(test["ct"] + test["tag"])
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            # Decision: unsupported parameters are refused by both directions, whatever the vector's result.
            enc_refused = not accepts(ValueError, aead.aes_gcm_encrypt, key, iv, msg, aad)
            dec_refused = not accepts(IntegrityError, aead.aes_gcm_decrypt, key, iv, ct_tag, aad)
            if not (enc_refused and dec_refused):
                tally.failures.append(f"tcId {test['tcId']}: {group['ivSize']}-bit IV was not rejected")
            tally.rejected_by_design += 1
            continue
        try:
            plaintext = aead.aes_gcm_decrypt(key, iv, ct_tag, aad)
        except IntegrityError:
            accepted = False
        else:
            accepted = plaintext == msg
        _expect(tally, name, test, accepted)
        if test["result"] == "valid" and aead.aes_gcm_encrypt(key, iv, msg, aad) != ct_tag:
            tally.failures.append(f"tcId {test['tcId']}: encrypt output differs")
    SUMMARY.finish(name, tally)


def test_hkdf_sha256() -> None:
    name = "hkdf_sha256_test.json"
    tally = Tally()
    for _group, test in load(name):
        tally.run += 1
        ikm, salt, info = (bytes.fromhex(test[f]) for f in ("ikm", "salt", "info"))
        try:
            okm = kdf.hkdf_sha256(ikm, salt, info, test["size"])
        except ValueError:
            accepted = False
        else:
            accepted = okm == bytes.fromhex(test["okm"])
        _expect(tally, name, test, accepted)
    SUMMARY.finish(name, tally)


@pytest.mark.parametrize("name", sorted(HMAC_FILES))
def test_hmac(name: str) -> None:
    algorithm = HMAC_FILES[name]
    tally = Tally()
    for group, test in load(name):
        tally.run += 1
        key, msg, tag = (bytes.fromhex(test[f]) for f in ("key", "msg", "tag"))
        ours = hmac.hmac_generate(algorithm, key, msg)
        verified = accepts(InvalidMacError, hmac.hmac_verify, algorithm, key, msg, tag)
        if group["tagSize"] == len(ours) * 8:
            _expect(tally, name, test, verified and ours == tag)
            continue
        # Decision: truncated MACs never verify. Generation is still checked against the truncated tag.
        _expect(tally, name, test, ours[: len(tag)] == tag)
        if verified:
            tally.failures.append(f"tcId {test['tcId']}: a truncated MAC verified")
        tally.rejected_by_design += test["result"] == "valid"
    SUMMARY.finish(name, tally)
