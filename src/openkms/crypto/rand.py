"""The one source of randomness for keys, salts and nonces.

Everything random goes through here so that a grep finds every use, and deterministic tests pass explicit
values through the ``_from_parts``-style seams instead of patching this module.
"""

from __future__ import annotations

import os


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    if n < 0:
        raise ValueError("n must be non-negative")
    return os.urandom(n)
