"""``openkms iam``: every subcommand, its table and ``--json`` output, its exit codes, and its effect on a live server.

Exit codes: 0 ok, 1 a refused request (unknown user, duplicate, bad value), 2 a usage error (argparse). A secret
access key is printed once, by ``create-access-key``, and never by ``list-access-keys``. Changes made by the CLI
on the data directory of a running server take effect on the server's very next request, on every worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.server import ACCOUNT_ID, REGION, ServerProcess, free_port

PASSPHRASE = "iam cli test passphrase 42"
ENVS_TO_DROP = ("OPENKMS_UNSEAL_PASSPHRASE", "OPENKMS_INIT_PASSPHRASE", "OPENKMS_DATA_DIR", "OPENKMS_DATABASE_URL")
KEY_COLUMNS = ["AccountId", "UserName", "AccessKeyId", "Status"]
# What a user that calls KMS in these tests needs once policy evaluation is on (no policy: implicit deny).
KMS_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
USER_COLUMNS = ["AccountId", "UserName", "UserId", "Arn"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENVS_TO_DROP}
    env.update(extra)
    return env


def iam(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``openkms iam ARGS --data-dir DATA_DIR``, never on a terminal (so it never prompts)."""
    return subprocess.run(
        [sys.executable, "-m", "openkms", "iam", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else _env(),
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stderr == "", result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 1 with a one-line ``openkms: ...`` message, no traceback, nothing on stdout."""
    assert result.returncode == 1, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("openkms: "), result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """A table as printed by the CLI: a header line, then one line per row, columns separated by spaces."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


class _Server(ServerProcess):
    """The e2e dev server, closing its copy of the log file once the child holds it."""

    def start(self, timeout: float = 60) -> _Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_healthy(timeout)
        return self


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """A running dev server (2 workers); its data directory is the one the CLI manages."""
    base = tmp_path_factory.mktemp("iam")
    process = _Server(base / "data", f"sqlite:///{base / 'data' / 'openkms.db'}", free_port()).start()
    yield process
    process.stop()


@pytest.fixture
def data_dir(server: _Server) -> Path:
    return server.data_dir


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A short name unique to the test, so tests sharing the server's data directory never collide."""
    return re.sub(r"[^A-Za-z0-9]", "", request.node.name)[-40:]


@pytest.fixture
def init_dir(tmp_path: Path) -> tuple[Path, Path, str]:
    """A data directory made by ``openkms init`` (passphrase seal): (data dir, passphrase file, account id)."""
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE)
    passphrase_file.chmod(0o600)
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "openkms", "init", "--data-dir", str(data_dir), "--passphrase-file",
         str(passphrase_file), "--json"],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return data_dir, passphrase_file, json.loads(result.stdout)["AccountId"]


def unsealing() -> dict[str, str]:
    """The environment of a change on a passphrase-sealed directory: every change needs the passphrase."""
    return _env(OPENKMS_UNSEAL_PASSPHRASE=PASSPHRASE)


def allow_kms(data_dir: Path, account: str, user: str) -> None:
    args = ["--account-id", account, "--user-name", user, "--policy-name", "kms-all", "--policy-document", KMS_ALL]
    assert ok(iam(data_dir, "put-user-policy", *args)) == ""


def kms_client(endpoint: str, access_key_id: str, secret_access_key: str) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


# ---------------------------------------------------------------------------------------------------------------
# Accounts and users
# ---------------------------------------------------------------------------------------------------------------


def test_create_account(data_dir: Path) -> None:
    header, rows = table(ok(iam(data_dir, "create-account", "--account-id", "444455556666")))
    assert (header, rows) == (["AccountId"], [["444455556666"]])
    assert json.loads(ok(iam(data_dir, "create-account", "--account-id", "555566667777", "--json"))) == {
        "AccountId": "555566667777"
    }
    generated = json.loads(ok(iam(data_dir, "create-account", "--json")))["AccountId"]
    assert re.fullmatch(r"\d{12}", generated), generated
    refused(iam(data_dir, "create-account", "--account-id", "12345"), "12 digits")


def test_create_user_and_list_users(data_dir: Path) -> None:
    account = "222233334444"
    ok(iam(data_dir, "create-account", "--account-id", account))
    header, rows = table(ok(iam(data_dir, "create-user", "--account-id", account, "--user-name", "alice")))
    assert header == ["UserName", "UserId", "Arn"]
    assert rows[0][0] == "alice" and rows[0][1].startswith("AIDA")
    assert rows[0][2] == f"arn:aws:iam::{account}:user/alice"
    bob = json.loads(ok(iam(data_dir, "create-user", "--account-id", account, "--user-name", "bob", "--json")))
    assert set(bob) == {"UserName", "UserId", "Arn"}
    assert bob["UserName"] == "bob" and bob["Arn"] == f"arn:aws:iam::{account}:user/bob"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", bob["UserId"]), bob

    listed = json.loads(ok(iam(data_dir, "list-users", "--account-id", account, "--json")))
    assert [u["UserName"] for u in listed] == ["alice", "bob"]
    assert listed[1] == {"AccountId": account, **bob}
    header, rows = table(ok(iam(data_dir, "list-users")))
    assert header == USER_COLUMNS
    assert [account, "bob", bob["UserId"], bob["Arn"]] in rows
    assert [ACCOUNT_ID, "admin"] in [r[:2] for r in rows]  # every account when none is given

    refused(iam(data_dir, "create-user", "--account-id", account, "--user-name", "alice"), "already exists")
    refused(iam(data_dir, "create-user", "--account-id", account, "--user-name", "no spaces"), "user name")
    refused(iam(data_dir, "create-user", "--account-id", "999988887777", "--user-name", "carol"), "no account")


def test_user_names_are_unique_ignoring_case(data_dir: Path) -> None:
    """IAM: creating ``Dave`` where ``dave`` exists is EntityAlreadyExists, "User with name Dave already exists."
    (issue 15); another account is another namespace, and a deleted user's name is free in any case."""
    account, other = "222211113333", "222211114444"
    for made in (account, other):
        ok(iam(data_dir, "create-account", "--account-id", made))
    ok(iam(data_dir, "create-user", "--account-id", account, "--user-name", "dave"))
    for variant in ("Dave", "DAVE", "dave"):
        refused(
            iam(data_dir, "create-user", "--account-id", account, "--user-name", variant),
            f"User with name {variant} already exists.",
        )
    ok(iam(data_dir, "create-user", "--account-id", other, "--user-name", "Dave"))
    ok(iam(data_dir, "delete-user", "--account-id", account, "--user-name", "dave"))
    ok(iam(data_dir, "create-user", "--account-id", account, "--user-name", "Dave"))
    listed = json.loads(ok(iam(data_dir, "list-users", "--account-id", account, "--json")))
    assert [u["UserName"] for u in listed] == ["Dave"]


def test_list_users_of_an_account_without_users_is_an_empty_list(data_dir: Path) -> None:
    ok(iam(data_dir, "create-account", "--account-id", "333344445555"))
    assert json.loads(ok(iam(data_dir, "list-users", "--account-id", "333344445555", "--json"))) == []
    header, rows = table(ok(iam(data_dir, "list-users", "--account-id", "333344445555")))
    assert (header, rows) == (USER_COLUMNS, [])


def test_the_account_defaults_to_the_only_one(init_dir: tuple[Path, Path, str]) -> None:
    data_dir, _, account = init_dir
    created = json.loads(ok(iam(data_dir, "create-user", "--user-name", "dave", "--json", env=unsealing())))
    assert created["Arn"] == f"arn:aws:iam::{account}:user/dave"


def test_the_only_account_is_the_default_even_before_it_has_users(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ok(iam(data_dir, "create-account", "--account-id", "121212121212"))
    created = json.loads(ok(iam(data_dir, "create-user", "--user-name", "ivy", "--json")))
    assert created["Arn"] == "arn:aws:iam::121212121212:user/ivy"


def test_a_second_account_without_users_still_makes_the_default_ambiguous(init_dir: tuple[Path, Path, str]) -> None:
    data_dir, _, _ = init_dir
    ok(iam(data_dir, "create-account", "--account-id", "666677778888", env=unsealing()))
    # Two accounts now: "the only account" no longer exists, so the CLI must ask which one.
    refused(iam(data_dir, "create-user", "--user-name", "erin", env=unsealing()), "give --account-id")


def test_the_account_must_be_given_when_several_have_users(init_dir: tuple[Path, Path, str]) -> None:
    data_dir, _, _ = init_dir
    ok(iam(data_dir, "create-account", "--account-id", "666677778888", env=unsealing()))
    ok(iam(data_dir, "create-user", "--account-id", "666677778888", "--user-name", "frank", env=unsealing()))
    refused(iam(data_dir, "create-user", "--user-name", "erin", env=unsealing()), "give --account-id")
    refused(iam(data_dir, "delete-user", "--user-name", "frank", env=unsealing()), "give --account-id")


def test_delete_user_removes_the_user_and_its_access_keys(data_dir: Path, unique: str) -> None:
    user = f"del{unique}"[:64]
    ok(iam(data_dir, "create-user", "--account-id", ACCOUNT_ID, "--user-name", user))
    ids = [
        json.loads(ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json")))[
            "AccessKeyId"
        ]
        for _ in range(2)
    ]
    assert ok(iam(data_dir, "delete-user", "--account-id", ACCOUNT_ID, "--user-name", user)) == ""
    assert json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", user, "--json"))) == []
    all_keys = json.loads(ok(iam(data_dir, "list-access-keys", "--json")))
    assert not {k["AccessKeyId"] for k in all_keys} & set(ids)
    users = json.loads(ok(iam(data_dir, "list-users", "--account-id", ACCOUNT_ID, "--json")))
    assert user not in [u["UserName"] for u in users]
    refused(iam(data_dir, "delete-user", "--account-id", ACCOUNT_ID, "--user-name", user), f"no user {user}")
    for key_id in ids:
        refused(iam(data_dir, "delete-access-key", "--access-key-id", key_id), f"no access key {key_id}")


# ---------------------------------------------------------------------------------------------------------------
# Access keys
# ---------------------------------------------------------------------------------------------------------------


def test_create_access_key_prints_the_secret_once_and_list_never_does(data_dir: Path, unique: str) -> None:
    user = f"key{unique}"[:64]
    ok(iam(data_dir, "create-user", "--account-id", ACCOUNT_ID, "--user-name", user))
    created = json.loads(
        ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json"))
    )
    assert set(created) == {"UserName", "AccessKeyId", "SecretAccessKey", "Status", "AccountId"}
    assert created["UserName"] == user and created["AccountId"] == ACCOUNT_ID and created["Status"] == "Active"
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", created["AccessKeyId"]), created
    assert len(created["SecretAccessKey"]) == 40

    header, rows = table(ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user)))
    assert header == ["UserName", "AccessKeyId", "SecretAccessKey", "Status", "AccountId"]
    second = dict(zip(header, rows[0], strict=True))
    assert second["UserName"] == user and second["Status"] == "Active" and len(second["SecretAccessKey"]) == 40
    secrets = [created["SecretAccessKey"], second["SecretAccessKey"]]
    assert secrets[0] != secrets[1]

    listings = [
        iam(data_dir, "list-access-keys"),
        iam(data_dir, "list-access-keys", "--json"),
        iam(data_dir, "list-access-keys", "--user-name", user),
        iam(data_dir, "list-access-keys", "--user-name", user, "--json"),
        iam(data_dir, "list-access-keys", "--account-id", ACCOUNT_ID, "--json"),
        iam(data_dir, "list-users", "--json"),
    ]
    for listing in listings:
        text = ok(listing)
        assert not any(secret in text for secret in secrets), listing.args
        assert "SecretAccessKey" not in text

    mine = json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", user, "--json")))
    assert sorted(mine, key=lambda k: k["AccessKeyId"]) == sorted(
        (
            {"AccountId": ACCOUNT_ID, "UserName": user, "AccessKeyId": k, "Status": "Active"}
            for k in (created["AccessKeyId"], second["AccessKeyId"])
        ),
        key=lambda k: k["AccessKeyId"],
    )
    header, rows = table(ok(iam(data_dir, "list-access-keys", "--user-name", user)))
    assert header == KEY_COLUMNS
    assert sorted(rows) == sorted(
        [ACCOUNT_ID, user, k, "Active"] for k in (created["AccessKeyId"], second["AccessKeyId"])
    )


def test_update_and_delete_access_key(data_dir: Path, unique: str) -> None:
    user = f"upd{unique}"[:64]
    ok(iam(data_dir, "create-user", "--account-id", ACCOUNT_ID, "--user-name", user))
    key_id = json.loads(
        ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json"))
    )["AccessKeyId"]

    def status() -> list[str]:
        keys = json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", user, "--json")))
        return [k["Status"] for k in keys]

    assert ok(iam(data_dir, "update-access-key", "--access-key-id", key_id, "--status", "Inactive")) == ""
    assert status() == ["Inactive"]
    assert ok(iam(data_dir, "update-access-key", "--access-key-id", key_id, "--status", "Active", "--json")) == ""
    assert status() == ["Active"]
    assert ok(iam(data_dir, "delete-access-key", "--access-key-id", key_id)) == ""
    assert status() == []
    refused(iam(data_dir, "delete-access-key", "--access-key-id", key_id), f"no access key {key_id}")
    refused(iam(data_dir, "update-access-key", "--access-key-id", key_id, "--status", "Active"), "no access key")


def test_unknown_user_is_refused(data_dir: Path) -> None:
    refused(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", "nobody"), "no user nobody")
    refused(iam(data_dir, "delete-user", "--account-id", ACCOUNT_ID, "--user-name", "nobody"), "no user nobody")
    assert json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", "nobody", "--json"))) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="no-subcommand"),
        pytest.param(["no-such-command"], id="unknown-subcommand"),
        pytest.param(["create-user"], id="missing-user-name"),
        pytest.param(["delete-user"], id="delete-missing-user-name"),
        pytest.param(["create-access-key"], id="key-missing-user-name"),
        pytest.param(["update-access-key", "--access-key-id", "AKIAX"], id="missing-status"),
        pytest.param(["update-access-key", "--access-key-id", "AKIAX", "--status", "Maybe"], id="bad-status"),
        pytest.param(["delete-access-key"], id="missing-access-key-id"),
        pytest.param(["list-users", "--bogus"], id="unknown-option"),
    ],
)
def test_usage_errors_exit_2(data_dir: Path, args: list[str]) -> None:
    result = iam(data_dir, *args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_exits_0(data_dir: Path) -> None:
    for args in ([], ["create-access-key"], ["list-access-keys"]):
        text = ok(iam(data_dir, *args, "--help"))
        assert "usage:" in text


# ---------------------------------------------------------------------------------------------------------------
# A passphrase-sealed data directory
# ---------------------------------------------------------------------------------------------------------------


def test_create_access_key_on_a_passphrase_directory_needs_the_passphrase(init_dir: tuple[Path, Path, str]) -> None:
    data_dir, passphrase_file, account = init_dir
    ok(iam(data_dir, "create-user", "--user-name", "gina", "--passphrase-file", str(passphrase_file)))
    refused(iam(data_dir, "create-access-key", "--user-name", "gina"), "no passphrase")
    created = json.loads(
        ok(
            iam(
                data_dir,
                "create-access-key",
                "--user-name",
                "gina",
                "--passphrase-file",
                str(passphrase_file),
                "--json",
            )
        )
    )
    assert created["AccountId"] == account and created["UserName"] == "gina"
    env = _env(OPENKMS_UNSEAL_PASSPHRASE=PASSPHRASE)
    from_env = json.loads(ok(iam(data_dir, "create-access-key", "--user-name", "gina", "--json", env=env)))
    assert from_env["AccessKeyId"] != created["AccessKeyId"]
    keys = json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", "gina", "--json")))
    assert sorted(k["AccessKeyId"] for k in keys) == sorted([created["AccessKeyId"], from_env["AccessKeyId"]])


def test_create_access_key_with_a_wrong_passphrase_is_refused_cleanly(
    init_dir: tuple[Path, Path, str], tmp_path: Path
) -> None:
    data_dir, _, _ = init_dir
    ok(iam(data_dir, "create-user", "--user-name", "gina", env=unsealing()))
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase at all")
    wrong.chmod(0o600)
    refused(iam(data_dir, "create-access-key", "--user-name", "gina", "--passphrase-file", str(wrong)), "does not open")
    assert json.loads(ok(iam(data_dir, "list-access-keys", "--user-name", "gina", "--json"))) == []


def test_iam_on_an_uninitialised_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "empty"
    assert json.loads(ok(iam(data_dir, "list-users", "--json"))) == []
    ok(iam(data_dir, "create-account", "--account-id", "777788889999"))
    ok(iam(data_dir, "create-user", "--account-id", "777788889999", "--user-name", "hank"))
    refused(iam(data_dir, "create-access-key", "--user-name", "hank"), "not initialised")
    # No root key exists yet to ask for; the changes are recorded all the same (docs/iam.md).
    query = subprocess.run(
        [sys.executable, "-m", "openkms", "audit", "query", "--json", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert [e["eventName"] for e in json.loads(query.stdout)] == ["CreateUser", "CreateAccount"]


# ---------------------------------------------------------------------------------------------------------------
# Against a running server: changes take effect on the next request, on every worker
# ---------------------------------------------------------------------------------------------------------------


def _calls(endpoint: str, access_key_id: str, secret: str, key_id: str, n: int = 6) -> list[str]:
    """``n`` requests, each from a new client (a new connection, so both workers answer some): outcome codes."""
    outcomes = []
    for i in range(n):
        kms = kms_client(endpoint, access_key_id, secret)
        try:
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"x%d" % i)["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x%d" % i
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    return outcomes


def test_cli_changes_take_effect_on_the_running_server_at_once(server: _Server, unique: str) -> None:
    data_dir, endpoint = server.data_dir, server.endpoint
    key_id = server.client().create_key(Description="iam live")["KeyMetadata"]["KeyId"]
    user = f"live{unique}"[:64]
    ok(iam(data_dir, "create-user", "--account-id", ACCOUNT_ID, "--user-name", user))
    allow_kms(data_dir, ACCOUNT_ID, user)
    created = json.loads(
        ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json"))
    )
    creds = (created["AccessKeyId"], created["SecretAccessKey"])
    assert _calls(endpoint, *creds, key_id) == ["ok"] * 6, "a new access key must work on its first request"
    first = kms_client(endpoint, *creds).list_keys()["Keys"]
    assert key_id in [k["KeyId"] for k in first]

    ok(iam(data_dir, "update-access-key", "--access-key-id", creds[0], "--status", "Inactive"))
    assert _calls(endpoint, *creds, key_id) == ["UnrecognizedClientException"] * 6
    ok(iam(data_dir, "update-access-key", "--access-key-id", creds[0], "--status", "Active"))
    assert _calls(endpoint, *creds, key_id) == ["ok"] * 6

    ok(iam(data_dir, "delete-access-key", "--access-key-id", creds[0]))
    assert _calls(endpoint, *creds, key_id) == ["UnrecognizedClientException"] * 6

    other = json.loads(
        ok(iam(data_dir, "create-access-key", "--account-id", ACCOUNT_ID, "--user-name", user, "--json"))
    )
    other_creds = (other["AccessKeyId"], other["SecretAccessKey"])
    assert _calls(endpoint, *other_creds, key_id) == ["ok"] * 6
    ok(iam(data_dir, "delete-user", "--account-id", ACCOUNT_ID, "--user-name", user))
    assert _calls(endpoint, *other_creds, key_id) == ["UnrecognizedClientException"] * 6
    # The administrator is untouched by all this.
    assert server.client().describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id


def test_a_key_for_another_account_cannot_use_this_accounts_keys(server: _Server, unique: str) -> None:
    data_dir, endpoint = server.data_dir, server.endpoint
    key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
    account = "888899990000"
    user = f"x{unique}"[:64]
    ok(iam(data_dir, "create-account", "--account-id", account))
    ok(iam(data_dir, "create-user", "--account-id", account, "--user-name", user))
    allow_kms(data_dir, account, user)
    created = json.loads(ok(iam(data_dir, "create-access-key", "--account-id", account, "--user-name", user, "--json")))
    kms = kms_client(endpoint, created["AccessKeyId"], created["SecretAccessKey"])
    own = kms.create_key()["KeyMetadata"]
    assert own["Arn"].startswith(f"arn:aws:kms:{REGION}:{account}:key/")
    assert _calls(endpoint, created["AccessKeyId"], created["SecretAccessKey"], own["KeyId"], n=2) == ["ok"] * 2
    with pytest.raises(ClientError) as caught:
        kms.encrypt(KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{key_id}", Plaintext=b"x")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)


# ---------------------------------------------------------------------------------------------------------------
# The administrator of the dev server and of init holds AdministratorAccess
# ---------------------------------------------------------------------------------------------------------------

ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _admin_policies(data_dir: Path) -> dict[str, object]:
    args = ["--account-id", ACCOUNT_ID, "--user-name", "admin", "--json"]
    names = [p["PolicyName"] for p in json.loads(ok(iam(data_dir, "list-user-policies", *args)))]
    return {
        name: json.loads(ok(iam(data_dir, "get-user-policy", *args, "--policy-name", name)))["PolicyDocument"]
        for name in names
    }


def test_the_dev_administrator_holds_administrator_access(data_dir: Path) -> None:
    assert _admin_policies(data_dir) == {"AdministratorAccess": ADMIN_POLICY}


def test_init_gives_its_administrator_administrator_access(init_dir: tuple[Path, Path, str]) -> None:
    data_dir, _, _ = init_dir
    args = ["--user-name", "admin", "--policy-name", "AdministratorAccess", "--json"]
    shown = json.loads(ok(iam(data_dir, "get-user-policy", *args)))
    assert shown == {"UserName": "admin", "PolicyName": "AdministratorAccess", "PolicyDocument": ADMIN_POLICY}


def test_a_dev_restart_gives_the_administrator_its_policy_back(tmp_path: Path) -> None:
    """An operator may narrow or delete it; the next dev start restores it (else the dev admin could do nothing)."""
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'openkms.db'}"
    first = _Server(data_dir, url, free_port(), workers=1).start()
    try:
        assert _admin_policies(data_dir) == {"AdministratorAccess": ADMIN_POLICY}
    finally:
        first.stop()
    args = ["--account-id", ACCOUNT_ID, "--user-name", "admin"]
    ok(iam(data_dir, "delete-user-policy", *args, "--policy-name", "AdministratorAccess"))
    ok(iam(data_dir, "put-user-policy", *args, "--policy-name", "extra", "--policy-document", KMS_ALL))
    assert list(_admin_policies(data_dir)) == ["extra"]
    second = _Server(data_dir, url, free_port(), workers=1).start()
    try:
        assert _admin_policies(data_dir) == {"AdministratorAccess": ADMIN_POLICY, "extra": json.loads(KMS_ALL)}
        assert second.client().list_keys()["Keys"] == []
    finally:
        second.stop()
