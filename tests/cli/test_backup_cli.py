"""The restore drill through the real command line and real servers: a backup taken while a server serves,
checked, restored into a new data directory (SQLite) or an empty PostgreSQL database, the restored trail verified
with ``openkms audit verify``, and a server started on the restored data decrypting, with boto3, a ciphertext made
before the backup; keys, aliases, grants and policies are back. Refusals: an altered, truncated or foreign file, the
wrong root of trust, a non-empty target. No secret in the file or in any output."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openkms.backup import archive
from openkms.seal import keyfile
from openkms.seal.root_key import unseal_root_key
from openkms.storage.sqlite import SQLiteStorage
from tests.backup.support import database
from tests.cli.running import openkms as in_process
from tests.e2e.server import ACCOUNT_ID, SECRET_ACCESS_KEY, ServerProcess, free_port

PLAINTEXT = b"acknowledged before the backup began"
POLICY_SID = "RestoreDrillMarker"


def openkms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms", *args], capture_output=True, text=True, timeout=300, check=False
    )


@dataclass
class Made:
    directory: Path
    file: Path
    keyfile: Path
    key_id: str
    grant_id: str
    policy: str
    ciphertext: bytes
    outputs: tuple[str, ...]  # what ``openkms backup`` printed
    before: list[tuple[str, str, bytes]]  # what the load had acknowledged when the backup began


LOAD_OPERATIONS = 400  # the bounded write load's ceiling


class Load(threading.Thread):
    """Encrypts with the drill's key and creates a key every tenth call, back to back, until stopped: every
    answer is kept with the moment it arrived (acknowledged)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        super().__init__(daemon=True)
        self.kms, self.key_id = kms, key_id
        self.acknowledged: list[tuple[float, str, str, bytes]] = []  # (when, kind, key id, ciphertext)
        self.stop = threading.Event()

    def run(self) -> None:
        for i in range(LOAD_OPERATIONS):
            if self.stop.is_set():
                return
            blob = self.kms.encrypt(KeyId=self.key_id, Plaintext=f"load {i}".encode())["CiphertextBlob"]
            self.acknowledged.append((time.monotonic(), "ciphertext", f"load {i}", blob))
            if i % 10 == 0:
                created = self.kms.create_key(Description=f"load {i}")["KeyMetadata"]["KeyId"]
                self.acknowledged.append((time.monotonic(), "key", created, b""))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """A dev server on SQLite with a key, an alias, a grant, a custom key policy and a ciphertext, backed up online
    while a bounded write load runs."""
    base = tmp_path_factory.mktemp("backup-cli")
    server = ServerProcess(base / "a", f"sqlite:///{base / 'a' / 'openkms.db'}", free_port()).start()
    try:
        kms = server.client()
        key_id = kms.create_key(Description="restore drill")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/restore-drill", TargetKeyId=key_id)
        grant_id = kms.create_grant(
            KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_ID}:root", Operations=["Decrypt"], Name="drill"
        )["GrantId"]
        document = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        document["Statement"][0]["Sid"] = POLICY_SID
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(document))
        ciphertext = kms.encrypt(KeyId="alias/restore-drill", Plaintext=PLAINTEXT)["CiphertextBlob"]
        policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        load = Load(server.client(), key_id)
        load.start()
        time.sleep(1.0)
        began = time.monotonic()
        taken = server.openkms("backup", "--output", str(base / "drill.okb"))
        load.stop.set()
        load.join(timeout=120)
        assert taken.returncode == 0, taken.stderr
        assert "useless without the root of trust" in taken.stdout
    finally:
        server.stop()
    before = [(kind, name, blob) for when, kind, name, blob in load.acknowledged if when < began]
    assert len(before) >= 5 and any(kind == "key" for kind, _, _ in before), "the load did not run before the backup"
    yield Made(
        base,
        base / "drill.okb",
        base / "a" / keyfile.KEYFILE_NAME,
        key_id,
        grant_id,
        policy,
        ciphertext,
        (taken.stdout, taken.stderr),
        before,
    )


def test_backup_verify_names_what_it_checked(made: Made) -> None:
    done = openkms("backup", "verify", str(made.file), "--keyfile", str(made.keyfile), "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] and report["problems"] == []
    keys_before = sum(1 for kind, _, _ in made.before if kind == "key")
    assert report["secretsOpened"]["key_versions"] == report["rows"]["key_versions"] >= 1 + keys_before
    assert report["secretsOpened"]["access_keys"] == report["rows"]["access_keys"] >= 1
    assert report["rows"]["aliases"] == 1 and report["rows"]["grants"] == 1


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_restore_then_serve_decrypts_what_was_made_before(made: Made, engine: str, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    with database(engine, target) as url:
        where = ["--data-dir", str(target), "--database-url", url]
        done = openkms("restore", "--from", str(made.file), "--keyfile", str(made.keyfile), *where)
        assert done.returncode == 0, done.stderr
        audit = openkms("audit", "verify", *where)
        assert audit.returncode == 0, audit.stdout + audit.stderr
        again = openkms("restore", "--from", str(made.file), "--keyfile", str(made.keyfile), *where)
        assert again.returncode == 1 and "holds data: give --force" in again.stderr
        server = ServerProcess(target, url, free_port()).start()
        try:
            kms = server.client()
            assert kms.decrypt(CiphertextBlob=made.ciphertext)["Plaintext"] == PLAINTEXT
            assert kms.describe_key(KeyId="alias/restore-drill")["KeyMetadata"]["KeyId"] == made.key_id
            assert [g["GrantId"] for g in kms.list_grants(KeyId=made.key_id)["Grants"]] == [made.grant_id]
            policy = kms.get_key_policy(KeyId=made.key_id, PolicyName="default")["Policy"]
            assert policy == made.policy and POLICY_SID in policy
            assert kms.encrypt(KeyId="alias/restore-drill", Plaintext=b"after")["CiphertextBlob"]
            for kind, name, blob in made.before:  # everything acknowledged before the backup began
                if kind == "key":
                    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == "Enabled"
                else:
                    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == name.encode()
        finally:
            server.stop()
        after = openkms("audit", "verify", *where)  # the chain continues across the restore point
        assert after.returncode == 0, after.stdout + after.stderr


def _copy(made: Made, tmp_path: Path, *, flip: bool, cut: float | None) -> Path:
    data = made.file.read_bytes()
    if cut is not None:
        data = data[: int(len(data) * cut)]
    if flip:
        data = data[:-10] + bytes([data[-10] ^ 0x01]) + data[-9:]
    path = tmp_path / "copy.okb"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [("flipped", "does not match the hash"), ("truncated", "truncated"), ("foreign", "not an openkms backup")],
)
def test_a_damaged_file_is_refused_by_verify_and_restore(made: Made, tmp_path: Path, kind: str, message: str) -> None:
    if kind == "foreign":
        path = tmp_path / "copy.okb"
        path.write_bytes(b"PGDMP" + bytes(64))
    else:
        path = _copy(made, tmp_path, flip=kind == "flipped", cut=0.6 if kind == "truncated" else None)
    verify = openkms("backup", "verify", str(path), "--keyfile", str(made.keyfile))
    assert verify.returncode == 1 and message in verify.stderr, verify.stderr
    target = tmp_path / "target"
    restore = openkms("restore", "--from", str(path), "--keyfile", str(made.keyfile), "--data-dir", str(target))
    assert restore.returncode == 1 and message in restore.stderr, restore.stderr
    assert not (target / "openkms.db").exists() or (target / "openkms.db").stat().st_size == 0


def test_the_wrong_root_of_trust_is_refused(made: Made, tmp_path: Path) -> None:
    other = tmp_path / "other.keyfile"
    keyfile.create_keyfile(other)
    verify = openkms("backup", "verify", str(made.file), "--keyfile", str(other))
    assert verify.returncode == 1 and "does not open" in verify.stderr, verify.stderr
    missing = openkms("backup", "verify", str(made.file))
    assert missing.returncode == 1 and "give --keyfile" in missing.stderr


def test_backup_refuses_to_overwrite_without_force(made: Made) -> None:
    before = made.file.read_bytes()
    where = ["--data-dir", str(made.directory / "a")]
    refused = openkms("backup", "--output", str(made.file), *where)
    assert refused.returncode == 1 and "give --force" in refused.stderr
    assert made.file.read_bytes() == before


def test_no_secret_in_the_file_or_any_output(made: Made, tmp_path: Path) -> None:
    """Canary: the pinned secret access key is in no byte of the backup, compressed or decompressed, nor in
    anything backup, verify (both forms) and restore print."""
    runs = [
        openkms("backup", "verify", str(made.file), "--keyfile", str(made.keyfile)),
        openkms("backup", "verify", str(made.file), "--keyfile", str(made.keyfile), "--json"),
        openkms("restore", "--from", str(made.file), "--keyfile", str(made.keyfile), "--data-dir", str(tmp_path)),
        openkms("restore", "--from", str(made.file), "--keyfile", str(made.keyfile), "--data-dir", str(tmp_path / "j"),
                "--json"),
    ]  # fmt: skip
    assert [run.returncode for run in runs] == [0, 0, 0, 0]
    outputs = [*made.outputs, *(text for run in runs for text in (run.stdout, run.stderr))]
    data = made.file.read_bytes()
    opened_at = data.index(b"\n", data.index(b"\n", len(archive.MAGIC)) + 1) + 1
    body = gzip.decompress(data[opened_at:])
    assert b"restore-drill" in body  # the search does look at the rows
    secret = SECRET_ACCESS_KEY.encode()
    assert secret not in data and secret not in body
    assert not [text for text in outputs if SECRET_ACCESS_KEY in text]


def test_a_passphrase_install_backs_up_and_restores_with_its_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production seal: the passphrase opens the seal the backup carries; another passphrase is refused, and
    the restored database unseals with the original one."""
    passphrase = "correct horse battery staple"
    monkeypatch.setenv("OPENKMS_INIT_PASSPHRASE", passphrase)
    assert in_process("init", "--data-dir", str(tmp_path / "a"), "--json").code == 0
    monkeypatch.setenv("OPENKMS_UNSEAL_PASSPHRASE", passphrase)
    file = str(tmp_path / "p.okb")
    taken = in_process("backup", "--data-dir", str(tmp_path / "a"), "--output", file, "--json")
    assert taken.code == 0, taken.err
    assert taken.json()["rows"]["access_keys"] == 1
    assert in_process("backup", "verify", file).code == 0
    restored = in_process("restore", "--from", file, "--data-dir", str(tmp_path / "b"))
    assert restored.code == 0, restored.err
    storage = SQLiteStorage(tmp_path / "b" / "openkms.db")
    try:
        assert len(unseal_root_key(storage, secret=passphrase)) == 32
    finally:
        storage.close()
    monkeypatch.setenv("OPENKMS_UNSEAL_PASSPHRASE", "not the passphrase at all")
    refused = in_process("backup", "verify", file)
    assert refused.code == 1 and "does not open" in refused.err
    refused = in_process("restore", "--from", file, "--data-dir", str(tmp_path / "c"))
    assert refused.code == 1 and not (tmp_path / "c" / "openkms.db").exists()
