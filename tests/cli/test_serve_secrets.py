"""Issue 15 items 4 and 19 at the command line: what ``openkms serve`` refuses before it starts, and secrets kept
off the command line.

- A production start (no ``--dev``) must say where signed audit digests are anchored outside the database, or
  say ``--no-audit-anchor``; otherwise exit 2 (``ValidationException``) before anything is touched.
- The dev secret can come from ``OPENKMS_DEV_SECRET_ACCESS_KEY`` or ``--dev-secret-access-key-file``, so it is
  not visible in ``ps``; the server answers with it and never prints it.
- A secret file (unseal passphrase, dev secret) that the group or others may access is refused with exit 2 and
  a message naming its mode, as ssh refuses a private key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.running import Run, openkms
from tests.e2e.server import ACCESS_KEY_ID, ACCOUNT_ID, SECRET_ACCESS_KEY, ServerProcess, free_port

ENVS = (
    "OPENKMS_AUDIT_ANCHOR_DIR",
    "OPENKMS_AUDIT_ANCHOR_SYSLOG",
    "OPENKMS_NO_AUDIT_ANCHOR",
    "OPENKMS_DEV_SECRET_ACCESS_KEY",
    "OPENKMS_UNSEAL_PASSPHRASE",
    "OPENKMS_INIT_PASSPHRASE",
    "OPENKMS_DATA_DIR",
    "OPENKMS_DATABASE_URL",
)
PASSPHRASE = "correct horse battery staple 19"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVS:
        monkeypatch.delenv(name, raising=False)


def refused(run: Run, *fragments: str) -> None:
    assert run.code == 2, run
    assert run.err.startswith("ValidationException: ") and "Traceback" not in run.err, run.err
    for fragment in fragments:
        assert fragment in run.err, run.err


def secret_file(path: Path, text: str, mode: int) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


# ---- item 4: production start chooses an anchor --------------------------------------------------------------


def test_production_serve_without_an_anchor_choice_is_refused_before_anything(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run = openkms("serve", "--data-dir", str(data_dir), "--port", str(free_port()))
    refused(run, "--audit-anchor-dir DIR", "--audit-anchor-syslog", "--no-audit-anchor", "OPENKMS_AUDIT_ANCHOR_DIR")
    assert not data_dir.exists()


def test_production_serve_with_a_choice_goes_on_to_its_next_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    not_initialised = "not initialised: run `openkms init` first"
    for extra in (["--no-audit-anchor"], ["--audit-anchor-dir", str(tmp_path / "anchor")]):
        run = openkms("serve", "--data-dir", str(data_dir), "--port", str(free_port()), *extra)
        assert run.code == 1 and not_initialised in run.err, run
    monkeypatch.setenv("OPENKMS_NO_AUDIT_ANCHOR", "1")  # the same choice from the environment
    run = openkms("serve", "--data-dir", str(data_dir), "--port", str(free_port()))
    assert run.code == 1 and not_initialised in run.err, run


def test_no_anchor_and_an_anchor_together_are_refused(tmp_path: Path) -> None:
    run = openkms("serve", "--data-dir", str(tmp_path / "d"), "--no-audit-anchor", "--audit-anchor-syslog")
    refused(run, "contradicts")


@pytest.mark.parametrize("dev", [False, True])
def test_an_unusable_anchor_directory_is_refused(tmp_path: Path, dev: bool) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    args = ["serve", *(["--dev"] if dev else []), "--data-dir", str(tmp_path / "data"), "--port", str(free_port())]
    refused(openkms(*args, "--audit-anchor-dir", str(loose)), "has mode 0755", "chmod 700")
    refused(openkms(*args, "--audit-anchor-dir", str(tmp_path / "x" / ".." / "a")), "'..' component")
    refused(openkms(*args, "--audit-anchor-syslog", str(tmp_path / "no-syslog")), "cannot reach syslog")
    assert not (tmp_path / "data").exists()


# ---- item 19: secret files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_passphrase_file_others_may_read_is_refused_everywhere(tmp_path: Path, mode: int) -> None:
    loose = secret_file(tmp_path / "passphrase", PASSPHRASE, mode)
    data_dir = tmp_path / "data"
    shown = f"has mode {mode:04o}"
    refused(openkms("init", "--data-dir", str(data_dir), "--passphrase-file", str(loose)), shown, "chmod 600")
    refused(openkms("unseal", "--endpoint", f"http://127.0.0.1:{free_port()}", "--passphrase-file", str(loose)), shown)
    serve = ["serve", "--data-dir", str(data_dir), "--port", str(free_port()), "--no-audit-anchor"]
    refused(openkms(*serve, "--unseal-passphrase-file", str(loose)), shown)
    # Nothing was initialised with it; once private, the same file is taken.
    loose.chmod(0o600)
    assert openkms("init", "--data-dir", str(data_dir), "--passphrase-file", str(loose)).code == 0
    loose.chmod(mode)
    sign_now = ["audit", "verify", "--data-dir", str(data_dir), "--sign-now", "--passphrase-file", str(loose)]
    refused(openkms(*sign_now), shown)


def test_a_private_passphrase_file_is_accepted(tmp_path: Path) -> None:
    private = secret_file(tmp_path / "passphrase", PASSPHRASE, 0o600)
    run = openkms("init", "--data-dir", str(tmp_path / "data"), "--passphrase-file", str(private), "--json")
    assert run.code == 0, run
    read_only = secret_file(tmp_path / "read-only", PASSPHRASE, 0o400)
    run = openkms("audit", "verify", "--data-dir", str(tmp_path / "data"), "--sign-now", "--passphrase-file",
                  str(read_only))  # fmt: skip
    assert run.code == 0, run


def test_a_dev_secret_file_others_may_read_is_refused(tmp_path: Path) -> None:
    loose = secret_file(tmp_path / "secret", SECRET_ACCESS_KEY, 0o640)
    run = openkms("serve", "--dev", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
                  "--dev-access-key-id", ACCESS_KEY_ID, "--dev-secret-access-key-file", str(loose))  # fmt: skip
    refused(run, "has mode 0640")
    assert not (tmp_path / "data").exists()


def test_the_dev_secret_given_twice_is_refused(tmp_path: Path) -> None:
    private = secret_file(tmp_path / "secret", SECRET_ACCESS_KEY, 0o600)
    run = openkms("serve", "--dev", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
                  "--dev-access-key-id", ACCESS_KEY_ID, "--dev-secret-access-key", "x",
                  "--dev-secret-access-key-file", str(private))  # fmt: skip
    refused(run, "give the dev secret once")


class _QuietServer(ServerProcess):
    """The e2e dev server, but its secret comes from the environment or a file, never the command line."""

    env: dict[str, str]
    secret_args: list[str]

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "openkms", "serve", "--dev",
            "--data-dir", str(self.data_dir), "--database-url", self.database_url,
            "--port", str(self.port), "--workers", "1",
            "--dev-access-key-id", ACCESS_KEY_ID, "--dev-account-id", ACCOUNT_ID, *self.secret_args,
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> _QuietServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
            )
        self.wait_healthy(timeout)
        return self


@pytest.fixture(params=["env", "file"])
def quiet_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_QuietServer]:
    env = {k: v for k, v in os.environ.items() if k not in ENVS}
    server = _QuietServer(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'openkms.db'}", free_port())
    if request.param == "env":
        env["OPENKMS_DEV_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
        server.secret_args = []
    else:
        server.secret_args = [
            "--dev-secret-access-key-file",
            str(secret_file(tmp_path / "dev-secret", SECRET_ACCESS_KEY, 0o600)),
        ]
    server.env = env
    server.start()
    yield server
    server.stop()


@pytest.mark.e2e
def test_the_dev_secret_from_the_environment_or_a_file_is_not_in_ps_and_works(quiet_server: _QuietServer) -> None:
    assert quiet_server.process is not None
    cmdline = Path(f"/proc/{quiet_server.process.pid}/cmdline").read_bytes()
    assert ACCESS_KEY_ID.encode() in cmdline and SECRET_ACCESS_KEY.encode() not in cmdline
    kms = quiet_server.client()  # signs with SECRET_ACCESS_KEY: the server took it from env or file
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)
    assert SECRET_ACCESS_KEY not in quiet_server.log()
