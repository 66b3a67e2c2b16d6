"""Key-file seal (dev mode): the KEK is 32 random bytes in a 0600 file inside the data directory.

Anyone who can read the data directory can unseal; that is why it is the dev-mode seal only.
"""

from __future__ import annotations

import os
from pathlib import Path

from openkms.crypto.rand import random_bytes
from openkms.seal.base import UnsealError

KIND = "keyfile"
KEYFILE_NAME = "root.keyfile"
_KEK_BYTES = 32


def create_keyfile(path: Path) -> bytes:
    """Write a new KEK with mode 0600; refuses to overwrite an existing file."""
    kek = random_bytes(_KEK_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, kek.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return kek


def read_keyfile(path: Path) -> bytes:
    try:
        text = path.read_text("ascii").strip()
        kek = bytes.fromhex(text)
    except (OSError, ValueError) as exc:
        raise UnsealError(f"cannot read the key file {path}: {type(exc).__name__}") from None
    if len(kek) != _KEK_BYTES:
        raise UnsealError(f"the key file {path} does not hold a 256-bit key")
    return kek
