"""Start and stop real ``openkms serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import boto3
from botocore.config import Config

ACCOUNT_ID = "111122223333"
ACCESS_KEY_ID = "AKIAOPENKMSE2ETEST01"
SECRET_ACCESS_KEY = "e2e-secret-access-key-do-not-use-anywhere-else"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str
    port: int
    extra_args: list[str] = field(default_factory=list)
    workers: int = 2
    process: subprocess.Popen[bytes] | None = None
    poll_interval: ClassVar[float] = 0.1  # seconds between health polls; subclasses may shorten it
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "openkms", "serve", "--dev",
            "--data-dir", str(self.data_dir), "--database-url", self.database_url,
            "--port", str(self.port), "--workers", str(self.workers),
            "--dev-access-key-id", ACCESS_KEY_ID, "--dev-secret-access-key", SECRET_ACCESS_KEY,
            "--dev-account-id", ACCOUNT_ID, *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        # The child keeps its own copy of the descriptor; closing ours avoids a ResourceWarning (an error here).
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float, expect_status: int = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"openkms exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as response:
                    if response.status == expect_status:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == expect_status:
                    return
            except OSError:
                pass
            time.sleep(self.poll_interval)
        raise RuntimeError(f"openkms did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (supervisor and workers)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def client(
        self,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        region: str = REGION,
        service: str = "kms",
    ) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL_KMS=self.endpoint,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def openkms(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an ``openkms`` admin command against this server's data directory and database."""
        return subprocess.run(
            [sys.executable, "-m", "openkms", *args, "--data-dir", str(self.data_dir), "--database-url",
             self.database_url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
