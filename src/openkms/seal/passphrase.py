"""Passphrase seal: the KEK is Argon2id(passphrase, salt); only the salt and costs are stored."""

from __future__ import annotations

from openkms.crypto import kdf

KIND = "passphrase"
MIN_PASSPHRASE_CHARS = 12


def new_params_json() -> str:
    return kdf.new_passphrase_params().to_json()


def kek_from_passphrase(passphrase: str, params_json: str) -> bytes:
    params = kdf.PassphraseKdfParams.from_json(params_json)
    return kdf.derive_passphrase_kek(passphrase.encode("utf-8"), params)
