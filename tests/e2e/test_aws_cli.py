"""The AWS CLI (v1, ``aws kms ...``) against a real server, on every storage engine: what a user types.

The endpoint comes from ``AWS_ENDPOINT_URL_KMS`` (``server.cli_env()``), and once from ``--endpoint-url``.
Output is ``--output json`` parsed (list commands are paginated by the CLI itself, which drops
``Truncated``/``NextMarker``), except decrypt, which is piped as the AWS documentation shows:
``--output text --query Plaintext | base64 -d``.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.byok import wrap
from tests.e2e.kmsapi import key_arn, unique_alias, unknown_key_id, utcnow
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


def test_cli_imports_key_material(server: ServerProcess, tmp_path: Path) -> None:
    """The steps of AWS's "Importing key material" with the CLI: the parameters are written to files, the material
    is wrapped outside (here pyca, in the guide OpenSSL) and handed back with ``fileb://``."""
    meta = _json(server, "create-key", "--origin", "EXTERNAL", "--description", "byok from the cli")["KeyMetadata"]
    key_id = meta["KeyId"]
    assert (meta["Origin"], meta["KeyState"]) == ("EXTERNAL", "PendingImport")
    params = _json(server, "get-parameters-for-import", "--key-id", key_id,
                   "--wrapping-algorithm", "RSA_AES_KEY_WRAP_SHA_256", "--wrapping-key-spec", "RSA_3072")  # fmt: skip
    assert params["KeyId"] == key_arn(key_id)
    token, encrypted = tmp_path / "ImportToken.bin", tmp_path / "EncryptedKeyMaterial.bin"
    token.write_bytes(base64.b64decode(params["ImportToken"]))
    encrypted.write_bytes(wrap(base64.b64decode(params["PublicKey"]), "RSA_AES_KEY_WRAP_SHA_256", os.urandom(32)))
    valid_to = (utcnow() + datetime.timedelta(days=30)).replace(microsecond=0)
    imported = _json(server, "import-key-material", "--key-id", key_id,
                     "--encrypted-key-material", f"fileb://{encrypted}", "--import-token", f"fileb://{token}",
                     "--expiration-model", "KEY_MATERIAL_EXPIRES",
                     "--valid-to", valid_to.strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
    assert imported["KeyId"] == key_arn(key_id) and len(imported["KeyMaterialId"]) == 64
    described = _json(server, "describe-key", "--key-id", key_id)["KeyMetadata"]
    assert (described["KeyState"], described["ExpirationModel"]) == ("Enabled", "KEY_MATERIAL_EXPIRES")
    assert described["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"under imported material")
    assert _json(server, "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{secret}")["KeyId"] == key_arn(key_id)

    deleted = _json(server, "delete-imported-key-material", "--key-id", key_id)
    assert deleted["KeyMaterialId"] == imported["KeyMaterialId"]
    assert _json(server, "describe-key", "--key-id", key_id)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_cli_rotates_imported_key_material(server: ServerProcess, tmp_path: Path) -> None:
    """Import, stage new material with ``--import-type NEW_KEY_MATERIAL``, rotate, list: what a user types."""
    key_id = _json(server, "create-key", "--origin", "EXTERNAL")["KeyMetadata"]["KeyId"]

    def import_material(name: str, *extra: str) -> str:
        params = _json(server, "get-parameters-for-import", "--key-id", key_id,
                       "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048")  # fmt: skip
        token, encrypted = tmp_path / f"{name}.token", tmp_path / f"{name}.material"
        token.write_bytes(base64.b64decode(params["ImportToken"]))
        encrypted.write_bytes(wrap(base64.b64decode(params["PublicKey"]), "RSAES_OAEP_SHA_256", os.urandom(32)))
        imported = _json(server, "import-key-material", "--key-id", key_id,
                         "--encrypted-key-material", f"fileb://{encrypted}", "--import-token", f"fileb://{token}",
                         "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", *extra)  # fmt: skip
        material_id: str = imported["KeyMaterialId"]
        return material_id

    first = import_material("first")
    second = import_material("second", "--import-type", "NEW_KEY_MATERIAL", "--key-material-description", "hsm 2")
    listed = _json(server, "list-key-rotations", "--key-id", key_id, "--include-key-material", "ALL_KEY_MATERIAL")
    assert [(r["KeyMaterialId"], r["KeyMaterialState"]) for r in listed["Rotations"]] == [
        (first, "CURRENT"),
        (second, "PENDING_ROTATION"),
    ]
    assert _json(server, "rotate-key-on-demand", "--key-id", key_id)["KeyId"] == key_arn(key_id)
    assert _json(server, "describe-key", "--key-id", key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == second
    (rotation,) = _json(server, "list-key-rotations", "--key-id", key_id)["Rotations"]
    assert (rotation["KeyMaterialId"], rotation["RotationType"], rotation["KeyMaterialDescription"]) == (
        second,
        "ON_DEMAND",
        "hsm 2",
    )
