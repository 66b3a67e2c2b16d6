"""HMAC wrapper: KMS algorithm names, RFC 4231 known answers, verify raises."""

from __future__ import annotations

import pytest

from openkms.crypto import hmac
from openkms.crypto.errors import InvalidMacError

# RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
RFC4231_CASE_2 = {
    "HMAC_SHA_224": "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
    "HMAC_SHA_256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "HMAC_SHA_384": "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e 8e2240ca5e69e2c78b3239ecfab21649",
    "HMAC_SHA_512": (
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        + "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    ),
}


@pytest.mark.parametrize(("algorithm", "expected"), sorted(RFC4231_CASE_2.items()))
def test_known_answer_and_verify(algorithm: str, expected: str) -> None:
    mac = hmac.hmac_generate(algorithm, b"Jefe", b"what do ya want for nothing?")
    assert mac == bytes.fromhex(expected)
    hmac.hmac_verify(algorithm, b"Jefe", b"what do ya want for nothing?", mac)


@pytest.mark.parametrize("algorithm", sorted(hmac.MAC_ALGORITHMS))
def test_verify_raises(algorithm: str) -> None:
    mac = hmac.hmac_generate(algorithm, b"k" * 32, b"message")
    wrong = [mac[:-1], mac + b"\x00", bytes([mac[0] ^ 1]) + mac[1:], b"", mac[: len(mac) // 2]]
    for candidate in wrong:
        with pytest.raises(InvalidMacError):
            hmac.hmac_verify(algorithm, b"k" * 32, b"message", candidate)
    with pytest.raises(InvalidMacError):
        hmac.hmac_verify(algorithm, b"k" * 32, b"messagE", mac)


@pytest.mark.parametrize("algorithm", ["HMAC_SHA_1", "hmac_sha_256", "SHA_256", ""])
def test_unknown_algorithm(algorithm: str) -> None:
    with pytest.raises(ValueError):
        hmac.hmac_generate(algorithm, b"k", b"m")
    with pytest.raises(ValueError):
        hmac.hmac_verify(algorithm, b"k", b"m", b"")
