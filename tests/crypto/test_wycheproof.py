"""TESTS.md C-1 (symmetric part): Wycheproof vectors routed through openkms.crypto's own wrappers.

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

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openkms.crypto import aead, hmac, kdf
from openkms.crypto.errors import IntegrityError, InvalidMacError

WYCHEPROOF = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "wycheproof"

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


@dataclass
class Tally:
    """One row of the C-1 report."""

    run: int = 0
    failures: list[str] = field(default_factory=list)
    acceptable_accepted: int = 0
    acceptable_rejected: int = 0
    rejected_by_design: int = 0

    def row(self, name: str) -> str:
        return (
            f"{name:24} run={self.run:4} failed={len(self.failures)} acceptable-accepted={self.acceptable_accepted} "
            f"acceptable-rejected={self.acceptable_rejected} rejected-by-design={self.rejected_by_design}"
        )


SUMMARY: dict[str, Tally] = {}


@pytest.fixture(scope="module", autouse=True)
def c1_summary() -> Iterator[None]:
    """Print the per-file C-1 figures after the module (visible with -s or -rP).

    Each test also asserts its own file ran vectors; under pytest-xdist a worker prints only the files it ran.
    """
    yield
    print("\nWycheproof C-1 summary")
    for name in sorted(SUMMARY):
        print(SUMMARY[name].row(name))
    assert all(tally.run > 0 for tally in SUMMARY.values())


def _load(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    path = WYCHEPROOF / name
    if not path.exists():
        pytest.skip(f"Wycheproof vectors not found at {path.resolve()} (expected ../shared/vectors beside the repo)")
    data = json.loads(path.read_text("utf-8"))
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def _raises(error: type[Exception], call: Callable[..., object], *args: object) -> bool:
    try:
        call(*args)
    except error:
        return True
    return False


def _expect(tally: Tally, name: str, test: dict[str, Any], accepted: bool) -> None:
    """Compare our verdict with the vector's; `acceptable` goes through the recorded decision."""
    result = test["result"]
    tc = f"tcId {test['tcId']}"
    if result == "acceptable":
        decisions = ACCEPTABLE[name]
        flags = [flag for flag in test["flags"] if flag in decisions]
        if not flags:
            tally.failures.append(f"{tc}: acceptable with flags {test['flags']} has no recorded decision")
            return
        want = decisions[flags[0]]
        if accepted != want:
            tally.failures.append(f"{tc}: acceptable flag {flags[0]}: decision {want}, wrapper {accepted}")
        tally.acceptable_accepted += accepted
        tally.acceptable_rejected += not accepted
    elif accepted != (result == "valid"):
        tally.failures.append(f"{tc}: expected {result}, wrapper {'accepted' if accepted else 'rejected'}")


def _finish(name: str, tally: Tally) -> None:
    SUMMARY[name] = tally
    assert tally.run > 0
    assert not tally.failures, "\n".join(tally.failures[:20])


def test_aes_gcm() -> None:
    name = "aes_gcm_test.json"
    tally = Tally()
    for group, test in _load(name):
        tally.run += 1
        key, iv, aad, msg = (bytes.fromhex(test[f]) for f in ("key", "iv", "aad", "msg"))
        ct_tag = bytes.fromhex(test["ct"] + test["tag"])
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            # Decision: unsupported parameters are refused by both directions, whatever the vector's result.
            enc_refused = _raises(ValueError, aead.aes_gcm_encrypt, key, iv, msg, aad)
            dec_refused = _raises(IntegrityError, aead.aes_gcm_decrypt, key, iv, ct_tag, aad)
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
    _finish(name, tally)


def test_hkdf_sha256() -> None:
    name = "hkdf_sha256_test.json"
    tally = Tally()
    for _group, test in _load(name):
        tally.run += 1
        ikm, salt, info = (bytes.fromhex(test[f]) for f in ("ikm", "salt", "info"))
        try:
            okm = kdf.hkdf_sha256(ikm, salt, info, test["size"])
        except ValueError:
            accepted = False
        else:
            accepted = okm == bytes.fromhex(test["okm"])
        _expect(tally, name, test, accepted)
    _finish(name, tally)


@pytest.mark.parametrize("name", sorted(HMAC_FILES))
def test_hmac(name: str) -> None:
    algorithm = HMAC_FILES[name]
    tally = Tally()
    for group, test in _load(name):
        tally.run += 1
        key, msg, tag = (bytes.fromhex(test[f]) for f in ("key", "msg", "tag"))
        ours = hmac.hmac_generate(algorithm, key, msg)
        verified = not _raises(InvalidMacError, hmac.hmac_verify, algorithm, key, msg, tag)
        if group["tagSize"] == len(ours) * 8:
            _expect(tally, name, test, verified and ours == tag)
            continue
        # Decision: truncated MACs never verify. Generation is still checked against the truncated tag.
        _expect(tally, name, test, ours[: len(tag)] == tag)
        if verified:
            tally.failures.append(f"tcId {test['tcId']}: a truncated MAC verified")
        tally.rejected_by_design += test["result"] == "valid"
    _finish(name, tally)
