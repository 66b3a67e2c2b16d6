"""Generate the frozen golden vectors for blob v1 (blob_v1.json) and wrap v1 (wrap_v1.json).

Run once per format: ``.venv/bin/python tests/vectors/generate_blob_v1.py``. It refuses to overwrite an existing
file, because a released format must keep decrypting the bytes it once wrote (docs/tests.md C-9); a new format
version gets new files. ``--check`` regenerates in memory and compares with the stored files.

Every input is derived from SHA-256 of a readable label, so the vectors are reproducible without randomness.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from openkms.crypto import symmetric, wrap
from openkms.crypto.context_aad import encode_encryption_context

HERE = Path(__file__).resolve().parent
BLOB_FILE = HERE / "blob_v1.json"
WRAP_FILE = HERE / "wrap_v1.json"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/"


def det(label: str, length: int) -> bytes:
    """``length`` deterministic bytes: SHA-256 of ``label`` and a counter, concatenated."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"openkms vectors v1|{label}|{counter}".encode()).digest()
        counter += 1
    return out[:length]


BLOB_CASES: list[tuple[str, dict[str, str], bytes]] = [
    ("empty context, 1-byte plaintext", {}, b"\x00"),
    ("one pair", {"purpose": "test"}, b"hello, openkms"),
    (
        "unicode; code-point order differs from UTF-16 order",
        {"\U0001f511": "key emoji", "\uff61": "halfwidth", "caf\u00e9": "cr\u00e8me br\u00fbl\u00e9e", "a": ""},
        det("unicode plaintext", 24),
    ),
    (
        "many pairs, given out of order",
        {f"k{i:02d}": f"value {i}" * (i % 4) for i in (7, 3, 19, 0, 11, 15, 1, 8, 12, 18, 5, 2, 16, 9, 14, 6)},
        det("many plaintext", 100),
    ),
    ("prefix keys and empty value", {"ab": "c", "a": "bc", "abc": "", "aws:s3:arn": "x"}, det("prefix", 33)),
    ("4096-byte plaintext (Encrypt maximum)", {"size": "max"}, det("max plaintext", 4096)),
    ("32-byte data key (GenerateDataKey AES_256)", {"app": "orders", "tenant": "42"}, det("data key", 32)),
    ("empty plaintext: the format permits it, the API does not", {}, b""),
]

# (name, key label, binding, secret). The two "confusable" cases share key and nonce on purpose: only the
# binding differs, and the outputs must differ.
WRAP_CASES: list[tuple[str, str, list[str], bytes]] = [
    (
        "key material",
        "material",
        ["kms-key-material", KEY_ARN + "00000000-0000-4000-8000-000000000001", "ab" * 16],
        det("material secret", 32),
    ),
    (
        "access-key secret",
        "access key",
        ["access-key-secret", "AKIAOPENKMSEXAMPLE01"],
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("root key under a seal KEK", "seal", ["openkms-root-key", "passphrase"], det("root secret", 32)),
    ("confusable binding 1", "confusable", ["a", "bc"], b"same secret"),
    ("confusable binding 2", "confusable", ["ab", "c"], b"same secret"),
    ("unicode binding", "unicode", ["\u00e9t\u00e9", "\U0001f511"], det("unicode secret", 17)),
    ("single element, empty secret", "single", ["x"], b""),
    ("empty element", "empty element", ["", "y"], det("empty element secret", 64)),
]


def blob_vectors() -> list[dict[str, Any]]:
    cases = []
    for index, (name, context, plaintext) in enumerate(BLOB_CASES):
        material = det(f"blob {index} material", 32)
        key_id = str(uuid.UUID(bytes=det(f"blob {index} key id", 16), version=4))
        version_id = det(f"blob {index} version", 16)
        salt = det(f"blob {index} salt", 32)
        nonce = det(f"blob {index} nonce", 12)
        blob = symmetric._encrypt_from_parts(material, key_id, version_id, plaintext, context, salt, nonce)
        cases.append(
            {
                "name": name,
                "key_material_hex": material.hex(),
                "key_id": key_id,
                "version_id_hex": version_id.hex(),
                "salt_hex": salt.hex(),
                "nonce_hex": nonce.hex(),
                "encryption_context": context,
                "context_aad_hex": encode_encryption_context(context).hex(),
                "plaintext_hex": plaintext.hex(),
                "blob_hex": blob.hex(),
            }
        )
    return cases


def wrap_vectors() -> list[dict[str, Any]]:
    cases = []
    for name, key_label, binding, secret in WRAP_CASES:
        root_key = det(f"wrap {key_label} root key", 32)
        nonce = det(f"wrap {key_label} nonce", 12)
        cases.append(
            {
                "name": name,
                "root_key_hex": root_key.hex(),
                "binding": binding,
                "binding_aad_hex": wrap.encode_binding(binding).hex(),
                "nonce_hex": nonce.hex(),
                "secret_hex": secret.hex(),
                "wrapped_hex": wrap._wrap_with_nonce(root_key, secret, binding, nonce).hex(),
            }
        )
    return cases


def document(fmt: str, cases: list[dict[str, Any]], date: str) -> dict[str, Any]:
    return {
        "provenance": (
            f"generated by tests/vectors/generate_blob_v1.py on {date}, openkms 0.1.0, format {fmt}; "
            "frozen: never regenerate, add new files instead"
        ),
        "format": fmt,
        "spec": "docs/formats.md",
        "cases": cases,
    }


def main(argv: list[str]) -> int:
    outputs = [(BLOB_FILE, "blob v1", blob_vectors()), (WRAP_FILE, "wrap v1", wrap_vectors())]
    if "--check" in argv:
        ok = all(json.loads(path.read_text("utf-8"))["cases"] == cases for path, _, cases in outputs)
        print("stored vectors match the generator" if ok else "MISMATCH between stored vectors and generator")
        return 0 if ok else 1
    date = datetime.datetime.now(datetime.UTC).date().isoformat()
    for path, fmt, cases in outputs:
        if path.exists():
            print(f"{path.name} exists and is frozen; not overwriting", file=sys.stderr)
            continue
        doc = document(fmt, cases, date)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path.name} ({len(cases)} cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
