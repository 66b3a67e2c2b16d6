"""Initialise a data directory's seal and open it again: the root of the key hierarchy."""

from __future__ import annotations

from pathlib import Path

from openkms.clock import Clock
from openkms.crypto.rand import random_bytes
from openkms.seal import keyfile, passphrase
from openkms.seal.base import UnsealError, unwrap_root_key, wrap_root_key
from openkms.storage.ports import Storage
from openkms.storage.records import SealRecord

ROOT_KEY_BYTES = 32


class AlreadyInitializedError(Exception):
    """``init`` ran on a data directory or database that already has a seal."""


def is_initialized(storage: Storage) -> bool:
    with storage.read() as tx:
        return tx.get_seal() is not None


def seal_kind(storage: Storage) -> str | None:
    with storage.read() as tx:
        record = tx.get_seal()
    return None if record is None else record.kind


def initialize_with_keyfile(storage: Storage, keyfile_path: Path, clock: Clock) -> bytes:
    """Create the root key and seal it under a new key file; returns the root key."""
    if is_initialized(storage):
        raise AlreadyInitializedError("this database is already initialised")
    kek = keyfile.create_keyfile(keyfile_path)
    return _store_new_root(storage, keyfile.KIND, "{}", kek, clock)


def initialize_with_passphrase(storage: Storage, secret: str, clock: Clock) -> bytes:
    if len(secret) < passphrase.MIN_PASSPHRASE_CHARS:
        raise ValueError(f"the passphrase must have at least {passphrase.MIN_PASSPHRASE_CHARS} characters")
    if is_initialized(storage):
        raise AlreadyInitializedError("this database is already initialised")
    params = passphrase.new_params_json()
    kek = passphrase.kek_from_passphrase(secret, params)
    return _store_new_root(storage, passphrase.KIND, params, kek, clock)


def _store_new_root(storage: Storage, kind: str, params: str, kek: bytes, clock: Clock) -> bytes:
    root_key = random_bytes(ROOT_KEY_BYTES)
    record = SealRecord(kind, params, wrap_root_key(kek, root_key, kind), clock.now())
    with storage.transaction() as tx:
        tx.put_seal(record)
    return root_key


def unseal_root_key(storage: Storage, *, secret: str | None = None, keyfile_path: Path | None = None) -> bytes:
    """Open the stored root key with a passphrase or the key file, whichever the seal needs."""
    with storage.read() as tx:
        record = tx.get_seal()
    if record is None:
        raise UnsealError("this database is not initialised: run `openkms init` (or `openkms serve --dev`)")
    return open_seal(record, secret=secret, keyfile_path=keyfile_path)


def open_seal(record: SealRecord, *, secret: str | None = None, keyfile_path: Path | None = None) -> bytes:
    """The root key ``record`` seals, opened with a passphrase or the key file (a backup carries its record)."""
    if record.kind == keyfile.KIND:
        if keyfile_path is None:
            raise UnsealError("this data directory is sealed with a key file; no key file was given")
        kek = keyfile.read_keyfile(keyfile_path)
    elif record.kind == passphrase.KIND:
        if secret is None:
            raise UnsealError("this data directory is sealed with a passphrase; none was given")
        kek = passphrase.kek_from_passphrase(secret, record.params)
    else:
        raise UnsealError(f"unknown seal kind {record.kind!r}")
    return unwrap_root_key(kek, record.wrapped_root_key, record.kind)
