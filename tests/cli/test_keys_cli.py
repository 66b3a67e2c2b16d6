"""``openkms keys list`` and ``openkms keys show``: tables, filters, ``--json`` in AWS's shapes, exit codes.

Keys are made through the whole request path in this process (tests/inprocess.py); what ``show --json`` prints
is compared with what the API itself answers for the same key (DescribeKey, ListGrants, GetKeyPolicy...).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openkms.cli.common import iso
from tests.byok import wrap
from tests.cli.running import Run, openkms
from tests.inprocess import ACCOUNT_ID, InProcessKMS

OTHER_REGION = "eu-west-1"
ESCAPE = "\x1b[2J"  # a terminal escape (clear screen) hidden in a description


@dataclass
class Keys:
    data_dir: Path
    kms: InProcessKMS
    ids: dict[str, str]

    def run(self, *args: str) -> Run:
        return openkms("keys", *args, "--data-dir", str(self.data_dir))

    def api(self, operation: str, params: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
        status, body = self.kms.call(operation, params, region)
        assert status == 200, (operation, body)
        return body


def _table(text: str) -> list[list[str]]:
    """Rows split on runs of two or more spaces (cells may hold single spaces)."""
    import re

    return [re.split(r" {2,}", line.strip()) for line in text.strip().splitlines()]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    data_dir = tmp_path_factory.mktemp("keys") / "data"
    data_dir.mkdir(mode=0o700)
    kms = InProcessKMS(data_dir)
    made = Keys(data_dir, kms, {})

    def create(label: str, region: str = "us-east-1", **params: Any) -> str:
        key_id: str = made.api("CreateKey", params, region)["KeyMetadata"]["KeyId"]
        made.ids[label] = key_id
        return key_id

    prod = create("prod", Description=f"payments {ESCAPE}production", Tags=[{"TagKey": "env", "TagValue": "production"},
                  {"TagKey": "team", "TagValue": "payments"}])  # fmt: skip
    made.api("CreateAlias", {"AliasName": "alias/Payments-Prod", "TargetKeyId": prod})
    made.api("EnableKeyRotation", {"KeyId": prod, "RotationPeriodInDays": 90})
    made.api("RotateKeyOnDemand", {"KeyId": prod})
    made.api("Encrypt", {"KeyId": prod, "Plaintext": "aGVsbG8="})
    made.api("CreateGrant", {"KeyId": prod, "GranteePrincipal": f"arn:aws:iam::{ACCOUNT_ID}:user/app",
                             "Operations": ["Decrypt", "Encrypt"], "Name": "app-grant"})  # fmt: skip
    dev = create("dev", Description="payments dev", Tags=[{"TagKey": "env", "TagValue": "dev"}])
    made.api("CreateAlias", {"AliasName": "alias/payments-dev", "TargetKeyId": dev})
    made.api("DisableKey", {"KeyId": dev})
    rsa = create("rsa", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Description="x" * 60)
    made.api("ScheduleKeyDeletion", {"KeyId": rsa, "PendingWindowInDays": 7})
    create("hmac", OTHER_REGION, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    yield made
    kms.close()


# ---- list --------------------------------------------------------------------------------------------------


def test_list_shows_every_key_of_every_region_in_a_table(keys: Keys) -> None:
    run = keys.run("list")
    assert run.code == 0 and run.err == "", run
    header, *rows = _table(run.out)
    assert header == ["Account", "Region", "KeyId", "Aliases", "State", "Spec", "Usage", "Created", "Description"]
    by_id = {row[2]: row for row in rows}
    assert set(by_id) == set(keys.ids.values())
    assert by_id[keys.ids["prod"]][:7] == [ACCOUNT_ID, "us-east-1", keys.ids["prod"], "alias/Payments-Prod",
                                           "Enabled", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"]  # fmt: skip
    assert by_id[keys.ids["dev"]][4] == "Disabled"
    assert by_id[keys.ids["rsa"]][4:6] == ["PendingDeletion", "RSA_2048"]
    assert by_id[keys.ids["rsa"]][-1] == "x" * 37 + "..."  # long descriptions are cut in the table
    assert by_id[keys.ids["hmac"]][1] == OTHER_REGION
    # Ordered by account, region, key id.
    assert [row[1:3] for row in rows] == sorted(row[1:3] for row in rows)


def test_control_characters_are_shown_escaped_never_sent_to_the_terminal(keys: Keys) -> None:
    for run in (keys.run("list"), keys.run("show", keys.ids["prod"])):
        assert "\x1b" not in run.out
        assert "payments \\x1b[2Jproduction" in run.out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tag", "env=production"], ["prod"]),
        (["--tag", "env"], ["prod", "dev"]),
        (["--tag", "env", "--tag", "team=payments"], ["prod"]),
        (["--tag", "env=staging"], []),
        (["--alias", "PAYMENTS"], ["prod", "dev"]),
        (["--alias", "alias/payments-d"], ["dev"]),
        (["--state", "disabled"], ["dev"]),
        (["--state", "PendingDeletion"], ["rsa"]),
        (["--spec", "rsa_2048"], ["rsa"]),
        (["--usage", "GENERATE_VERIFY_MAC"], ["hmac"]),
        (["--region", OTHER_REGION], ["hmac"]),
        (["--region", "us-east-1", "--state", "Enabled"], ["prod"]),
        (["--account-id", "999988887777"], []),
        (["--account-id", ACCOUNT_ID, "--spec", "SYMMETRIC_DEFAULT"], ["prod", "dev"]),
    ],
)
def test_every_filter_given_must_match(keys: Keys, args: list[str], expected: list[str]) -> None:
    run = keys.run("list", "--json", *args)
    assert run.code == 0, run
    assert sorted(k["KeyId"] for k in run.json()) == sorted(keys.ids[label] for label in expected)


def test_an_empty_result_says_so_in_the_table_and_is_not_an_error(keys: Keys) -> None:
    run = keys.run("list", "--tag", "env=staging")
    assert run.code == 0 and run.out.splitlines()[-1] == "no keys match", run


def test_one_region_lists_without_account_and_region_columns(keys: Keys) -> None:
    header, row = _table(keys.run("list", "--region", OTHER_REGION).out)
    assert header == ["KeyId", "Aliases", "State", "Spec", "Usage", "Created", "Description"]
    assert row == [keys.ids["hmac"], "-", "Enabled", "HMAC_256", "GENERATE_VERIFY_MAC", row[5], "-"]  # none: "-"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--state", "Bogus"], ["--state 'Bogus'", "Enabled", "PendingDeletion"]),
        (["--spec", "AES_256"], ["--spec 'AES_256'", "SYMMETRIC_DEFAULT"]),
        (["--usage", "WRAP"], ["--usage 'WRAP'", "SIGN_VERIFY"]),
        (["--tag", "=production"], ["--tag '=production'", "KEY=VALUE"]),
    ],
)
def test_refused_filters_are_validation_errors_with_exit_2(keys: Keys, args: list[str], fragments: list[str]) -> None:
    run = keys.run("list", *args)
    assert run.code == 2 and run.out == "", run
    assert run.err.startswith("ValidationException: ")
    for fragment in fragments:
        assert fragment in run.err


def test_list_json_has_awss_metadata_fields_with_iso_dates(keys: Keys) -> None:
    listed = {k["KeyId"]: k for k in keys.run("list", "--json").json()}
    prod = listed[keys.ids["prod"]]
    described = keys.api("DescribeKey", {"KeyId": keys.ids["prod"]})["KeyMetadata"]
    assert prod["Arn"] == described["Arn"] and prod["KeyState"] == "Enabled"
    assert prod["Description"] == f"payments {ESCAPE}production"  # JSON carries the text exactly (escaped by JSON)
    assert prod["CreationDate"] == iso(described["CreationDate"])
    assert prod["EncryptionAlgorithms"] == described["EncryptionAlgorithms"]
    assert prod["Aliases"] == ["alias/Payments-Prod"]
    assert prod["Tags"] == [{"TagKey": "env", "TagValue": "production"}, {"TagKey": "team", "TagValue": "payments"}]
    assert prod["Region"] == "us-east-1"
    rsa = listed[keys.ids["rsa"]]
    assert rsa["DeletionDate"].endswith("Z") and rsa["SigningAlgorithms"]


# ---- show --------------------------------------------------------------------------------------------------


def _fields(text: str) -> dict[str, str]:
    head = text.split("\n\n", 1)[0]
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in head.splitlines()}


def test_show_finds_the_key_by_id_arn_alias_and_alias_arn(keys: Keys) -> None:
    prod = keys.ids["prod"]
    arn = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{prod}"
    for name in (prod, arn, "alias/Payments-Prod", f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/Payments-Prod"):
        run = keys.run("show", name)
        assert run.code == 0, (name, run)
        assert _fields(run.out)["KeyId"] == prod


def test_show_prints_the_whole_key_readably(keys: Keys) -> None:
    run = keys.run("show", "alias/Payments-Prod")
    fields = _fields(run.out)
    assert fields["State"] == "Enabled" and fields["Aliases"] == "alias/Payments-Prod"
    assert fields["Tags"] == "env=production, team=payments"
    assert fields["Rotation"].startswith("automatic every 90 days, next 20") and "1 rotation(s)" in fields["Rotation"]
    assert fields["LastUsed"].startswith("Encrypt at ")
    blocks = run.out.split("\n\n")
    rotations = next(b for b in blocks if b.startswith("Rotations:"))
    assert "ON_DEMAND" in rotations and "CURRENT" in rotations
    grants = next(b for b in blocks if b.startswith("Grants: 1"))
    assert "app-grant" in grants and "Decrypt,Encrypt" in grants
    policy = run.out.split("Policy:\n", 1)[1]
    assert json.loads(policy) == json.loads(keys.api("GetKeyPolicy", {"KeyId": keys.ids["prod"]})["Policy"])


def test_show_of_a_key_pending_deletion_names_the_date_and_what_cannot_rotate(keys: Keys) -> None:
    fields = _fields(keys.run("show", keys.ids["rsa"]).out)
    assert fields["State"] == "PendingDeletion"
    assert fields["DeletionDate"].startswith("20") and "cancel-key-deletion" in fields["DeletionDate"]
    assert fields["Rotation"].startswith("not supported for RSA_2048")
    assert fields["LastUsed"] == "not used since tracking began"


def test_show_json_matches_what_the_api_answers(keys: Keys) -> None:
    prod = keys.ids["prod"]
    shown = keys.run("show", prod, "--json").json()
    described = keys.api("DescribeKey", {"KeyId": prod})["KeyMetadata"]
    expected_meta = {k: iso(v) if k == "CreationDate" else v for k, v in described.items()}
    assert shown["KeyMetadata"] == expected_meta
    assert shown["Aliases"] == [{"AliasName": "alias/Payments-Prod",
                                 "AliasArn": f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/Payments-Prod"}]  # fmt: skip
    tags = keys.api("ListResourceTags", {"KeyId": prod})["Tags"]
    assert shown["Tags"] == tags
    [grant] = keys.api("ListGrants", {"KeyId": prod})["Grants"]
    assert shown["Grants"] == [{**grant, "CreationDate": iso(grant["CreationDate"])}]
    status = keys.api("GetKeyRotationStatus", {"KeyId": prod})
    assert shown["Rotation"]["KeyRotationEnabled"] is status["KeyRotationEnabled"] is True
    assert shown["Rotation"]["RotationPeriodInDays"] == status["RotationPeriodInDays"] == 90
    assert shown["Rotation"]["NextRotationDate"] == iso(status["NextRotationDate"])
    rotations = keys.api("ListKeyRotations", {"KeyId": prod, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"})["Rotations"]
    assert shown["Rotation"]["Rotations"] == [
        {k: iso(v) if k == "RotationDate" else v for k, v in r.items()} for r in rotations
    ]
    last = keys.api("GetKeyLastUsage", {"KeyId": prod})["KeyLastUsage"]
    assert shown["KeyLastUsage"]["Operation"] == last["Operation"] == "Encrypt"
    assert shown["KeyLastUsage"]["KmsRequestId"] == last["KmsRequestId"]
    assert shown["Policy"] == json.loads(keys.api("GetKeyPolicy", {"KeyId": prod})["Policy"])


def test_show_of_a_key_in_another_region(keys: Keys) -> None:
    shown = keys.run("show", keys.ids["hmac"], "--json").json()
    assert shown["Region"] == OTHER_REGION and shown["KeyMetadata"]["KeySpec"] == "HMAC_256"
    assert "KeyRotationEnabled" not in shown["Rotation"] and shown["Rotation"]["AutomaticRotationSupported"] is False
    alias_elsewhere = keys.run("show", "alias/payments-dev", "--region", OTHER_REGION)
    assert alias_elsewhere.code == 1
    assert f"{OTHER_REGION}:{ACCOUNT_ID}:alias/payments-dev is not found" in alias_elsewhere.err


@pytest.mark.parametrize(
    ("name", "code", "prefix"),
    [
        ("alias/nope", 1, f"NotFoundException: Alias arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/nope is not found."),
        ("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", 1, "NotFoundException: Key '"),
        ("not a key", 2, "ValidationException: --key-id 'not a key'"),
    ],
)
def test_show_of_what_does_not_exist_says_so(keys: Keys, name: str, code: int, prefix: str) -> None:
    run = keys.run("show", name)
    assert (run.code, run.out) == (code, ""), run
    assert run.err.startswith(prefix), run.err


def test_show_is_confined_to_the_account_given(keys: Keys) -> None:
    run = keys.run("show", keys.ids["prod"], "--account-id", "999988887777")
    assert run.code == 1 and run.err.startswith("NotFoundException: "), run


@pytest.mark.parametrize(
    "arn", ["arn:aws:kms:eu-west-1:{account}:key/{key}", "arn:aws:kms:us-east-1:999988887777:key/{key}"]
)
def test_show_of_a_key_arn_naming_another_region_or_account_is_not_found(keys: Keys, arn: str) -> None:
    run = keys.run("show", arn.format(account=ACCOUNT_ID, key=keys.ids["prod"]))
    assert run.code == 1 and run.err.startswith("NotFoundException: Key 'arn:aws:kms:"), run


# ---- a data directory that holds no database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["keys", "list"], ["keys", "show", "alias/x"], ["usage"], ["status"], ["audit", "query"]]
)
def test_read_only_commands_refuse_a_directory_without_a_database_and_create_none(
    tmp_path: Path, command: list[str]
) -> None:
    run = openkms(*command, "--data-dir", str(tmp_path / "typo"))
    assert run.code == 1 and run.out == "", run
    assert "no openkms database" in run.err and "typo" in run.err
    assert not (tmp_path / "typo").exists()


def test_exit_codes_of_the_real_process(keys: Keys) -> None:
    def process(*args: str) -> int:
        return subprocess.run(
            [sys.executable, "-m", "openkms", "keys", *args, "--data-dir", str(keys.data_dir)],
            capture_output=True,
            check=False,
        ).returncode

    assert process("list") == 0
    assert process("show", "alias/nope") == 1
    assert process("list", "--state", "Bogus") == 2


def test_show_lists_imported_material_as_list_key_rotations_does(keys: Keys) -> None:
    """An EXTERNAL key with material staged for rotation (last in this module: it adds a key)."""
    key_id = keys.api("CreateKey", {"Origin": "EXTERNAL"})["KeyMetadata"]["KeyId"]
    for import_type in ({}, {"ImportType": "NEW_KEY_MATERIAL", "KeyMaterialDescription": "staged"}):
        got = keys.api(
            "GetParametersForImport",
            {"KeyId": key_id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
        )
        encrypted = wrap(base64.b64decode(got["PublicKey"]), "RSAES_OAEP_SHA_256", os.urandom(32))
        params = {"KeyId": key_id, "ImportToken": got["ImportToken"], "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
        keys.api(
            "ImportKeyMaterial", {**params, "EncryptedKeyMaterial": base64.b64encode(encrypted).decode(), **import_type}
        )
    shown = keys.run("show", key_id, "--json").json()["Rotation"]["Rotations"]
    listed = keys.api("ListKeyRotations", {"KeyId": key_id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"})["Rotations"]
    assert [r["KeyMaterialState"] for r in shown] == ["CURRENT", "PENDING_ROTATION"]
    assert shown == listed and shown[1]["KeyMaterialDescription"] == "staged"
