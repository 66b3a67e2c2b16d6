"""The backup file refuses what it must: an altered or truncated file, another root key, a file that is not a
backup, rows whose secrets do not open; and it is written privately and never over a file unless forced."""

from __future__ import annotations

import base64
import gzip
import hashlib
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from openkms.backup import archive
from openkms.backup.snapshot import take_backup
from openkms.backup.verify import verify_backup
from openkms.clock import SystemClock
from openkms.crypto.rand import random_bytes
from openkms.seal.root_key import initialize_with_keyfile
from openkms.storage.migrate import latest_version
from openkms.storage.sqlite import SQLiteStorage
from tests import byok
from tests.backup.support import Source, database, populate
from tests.inprocess import InProcessKMS


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    with database("sqlite", tmp_path / "a") as url:
        made = populate(url, tmp_path / "a")
        try:
            yield made
        finally:
            made.kms.close()


@pytest.fixture
def backup(tmp_path: Path, source: Source) -> Path:
    path = tmp_path / "backup.okb"
    take_backup(source.kms.storage, source.root_key, path)
    return path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_sound_backup_verifies_and_opens_every_wrapped_secret(backup: Path, source: Source) -> None:
    report = verify_backup(backup, source.root_key)
    assert report.ok, report.problems
    assert report.secrets_opened == {"access_keys": 1, "key_versions": 2, "audit_signing_keys": 1}
    assert report.rows["keys"] == 2 and report.rows["aliases"] == 1


def test_the_file_is_private_and_never_replaced_unless_forced(backup: Path, source: Source) -> None:
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    before = backup.read_bytes()
    with pytest.raises(archive.BackupError, match="exists: give --force"):
        take_backup(source.kms.storage, source.root_key, backup)
    assert backup.read_bytes() == before
    take_backup(source.kms.storage, source.root_key, backup, force=True)
    assert backup.read_bytes() != before and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in backup.parent.iterdir() if p.name.startswith(".openkms-backup-")] == []


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (len(archive.MAGIC) + 20, "signature does not verify"),  # inside the manifest
        (-1, "does not match the hash"),  # the body's last byte
    ],
)
def test_a_flipped_byte_is_refused(backup: Path, source: Source, where: int, message: str) -> None:
    _flip(backup, where if where >= 0 else backup.stat().st_size + where)
    with pytest.raises(archive.BackupError, match=message):
        verify_backup(backup, source.root_key)


def test_a_flipped_byte_of_the_signature_is_refused(backup: Path, source: Source) -> None:
    data = backup.read_bytes()
    signature_at = data.index(b"\n", len(archive.MAGIC)) + 1
    replaced = b"0" if data[signature_at : signature_at + 1] != b"0" else b"1"
    backup.write_bytes(data[:signature_at] + replaced + data[signature_at + 1 :])
    with pytest.raises(archive.BackupError, match="signature does not verify"):
        verify_backup(backup, source.root_key)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_truncated_file_is_refused(backup: Path, source: Source, keep: float) -> None:
    data = backup.read_bytes()
    backup.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(archive.BackupError, match="truncated"):
        verify_backup(backup, source.root_key)


def test_another_root_key_is_refused(backup: Path) -> None:
    with pytest.raises(archive.BackupError, match="another root key"):
        verify_backup(backup, random_bytes(32))


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path, source: Source) -> None:
    path = tmp_path / "other.okb"
    path.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(archive.BackupError, match="not an openkms backup"):
        verify_backup(path, source.root_key)


def _resign(path: Path, root_key: bytes, change: dict[str, str]) -> None:
    """Rewrite ``path`` with the body's bytes changed as ``change`` says, correctly hashed and signed: what only a
    holder of the root key could make. The rows' own checks must still find the damage."""
    opened = archive.open_file(path, root_key)
    raw = path.read_bytes()[opened.body_offset :]
    text = gzip.decompress(raw).decode()
    for old, new in change.items():
        assert old in text
        text = text.replace(old, new, 1)
    body = path.with_suffix(".body")
    body.write_bytes(gzip.compress(text.encode()))
    data = body.read_bytes()
    manifest = replace(opened.manifest, content_sha256=hashlib.sha256(data).hexdigest(), content_bytes=len(data))
    archive.write_file(path, manifest, root_key, body, force=True)


def test_a_wrapped_secret_that_does_not_open_is_named(backup: Path, source: Source) -> None:
    # The key's material moved to the other key's row: each wrap binds its key ARN and version, so neither opens.
    opened = archive.open_file(backup, source.root_key)
    versions = [values for table, values in archive.read_rows(backup, opened) if table == "key_versions"]
    at = opened.manifest.tables["key_versions"].columns.index("wrapped_material")
    first, second = (archive.encode_value(v[at])["b64"] for v in versions)
    _resign(backup, source.root_key, {first: "PLACEHOLDER", second: first})
    _resign(backup, source.root_key, {"PLACEHOLDER": second})
    report = verify_backup(backup, source.root_key)
    assert not report.ok
    assert len([p for p in report.problems if "its material does not open with the root key" in p]) == 2


def test_a_row_count_that_differs_from_the_manifest_is_named(backup: Path, source: Source) -> None:
    opened = archive.open_file(backup, source.root_key)
    tables = dict(opened.manifest.tables)
    tables["aliases"] = replace(tables["aliases"], rows=2)
    body = backup.with_suffix(".body")
    body.write_bytes(backup.read_bytes()[opened.body_offset :])
    archive.write_file(backup, replace(opened.manifest, tables=tables), source.root_key, body, force=True)
    report = verify_backup(backup, source.root_key)
    assert report.problems == ["aliases: 1 rows, the manifest says 2"]


def test_no_secret_is_in_the_file(tmp_path: Path, backup: Path, source: Source) -> None:
    """Canary: the administrator's secret access key and the root key are in no byte of the file, compressed or
    not (the material is known to be wrapped: its secrets open only under the root key, tested above)."""
    kms: InProcessKMS = source.kms
    secret = kms.credentials.secret_key.encode()
    data = backup.read_bytes()
    opened = archive.open_file(backup, source.root_key)
    body = gzip.decompress(data[opened.body_offset :])
    for haystack in (data, body):
        assert secret not in haystack
        assert source.root_key not in haystack and source.root_key.hex().encode() not in haystack


def test_imported_key_material_is_in_the_file_only_wrapped(tmp_path: Path, source: Source) -> None:
    """Canary for material: 32 known bytes imported into a key (BYOK) appear in no byte of the backup, raw, hex or
    base64, compressed or not; the backup still holds the key's version (wrapped), and it opens with the root key."""
    kms = source.kms
    status, created = kms.call("CreateKey", {"Origin": "EXTERNAL"})
    assert status == 200, created
    key_id = created["KeyMetadata"]["KeyId"]
    status, params = kms.call(
        "GetParametersForImport",
        {"KeyId": key_id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
    )
    assert status == 200, params
    material = random_bytes(32)
    encrypted = byok.wrap(base64.b64decode(params["PublicKey"]), "RSAES_OAEP_SHA_256", material)
    status, imported = kms.call(
        "ImportKeyMaterial",
        {
            "KeyId": key_id,
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": base64.b64encode(encrypted).decode(),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    )
    assert status == 200, imported
    path = tmp_path / "byok.okb"
    take_backup(kms.storage, source.root_key, path)
    report = verify_backup(path, source.root_key)
    assert report.ok and report.secrets_opened["key_versions"] == 3
    data = path.read_bytes()
    body = gzip.decompress(data[archive.open_file(path, source.root_key).body_offset :])
    assert key_id.encode() in body  # the search does look at the rows
    for form in (material, material.hex().encode(), base64.b64encode(material)):
        assert form not in data and form not in body


def test_a_database_of_another_schema_version_is_not_backed_up(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "old" / "openkms.db")
    try:
        older = latest_version("sqlite") - 1
        storage.migrate(older)
        root_key = initialize_with_keyfile(storage, tmp_path / "old" / "root.keyfile", SystemClock())
        with pytest.raises(archive.BackupError, match=f"schema is version {older}, this openkms writes"):
            take_backup(storage, root_key, tmp_path / "old.okb")
    finally:
        storage.close()
    assert not (tmp_path / "old.okb").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".openkms-backup-")] == []
