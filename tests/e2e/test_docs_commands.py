"""Every ``sh`` and ``python`` block of README.md and docs/*.md runs as written against a real dev server (issue 18
item 13: the README's quick start failed as written).

Each document gets a fresh dev server started as its "Using it" section starts one (access key ``AKIAEXAMPLE``,
secret ``example-secret``, account ``111122223333``, SQLite in ``./openkms-data``), and a fresh working directory
that holds that data directory, so the ``openkms`` commands find it as they would beside ``scripts/serve-dev``.
The document's blocks then run in order in one bash script (``set -euo pipefail``): the environment one block
exports, the next one sees, as in a reader's shell; a ``python`` block runs with the venv's interpreter. The
AWS CLI is the venv's (``aws``) and ``openkms`` the venv's, first on ``PATH``. The one change made to a block is
the port: ``127.0.0.1:8080`` becomes the test server's. The shell starts as README's "Using it" leaves it
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_KMS`` exported).

A block that cannot run here (it starts or installs something, or runs for many minutes) starts with the visible
line ``# not run by tests/e2e/test_docs_commands.py: <why>``; this test skips exactly those and checks that the
few there are say why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
MARKER = "# not run by tests/e2e/test_docs_commands.py:"
MAX_SKIPPED = 12  # the few blocks that cannot run; more means the docs drifted from being runnable
# A fenced block: its language and its body, up to the closing fence. Linear: the body is a lazy run of any
# character that ends at the first line that is a fence (no nested quantifier).
_FENCE_RE = re.compile(r"^```([a-z]*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

ACCESS_KEY_ID = "AKIAEXAMPLE"
SECRET_ACCESS_KEY = "example-secret"  # the README's own example secret
ACCOUNT_ID = "111122223333"


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    language: str
    body: str

    @property
    def skip_reason(self) -> str | None:
        first = self.body.lstrip("\n").split("\n", 1)[0]
        return first[len(MARKER) :].strip() if first.startswith(MARKER) else None


def blocks(document: str) -> list[Block]:
    text = (ROOT / document).read_text()
    return [
        Block(document, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))
        for match in _FENCE_RE.finditer(text)
        if match.group(1) in ("sh", "python")
    ]


class DevServer(ServerProcess):
    """``scripts/serve-dev`` with the README's credentials, in ``<work>/openkms-data``."""

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "openkms", "serve", "--dev", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--workers", "1", "--dev-access-key-id", ACCESS_KEY_ID,
            "--dev-secret-access-key", SECRET_ACCESS_KEY, "--dev-account-id", ACCOUNT_ID,
        ]  # fmt: skip


def script_for(runnable: list[Block], port: int) -> str:
    """One bash script that runs the blocks in order, each announced on stderr (where a failure points)."""
    parts = ["set -euo pipefail"]
    for block in runnable:
        body = block.body.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        parts.append(f"echo '>>> {block.document}:{block.line}' >&2")
        if block.language == "python":
            parts.append(f"python - <<'OPENKMS_DOCS_PYTHON'\n{body}OPENKMS_DOCS_PYTHON")
        else:
            parts.append(f"set -x\n{body}set +x")
    return "\n".join(parts) + "\n"


def environment(work: Path, endpoint: str) -> dict[str, str]:
    """A reader's shell after README's "Using it": its exports, the venv first on PATH, nothing of the test run's
    own AWS or openkms settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENKMS_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(work),  # no ~/.aws of the machine
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_KMS=endpoint,
    )
    return env


def test_the_documents_have_runnable_blocks_and_few_skipped() -> None:
    everything = [block for document in DOCUMENTS for block in blocks(document)]
    skipped = [block for block in everything if block.skip_reason is not None]
    assert len(everything) - len(skipped) >= 15, "the extraction found too few blocks to run"
    assert len(skipped) <= MAX_SKIPPED, [f"{b.document}:{b.line}" for b in skipped]
    for block in skipped:
        assert block.skip_reason, f"{block.document}:{block.line} says it is not run, but not why"
    quick_start = [b for b in blocks("README.md") if "aws kms encrypt --key-id alias/demo" in b.body]
    assert quick_start and quick_start[0].skip_reason is None, "the README's quick start must run"


@pytest.mark.slow  # a server per document, and dozens of CLI processes
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if any(b.skip_reason is None for b in blocks(d))])
def test_the_commands_run_as_written(document: str, tmp_path: Path) -> None:
    runnable = [block for block in blocks(document) if block.skip_reason is None]
    server = DevServer(tmp_path / "openkms-data", "", free_port())
    server.start()
    try:
        done = subprocess.run(
            ["bash", "-c", script_for(runnable, server.port)],
            cwd=tmp_path,
            env=environment(tmp_path, server.endpoint),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, f"{document} failed ({done.returncode}):\n{done.stderr[-6000:]}\n{done.stdout[-2000:]}"
