"""Benchmark-only hook: the server's symmetric encrypt also makes one RSA-2048 PSS signature first.

keytypes.py starts a second, *control* server with this directory on ``PYTHONPATH`` and
``OPENKMS_BENCH_SLOW_ENCRYPT=1``. Python's ``site`` module imports ``sitecustomize`` at start-up, in the
server and in each worker it spawns, so Encrypt there costs an Encrypt plus an RSA signature. That control
answers one question: does a request whose crypto is as slow as RSA-2048's cost more *around* the crypto,
whatever the operation? (It does; docs/benchmarks.md, "Key types".) Nothing in ``src/`` knows about this
file, and without the variable it does nothing.
"""

from __future__ import annotations

import os
from typing import Any

if os.environ.get("OPENKMS_BENCH_SLOW_ENCRYPT") == "1":
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from openkms.crypto import symmetric

    _KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    _MESSAGE = os.urandom(32)
    _encrypt = symmetric.encrypt

    def _encrypt_after_rsa_signature(*args: Any, **kwargs: Any) -> Any:
        _KEY.sign(_MESSAGE, _PSS, hashes.SHA256())  # the same call and parameters as Sign RSASSA_PSS_SHA_256
        return _encrypt(*args, **kwargs)

    symmetric.encrypt = _encrypt_after_rsa_signature
