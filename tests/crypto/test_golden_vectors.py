"""docs/tests.md C-9: the frozen blob v1 and wrap v1 fixtures must decrypt in every build, forever.

Three checks per case: our decrypt recovers the plaintext; our deterministic seam reproduces the exact bytes;
and an independent verifier, written from docs/formats.md with raw pyca primitives and no openkms.crypto code,
opens the same bytes, so a bug shared by our encoder and decoder cannot hide.
"""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.crypto import symmetric, wrap
from openkms.crypto.blob import SymmetricBlob
from openkms.crypto.context_aad import encode_encryption_context

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _cases(name: str) -> list[dict[str, Any]]:
    document = json.loads((VECTORS / name).read_text("utf-8"))
    assert "frozen: never regenerate" in document["provenance"]
    cases: list[dict[str, Any]] = document["cases"]
    assert len(cases) >= 8
    return cases


BLOB_CASES = _cases("blob_v1.json")
WRAP_CASES = _cases("wrap_v1.json")


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


# The independent verifiers: docs/formats.md, re-implemented by slicing bytes. Do not "simplify" these
# into calls to openkms.crypto; their value is that they share no code with it.


def _independent_context(ctx: dict[str, str]) -> bytes:
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in ctx.items())
    out = struct.pack(">H", len(pairs))
    for k, v in pairs:
        out += struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v
    return out


def _independent_blob_open(material: bytes, blob: bytes, ctx: dict[str, str]) -> tuple[str, bytes, bytes]:
    """Return (key id, version id, plaintext) of a blob v1, using pyca directly."""
    assert blob[0] == 0x01
    key_id = str(uuid.UUID(bytes=blob[1:17]))
    version_id, salt, nonce = blob[17:33], blob[33:65], blob[65:77]
    header, body = blob[:77], blob[77:]
    dek = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"openkms symmetric v1").derive(material)
    plaintext = AESGCM(dek).decrypt(nonce, body, header + _independent_context(ctx))
    return key_id, version_id, plaintext


def _independent_unwrap(root_key: bytes, wrapped: bytes, binding: list[str]) -> bytes:
    assert wrapped[0] == 0x01
    aad = b"\x01" + struct.pack(">I", len(binding))
    for element in binding:
        data = element.encode("utf-8")
        aad += struct.pack(">I", len(data)) + data
    return AESGCM(root_key).decrypt(wrapped[1:13], wrapped[13:], aad)


@pytest.mark.parametrize("case", BLOB_CASES, ids=_ids(BLOB_CASES))
def test_blob_v1_decrypts(case: dict[str, Any]) -> None:
    blob = SymmetricBlob.decode(bytes.fromhex(case["blob_hex"]))
    assert blob.key_id == case["key_id"]
    assert blob.version_id.hex() == case["version_id_hex"]
    material = bytes.fromhex(case["key_material_hex"])
    assert symmetric.decrypt(material, blob, case["encryption_context"]).hex() == case["plaintext_hex"]


@pytest.mark.parametrize("case", BLOB_CASES, ids=_ids(BLOB_CASES))
def test_blob_v1_bytes_are_reproduced(case: dict[str, Any]) -> None:
    produced = symmetric._encrypt_from_parts(
        bytes.fromhex(case["key_material_hex"]),
        case["key_id"],
        bytes.fromhex(case["version_id_hex"]),
        bytes.fromhex(case["plaintext_hex"]),
        dict(reversed(case["encryption_context"].items())),
        bytes.fromhex(case["salt_hex"]),
        bytes.fromhex(case["nonce_hex"]),
    )
    assert produced.hex() == case["blob_hex"]
    assert encode_encryption_context(case["encryption_context"]).hex() == case["context_aad_hex"]


@pytest.mark.parametrize("case", BLOB_CASES, ids=_ids(BLOB_CASES))
def test_blob_v1_independent_verifier(case: dict[str, Any]) -> None:
    ctx = case["encryption_context"]
    assert _independent_context(ctx).hex() == case["context_aad_hex"]
    blob = bytes.fromhex(case["blob_hex"])
    key_id, version_id, plaintext = _independent_blob_open(bytes.fromhex(case["key_material_hex"]), blob, ctx)
    assert key_id == case["key_id"]
    assert version_id.hex() == case["version_id_hex"]
    assert plaintext.hex() == case["plaintext_hex"]
    assert (blob[33:65].hex(), blob[65:77].hex()) == (case["salt_hex"], case["nonce_hex"])


@pytest.mark.parametrize("case", WRAP_CASES, ids=_ids(WRAP_CASES))
def test_wrap_v1_unwraps(case: dict[str, Any]) -> None:
    secret = wrap.unwrap(bytes.fromhex(case["root_key_hex"]), bytes.fromhex(case["wrapped_hex"]), case["binding"])
    assert secret.hex() == case["secret_hex"]


@pytest.mark.parametrize("case", WRAP_CASES, ids=_ids(WRAP_CASES))
def test_wrap_v1_bytes_are_reproduced(case: dict[str, Any]) -> None:
    produced = wrap._wrap_with_nonce(
        bytes.fromhex(case["root_key_hex"]),
        bytes.fromhex(case["secret_hex"]),
        case["binding"],
        bytes.fromhex(case["nonce_hex"]),
    )
    assert produced.hex() == case["wrapped_hex"]
    assert wrap.encode_binding(case["binding"]).hex() == case["binding_aad_hex"]


@pytest.mark.parametrize("case", WRAP_CASES, ids=_ids(WRAP_CASES))
def test_wrap_v1_independent_verifier(case: dict[str, Any]) -> None:
    wrapped = bytes.fromhex(case["wrapped_hex"])
    assert wrapped[1:13].hex() == case["nonce_hex"]
    secret = _independent_unwrap(bytes.fromhex(case["root_key_hex"]), wrapped, case["binding"])
    assert secret.hex() == case["secret_hex"]


def test_confusable_wrap_vectors_differ() -> None:
    by_name = {case["name"]: case for case in WRAP_CASES}
    first, second = by_name["confusable binding 1"], by_name["confusable binding 2"]
    assert (first["root_key_hex"], first["nonce_hex"]) == (second["root_key_hex"], second["nonce_hex"])
    assert first["wrapped_hex"] != second["wrapped_hex"]
