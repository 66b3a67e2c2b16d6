"""The composition root refuses a storage whose write transactions would not carry their audit records."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.audit import scope as audit_scope
from openkms.audit.writer import MemoryWriter
from openkms.crypto.rand import random_bytes
from openkms.seal.keyring import Keyring
from openkms.settings import Settings
from openkms.storage.sqlite import SQLiteStorage
from openkms.wiring import build_app, build_services


@pytest.mark.parametrize("hooked", [False, True])
def test_build_app_needs_the_storage_opened_with_the_audit_hook(tmp_path: Path, hooked: bool) -> None:
    path = tmp_path / "openkms.db"
    storage = SQLiteStorage(path, before_commit=audit_scope.before_commit if hooked else None)
    keyring = Keyring()
    keyring.unseal(random_bytes(32))
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{path}")
    try:
        services = build_services(settings, storage, keyring)
        if hooked:
            assert build_app(services, audit=MemoryWriter()) is not None
        else:
            with pytest.raises(ValueError, match="before_commit"):
                build_app(services, audit=MemoryWriter())
    finally:
        storage.close()
