"""The production start path (README "Production start", docs/tests.md P-4 and K-2) and the dev-mode start.

``openkms init`` seals a fresh root key under a passphrase; ``openkms serve`` (no ``--dev``) starts sealed and
answers nothing but health and unseal; ``openkms unseal`` opens every worker; unattended restarts unseal from
``OPENKMS_UNSEAL_PASSPHRASE`` or ``--unseal-passphrase-file``. The root key and the passphrase never reach the
disk: the test derives the root key itself from the stored seal and the known passphrase, and greps every file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.e2e.server import REGION, ServerProcess, free_port

pytestmark = pytest.mark.e2e

PASSPHRASE = "correct horse battery staple 7f3a"
WRONG_PASSPHRASE = "incorrect horse battery staple"
PASSPHRASE_ENVS = ("OPENKMS_UNSEAL_PASSPHRASE", "OPENKMS_INIT_PASSPHRASE", "OPENKMS_DATA_DIR", "OPENKMS_DATABASE_URL")


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PASSPHRASE_ENVS}
    env.update(extra)
    return env


def openkms(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``openkms`` command with stdin closed (never a terminal, so it never prompts)."""
    return subprocess.run(
        [sys.executable, "-m", "openkms", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else _clean_env(),
    )


@dataclass
class Server(ServerProcess):
    """A server started as an operator would: ``--dev`` only if asked, no pinned credentials, any host."""

    dev: bool = False
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=_clean_env)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "openkms", "serve", *(["--dev"] if self.dev else ["--no-audit-anchor"]),
            "--data-dir", str(self.data_dir), "--database-url", self.database_url,
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers), *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 60, expect_status: int = 200) -> Server:
        self.log_path = self.data_dir.parent / f"server-{self.data_dir.name}-{self.port}.log"
        with self.log_path.open("ab") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
        self.wait_healthy(timeout, expect_status)
        return self

    def run_to_exit(self, timeout: float = 60) -> tuple[int, str]:
        """Start, expect the command to exit by itself (a refused start); return its code and output."""
        self.log_path = self.data_dir.parent / f"server-{self.data_dir.name}-{self.port}.log"
        result = subprocess.run(
            self.command(), capture_output=True, text=True, timeout=timeout, env=self.env, stdin=subprocess.DEVNULL
        )
        return result.returncode, result.stdout + result.stderr

    def kms(self, access_key_id: str, secret_access_key: str) -> Any:
        return boto3.client(
            "kms",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )


def health(endpoint: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def health_of_running_worker(endpoint: str) -> tuple[int, dict[str, Any]]:
    """Each worker has its own SO_REUSEPORT socket, and the kernel picks one by the connection's ports: a
    connection that lands on a stopped worker waits in its backlog, so retry on a new connection."""
    for _ in range(40):
        try:
            return health(endpoint, timeout=0.5)
        except (TimeoutError, urllib.error.URLError) as exc:
            if not isinstance(getattr(exc, "reason", exc), TimeoutError):
                raise
    raise AssertionError("no connection reached a running worker in 40 attempts")


def kms_on_running_worker(server: Server, admin: tuple[str, str], key_id: str) -> Any:
    """A boto3 client whose kept-alive connection reached the one running worker (see above)."""
    for _ in range(40):
        kms = boto3.client(
            "kms",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=admin[0],
            aws_secret_access_key=admin[1],
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=0.5),
        )
        try:
            kms.describe_key(KeyId=key_id)
        except ReadTimeoutError:
            continue
        return kms
    raise AssertionError("no connection reached a running worker in 40 attempts")


def raw_kms_call(endpoint: str, target: str, body: bytes = b"{}") -> tuple[int, dict[str, Any]]:
    """An unsigned KMS request (no SigV4): what a sealed server says before it looks at credentials."""
    request = urllib.request.Request(
        f"{endpoint}/",
        data=body,
        method="POST",
        headers={"content-type": "application/x-amz-json-1.1", "x-amz-target": f"TrentService.{target}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@dataclass
class Initialised:
    data_dir: Path
    database_url: str
    passphrase_file: Path
    wrong_passphrase_file: Path
    admin: dict[str, str]

    def server(self, **kwargs: Any) -> Server:
        return Server(self.data_dir, self.database_url, free_port(), **kwargs)


def _write_secret_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def initialised(tmp_path: Path) -> Initialised:
    """A data directory after ``openkms init``; the passphrase files live outside it."""
    data_dir = tmp_path / "data"
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    passphrase_file = _write_secret_file(secrets_dir / "passphrase", PASSPHRASE)
    wrong = _write_secret_file(secrets_dir / "wrong", WRONG_PASSPHRASE)
    result = openkms("init", "--data-dir", str(data_dir), "--passphrase-file", str(passphrase_file), "--json")
    assert result.returncode == 0, result.stderr
    admin = json.loads(result.stdout)
    return Initialised(data_dir, f"sqlite:///{data_dir / 'openkms.db'}", passphrase_file, wrong, admin)


@pytest.fixture
def sealed(initialised: Initialised) -> Iterator[tuple[Initialised, Server]]:
    server = initialised.server().start(expect_status=503)
    yield initialised, server
    server.kill()


def data_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.rglob("*") if p.is_file())


def encodings(secret: bytes) -> dict[str, bytes]:
    """Every way the bytes could be written: raw, hex (both cases), base64 and URL-safe base64 at each alignment.

    For base64 the secret can start at any of 3 offsets within a 3-byte group; each gives a different text, of
    which only the characters that depend on the secret's bytes alone are kept.
    """
    forms = {"raw": secret, "hex": secret.hex().encode(), "HEX": secret.hex().upper().encode()}
    for shift in range(3):
        padded = b"\0" * shift + secret
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            text = encode(padded)
            start = shift + 1 if shift else 0  # the leading characters that also encode the preceding bytes
            end = (len(padded) // 3) * 4 + len(padded) % 3  # the trailing ones that also encode the next bytes
            forms[f"{name}@{shift}"] = text[start:end]
    return forms


def grep_hits(files: list[Path], secret: bytes) -> list[str]:
    forms = encodings(secret)
    hits = []
    for path in files:
        content = path.read_bytes()
        hits += [f"{path.name}: {name}" for name, needle in forms.items() if needle and needle in content]
    return hits


def table_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def seal_row(db: Path) -> tuple[str, str, bytes]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kind, params, wrapped = conn.execute("SELECT kind, params, wrapped_root_key FROM seal").fetchone()
    finally:
        conn.close()
    return str(kind), str(params), bytes(wrapped)


def root_key_of(initialised: Initialised, scratch: Path) -> bytes:
    """The root key, opened with the known passphrase by openkms' own unseal code on a copy of the database."""
    from openkms.seal.root_key import unseal_root_key
    from openkms.storage.factory import open_storage

    scratch.mkdir()
    for path in initialised.data_dir.glob("openkms.db*"):
        shutil.copy2(path, scratch / path.name)
    storage = open_storage(f"sqlite:///{scratch / 'openkms.db'}")
    try:
        return unseal_root_key(storage, secret=PASSPHRASE)
    finally:
        storage.close()


def assert_sealed_error(exc: ClientError) -> None:
    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503, exc.response
    assert exc.response["Error"]["Code"] == "ServiceUnavailableException", exc.response


def unseal(endpoint: str, passphrase_file: Path) -> subprocess.CompletedProcess[str]:
    return openkms("unseal", "--endpoint", endpoint, "--passphrase-file", str(passphrase_file))


# ---------------------------------------------------------------------------------------------------------------
# openkms init
# ---------------------------------------------------------------------------------------------------------------


def test_init_prints_the_admin_and_keeps_the_directory_private(initialised: Initialised) -> None:
    admin = initialised.admin
    assert re.fullmatch(r"\d{12}", admin["AccountId"]), admin
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", admin["AccessKeyId"]), admin
    assert len(admin["SecretAccessKey"]) >= 40, admin
    assert Path(admin["DataDir"]) == initialised.data_dir.resolve()
    assert stat.S_IMODE(initialised.data_dir.stat().st_mode) == 0o700
    for path in data_files(initialised.data_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is {oct(path.stat().st_mode)}"
    kind, params, _ = seal_row(initialised.data_dir / "openkms.db")
    assert kind == "passphrase"
    assert "argon2id" in params.lower()
    files = data_files(initialised.data_dir)
    assert files, "init wrote nothing"
    assert grep_hits(files, PASSPHRASE.encode()) == []


def test_init_text_output_names_the_credentials(tmp_path: Path) -> None:
    passphrase_file = _write_secret_file(tmp_path / "passphrase", PASSPHRASE)
    result = openkms("init", "--data-dir", str(tmp_path / "data"), "--passphrase-file", str(passphrase_file))
    assert result.returncode == 0, result.stderr
    for name in ("AccountId", "AccessKeyId", "SecretAccessKey"):
        assert re.search(rf"^\s+{name}: \S+$", result.stdout, re.MULTILINE), result.stdout
    assert PASSPHRASE not in result.stdout + result.stderr


def test_init_refuses_a_second_time(initialised: Initialised) -> None:
    db = initialised.data_dir / "openkms.db"
    before = seal_row(db), table_counts(db)
    result = openkms(
        "init", "--data-dir", str(initialised.data_dir), "--passphrase-file", str(initialised.passphrase_file)
    )
    assert result.returncode == 1, result
    assert "already initialised" in result.stderr
    assert "Traceback" not in result.stderr
    assert (seal_row(db), table_counts(db)) == before


def test_init_refuses_a_short_passphrase_and_initialises_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    short = _write_secret_file(tmp_path / "short", "eleven char")
    result = openkms("init", "--data-dir", str(data_dir), "--passphrase-file", str(short))
    assert result.returncode == 1, result
    assert "at least 12 characters" in result.stderr
    assert "Traceback" not in result.stderr
    if (data_dir / "openkms.db").exists():
        assert table_counts(data_dir / "openkms.db").get("seal", 0) == 0
    good = _write_secret_file(tmp_path / "good", PASSPHRASE)
    assert openkms("init", "--data-dir", str(data_dir), "--passphrase-file", str(good)).returncode == 0


def test_init_without_a_passphrase_source_says_how_to_give_one(tmp_path: Path) -> None:
    result = openkms("init", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result
    assert "--passphrase-file" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# openkms serve: refused starts
# ---------------------------------------------------------------------------------------------------------------


def test_serve_refuses_an_uninitialised_directory(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'openkms.db'}", free_port())
    code, output = server.run_to_exit()
    assert code == 1, output
    assert "not initialised" in output and "openkms init" in output, output
    assert "Traceback" not in output


def test_serve_dev_refuses_a_passphrase_directory(initialised: Initialised) -> None:
    code, output = initialised.server(dev=True).run_to_exit()
    assert code == 1, output
    assert "passphrase" in output and "Traceback" not in output, output


def test_serve_with_a_wrong_unattended_passphrase_refuses_to_start(initialised: Initialised) -> None:
    server = initialised.server(env=_clean_env(OPENKMS_UNSEAL_PASSPHRASE=WRONG_PASSPHRASE))
    code, output = server.run_to_exit()
    assert code == 1, output
    assert "does not open" in output and "Traceback" not in output, output
    assert WRONG_PASSPHRASE not in output


def test_dev_options_need_dev(initialised: Initialised) -> None:
    for extra in (
        ["--dev-clock-offset", "3600"],
        ["--dev-access-key-id", "AKIAEXAMPLE"],
        ["--dev-account-id", "1" * 12],
    ):
        code, output = initialised.server(extra_args=extra).run_to_exit()
        assert code == 2, (extra, output)  # a refused argument
        assert "dev" in output and "Traceback" not in output, (extra, output)


# ---------------------------------------------------------------------------------------------------------------
# Sealed, then unsealed (docs/tests.md P-4)
# ---------------------------------------------------------------------------------------------------------------


SEALED_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("create_key", {"Description": "must not exist"}),
    ("list_keys", {}),
    ("describe_key", {"KeyId": str(uuid.uuid4())}),
    ("encrypt", {"KeyId": "alias/anything", "Plaintext": b"secret"}),
    ("decrypt", {"CiphertextBlob": b"\x01" * 80}),
    ("generate_data_key", {"KeyId": "alias/anything", "KeySpec": "AES_256"}),
    ("generate_random", {"NumberOfBytes": 16}),
    ("list_aliases", {}),
    ("create_alias", {"AliasName": "alias/sealed", "TargetKeyId": str(uuid.uuid4())}),
    ("tag_resource", {"KeyId": str(uuid.uuid4()), "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
    ("disable_key", {"KeyId": str(uuid.uuid4())}),
    ("schedule_key_deletion", {"KeyId": str(uuid.uuid4()), "PendingWindowInDays": 7}),
]


def test_sealed_server_answers_only_health_and_unseal(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    db = initialised.data_dir / "openkms.db"
    before = table_counts(db)
    status, body = health(server.endpoint)
    assert (status, body.get("sealed")) == (503, True), body

    admin = server.kms(initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"])
    strangers = server.kms("AKIAUNKNOWNUNKNOWN00", "not-a-secret")
    for client in (admin, strangers):
        for operation, params in SEALED_CALLS:
            with pytest.raises(ClientError) as caught:
                getattr(client, operation)(**params)
            assert_sealed_error(caught.value)
    for target in ("CreateKey", "ListKeys", "Encrypt", "NoSuchOperation"):
        status, body = raw_kms_call(server.endpoint, target)
        assert (status, body.get("__type")) == (503, "ServiceUnavailableException"), (target, status, body)

    assert table_counts(db) == before, "the sealed server wrote to storage"
    assert before.get("keys", 0) == 0


def test_unseal_with_a_wrong_passphrase_fails_clearly_and_stays_sealed(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    result = unseal(server.endpoint, initialised.wrong_passphrase_file)
    assert result.returncode == 1, result
    assert "unseal refused" in result.stderr and "does not open" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert health(server.endpoint)[0] == 503
    with pytest.raises(ClientError) as caught:
        server.kms(initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"]).list_keys()
    assert_sealed_error(caught.value)


def test_unseal_cannot_reach_a_server_says_so(tmp_path: Path) -> None:
    passphrase_file = _write_secret_file(tmp_path / "passphrase", PASSPHRASE)
    result = unseal(f"http://127.0.0.1:{free_port()}", passphrase_file)
    assert result.returncode == 1, result
    assert "cannot reach" in result.stderr and "Traceback" not in result.stderr


@contextlib.contextmanager
def only_worker(supervisor_pid: int, pid: int) -> Iterator[None]:
    """SIGSTOP every other worker, so that only ``pid`` answers (connections to the others wait)."""
    others = [p for p in _worker_pids(supervisor_pid) if p != pid]
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        yield
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def assert_every_worker_unsealed(server: Server, admin: tuple[str, str], key_id: str) -> None:
    assert server.process is not None
    workers = _worker_pids(server.process.pid)
    assert len(workers) == server.workers, workers
    for pid in workers:
        with only_worker(server.process.pid, pid):
            for _ in range(5):
                assert health_of_running_worker(server.endpoint) == (200, {"status": "ok", "sealed": False}), pid
            kms = kms_on_running_worker(server, admin, key_id)
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"hello")["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"


def test_unseal_opens_every_worker(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    assert server.process is not None
    for pid in _worker_pids(server.process.pid):
        with only_worker(server.process.pid, pid):
            assert health_of_running_worker(server.endpoint)[0] == 503, pid
    result = unseal(server.endpoint, initialised.passphrase_file)
    assert result.returncode == 0, result
    assert "unsealed" in result.stdout
    for _ in range(20):  # a new connection each time
        assert health(server.endpoint) == (200, {"status": "ok", "sealed": False})
    admin = (initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"])
    key_id = server.kms(*admin).create_key(Description="after unseal")["KeyMetadata"]["KeyId"]
    assert_every_worker_unsealed(server, admin, key_id)

    # A worker that dies is replaced by the supervisor, already unsealed.
    workers = _worker_pids(server.process.pid)
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _worker_pids(server.process.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the killed worker was not replaced: {workers} -> {_worker_pids(server.process.pid)}")
    assert_every_worker_unsealed(server, admin, key_id)


def test_restarts_unseal_unattended_and_old_ciphertexts_decrypt(sealed: tuple[Initialised, Server]) -> None:
    initialised, server = sealed
    assert unseal(server.endpoint, initialised.passphrase_file).returncode == 0
    admin = (initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"])
    kms = server.kms(*admin)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blobs = {kms.encrypt(KeyId=key_id, Plaintext=b"p%d" % i)["CiphertextBlob"]: b"p%d" % i for i in range(5)}
    server.kill()

    restarts: list[dict[str, Any]] = [
        {"env": _clean_env(OPENKMS_UNSEAL_PASSPHRASE=PASSPHRASE)},
        {"extra_args": ["--unseal-passphrase-file", str(initialised.passphrase_file)]},
    ]
    for how in restarts:
        again = initialised.server(**how).start(expect_status=200)  # unsealed at start: ready means 200
        try:
            for _ in range(10):
                assert health(again.endpoint)[0] == 200
            kms = again.kms(*admin)
            for blob, plaintext in blobs.items():
                assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
            kms.encrypt(KeyId=key_id, Plaintext=b"still usable")
        finally:
            again.kill()


def test_root_key_and_passphrase_never_reach_the_disk(sealed: tuple[Initialised, Server], tmp_path: Path) -> None:
    """docs/tests.md K-2: unseal, run a workload, kill -9, then grep every file for the root key in any encoding."""
    initialised, server = sealed
    assert unseal(server.endpoint, initialised.passphrase_file).returncode == 0
    kms = server.kms(initialised.admin["AccessKeyId"], initialised.admin["SecretAccessKey"])
    for i in range(20):
        key_id = kms.create_key(Description=f"k2 {i}")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=os.urandom(32))["CiphertextBlob"]
        kms.decrypt(CiphertextBlob=blob)
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        kms.create_alias(AliasName=f"alias/k2-{i}", TargetKeyId=key_id)
    # The admin CLI derives the root key too (to wrap a new secret) while the server runs.
    iam = openkms(
        "iam", "create-access-key", "--user-name", "admin", "--json",
        "--passphrase-file", str(initialised.passphrase_file), "--data-dir", str(initialised.data_dir),
    )  # fmt: skip
    assert iam.returncode == 0, iam.stderr
    server.kill(signal.SIGKILL)

    root_key = root_key_of(initialised, tmp_path / "scratch")
    files = data_files(initialised.data_dir) + [p for p in [server.log_path] if p is not None]
    names = {p.name for p in files}
    assert {"openkms.db", "openkms.db-wal"} <= names, names
    # Positive control: the same grep finds the *wrapped* root key, so it reads the files that hold the seal.
    _, _, wrapped = seal_row(initialised.data_dir / "openkms.db")
    assert grep_hits(files, wrapped), "the grep cannot even find the wrapped root key"
    assert grep_hits(files, root_key) == []
    assert grep_hits(files, PASSPHRASE.encode()) == []


# ---------------------------------------------------------------------------------------------------------------
# Dev mode
# ---------------------------------------------------------------------------------------------------------------


def _worker_pids(supervisor_pid: int) -> list[int]:
    """Live children of the supervisor that run a spawned worker (not the resource tracker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_text = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat_text.rsplit(")", 1)[1].split()
        if int(fields[1]) == supervisor_pid and fields[0] not in ("Z", "X") and b"spawn_main" in cmdline:
            pids.append(int(entry))
    return sorted(pids)


def dev_banner(log: str) -> dict[str, str]:
    """The fields of the last ``openkms dev server`` banner in a log."""
    banner = log[log.rindex("openkms dev server") :]
    return {m[1]: m[2].strip() for m in re.finditer(r"^\s+([a-z ]+):\s+(.+)$", banner, re.MULTILINE)}


def test_dev_server_prints_working_credentials_and_keeps_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir, f"sqlite:///{data_dir / 'openkms.db'}", free_port(), dev=True).start()
    try:
        assert server.log_path is not None
        first = dev_banner(server.log_path.read_text())
        assert first["endpoint"] == server.endpoint
        assert first["region"].split()[0] == REGION
        assert re.fullmatch(r"\d{12}", first["account id"]), first
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", first["access key id"]), first
        assert len(first["secret access key"]) >= 40, first
        assert Path(first["data directory"]) == data_dir.resolve()
        kms = server.kms(first["access key id"], first["secret access key"])
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        assert arn.startswith(f"arn:aws:kms:{REGION}:{first['account id']}:key/"), arn
    finally:
        server.kill()

    server.port = free_port()  # a restart on the same directory, even on another port, is the same identity
    server.start()
    try:
        assert server.log_path is not None
        second = dev_banner(server.log_path.read_text())
        per_port = {"endpoint", "console"}  # both name the port, which changed
        assert {k: v for k, v in second.items() if k not in per_port} == {
            k: v for k, v in first.items() if k not in per_port
        }
        assert second["console"] == f"{server.endpoint}/console"
        kms = server.kms(second["access key id"], second["secret access key"])
        assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    finally:
        server.kill()


def test_dev_server_honours_workers_host_and_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    server = Server(data_dir, f"sqlite:///{data_dir / 'openkms.db'}", port, dev=True, host="127.0.0.2", workers=3)
    server.start()
    try:
        assert server.process is not None
        assert health(f"http://127.0.0.2:{port}")[0] == 200
        with pytest.raises(urllib.error.URLError):
            health(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 20
        while len(_worker_pids(server.process.pid)) != 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_worker_pids(server.process.pid)) == 3
        assert server.log_path is not None
        assert dev_banner(server.log_path.read_text())["endpoint"] == f"http://127.0.0.2:{port}"
    finally:
        server.kill()
