"""The audit trail's signing keys as files: PEM out (``openkms audit public-key``), PEM or DER in (``--public-key``).

A PEM block is preceded by ``Key-Id:``, ``Algorithm:`` and ``Created:`` lines: RFC 7468 lets text precede the
encapsulation boundary, so OpenSSL reads the file as it is, and ``verify`` learns which id the key goes by.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from openkms.audit import digests as audit_digests
from openkms.cli.common import CliValidationError, iso
from openkms.crypto import keypairs
from openkms.crypto.errors import InvalidKeyError
from openkms.storage.audit import SigningKeyRow

_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.S)
_KEY_ID_LINE = re.compile(r"^Key-Id:[ \t]*(\S+)[ \t]*$", re.M)


def pem(der: bytes) -> str:
    """DER SubjectPublicKeyInfo as a PEM ``PUBLIC KEY`` block."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def labelled_pem(key: SigningKeyRow) -> str:
    """What ``openkms audit public-key`` prints for one key."""
    return f"Key-Id: {key.key_id}\nAlgorithm: {key.algorithm}\nCreated: {iso(key.created_at)}\n{pem(key.public_key)}"


def load_public_keys(path: Path) -> list[tuple[str | None, bytes]]:
    """(key id if the file names one, DER) for each key in a PEM or DER file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliValidationError(f"--public-key {path}: cannot read it ({exc.strerror or exc})") from None
    found: list[tuple[str | None, bytes]] = []
    if b"-----BEGIN" in data:
        text = data.decode("ascii", errors="replace")
        position = 0
        for block in _PEM_BLOCK.finditer(text):
            named = _KEY_ID_LINE.findall(text[position : block.start()])
            try:
                der = base64.b64decode("".join(block.group(1).split()), validate=True)
            except binascii.Error:
                raise CliValidationError(f"--public-key {path}: a PEM block is not valid base64") from None
            found.append((named[-1] if named else None, der))
            position = block.end()
        if not found:
            raise CliValidationError(f"--public-key {path}: no PUBLIC KEY block in it")
    else:
        found.append((None, data))
    for _, der in found:
        try:
            keypairs.load_public_key(audit_digests.KEY_SPEC, der)
        except InvalidKeyError:
            raise CliValidationError(f"--public-key {path}: not an Ed25519 public key (SubjectPublicKeyInfo)") from None
    return found


def pinned_mapping(pinned: list[tuple[str | None, bytes]], known: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """Key id -> trusted DER: ids the files name, and ids the trail lists for exactly those keys.

    The trail's own list only tells which id a trusted key goes by; a key that is not pinned never gets in.
    """
    mapping = {key_id: der for key_id, der in pinned if key_id}
    trusted = {der for _, der in pinned}
    for key_id, der in known:
        if der in trusted:
            mapping.setdefault(key_id, der)
    return mapping


def listed_keys(listed: Any) -> list[tuple[str, bytes]]:
    """The (key id, DER) pairs an export's header lists; what does not decode is left out (it cannot match)."""
    found: list[tuple[str, bytes]] = []
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            found.append((str(item.get("keyId")), base64.b64decode(str(item.get("publicKey", "")), validate=True)))
        except binascii.Error:
            continue
    return found
