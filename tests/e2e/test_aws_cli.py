"""The AWS CLI (v1, ``aws kms ...``) against a real server, on every storage engine: what a user types.

The endpoint comes from ``AWS_ENDPOINT_URL_KMS`` (``server.cli_env()``), and once from ``--endpoint-url``.
Output is ``--output json`` parsed (list commands are paginated by the CLI itself, which drops
``Truncated``/``NextMarker``), except decrypt, which is piped as the AWS documentation shows:
``--output text --query Plaintext | base64 -d``.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kmsapi import key_arn, unique_alias, unknown_key_id
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

AWS = str(Path(sys.executable).parent / "aws")


def _aws(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AWS, "kms", *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _json(server: ServerProcess, *args: str) -> Any:
    done = _aws(server.cli_env(), *args, "--output", "json")
    assert done.returncode == 0, f"aws kms {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_cli_key_lifecycle(server: ServerProcess, tmp_path: Path) -> None:
    created = _json(server, "create-key", "--description", "from the cli", "--tags", "TagKey=env,TagValue=cli")
    meta = created["KeyMetadata"]
    key_id = meta["KeyId"]
    assert meta["Arn"] == key_arn(key_id)
    assert meta["AWSAccountId"] == ACCOUNT_ID
    assert meta["KeyState"] == "Enabled"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"

    described = _json(server, "describe-key", "--key-id", key_arn(key_id))["KeyMetadata"]
    assert described["Description"] == "from the cli"
    assert described["KeyId"] == key_id

    alias = unique_alias("cli")
    assert _json(server, "create-alias", "--alias-name", alias, "--target-key-id", key_id) is None
    aliases = _json(server, "list-aliases", "--key-id", key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [alias]
    assert aliases[0]["TargetKeyId"] == key_id

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"top secret \x00\xff bytes\n")
    encrypted = _json(server, "encrypt", "--key-id", alias, "--plaintext", f"fileb://{secret}")
    assert encrypted["KeyId"] == key_arn(key_id)
    assert encrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = tmp_path / "secret.enc"
    blob.write_bytes(base64.b64decode(encrypted["CiphertextBlob"]))
    script = (
        f"set -o pipefail; {shlex.quote(AWS)} kms decrypt --ciphertext-blob fileb://{shlex.quote(str(blob))} "
        "--output text --query Plaintext | base64 -d"
    )
    decrypted = subprocess.run(
        ["bash", "-c", script], env=server.cli_env(), capture_output=True, timeout=60, check=False
    )
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == secret.read_bytes()

    data_key = _json(server, "generate-data-key", "--key-id", key_id, "--key-spec", "AES_256")
    assert len(base64.b64decode(data_key["Plaintext"])) == 32
    assert data_key["KeyId"] == key_arn(key_id)

    _json(server, "tag-resource", "--key-id", key_id, "--tags", "TagKey=team,TagValue=security")
    tags = _json(server, "list-resource-tags", "--key-id", key_id)
    assert {t["TagKey"]: t["TagValue"] for t in tags["Tags"]} == {"env": "cli", "team": "security"}

    scheduled = _json(server, "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    assert scheduled["KeyId"] == key_arn(key_id)
    assert scheduled["KeyState"] == "PendingDeletion"
    assert scheduled["PendingWindowInDays"] == 7


def test_cli_with_explicit_endpoint_url(server: ServerProcess) -> None:
    """Without AWS_ENDPOINT_URL_KMS, ``--endpoint-url`` points the CLI at the server."""
    env = server.cli_env()
    del env["AWS_ENDPOINT_URL_KMS"]
    done = _aws(env, "create-key", "--endpoint-url", server.endpoint, "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["KeyMetadata"]["KeyState"] == "Enabled"


def test_cli_reports_service_errors(server: ServerProcess) -> None:
    """A service error fails the command (exit status 255 in CLI v1, 254 in v2) and names the AWS error code."""
    done = _aws(server.cli_env(), "describe-key", "--key-id", unknown_key_id())
    assert done.returncode in (254, 255), (done.returncode, done.stderr)
    assert "(NotFoundException)" in done.stderr
