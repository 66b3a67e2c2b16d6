"""``openkms iam``: inline policies, groups and user tags; every subcommand's table and ``--json`` output and
exit codes (0 done, 1 refused with one ``openkms: ...`` line on stderr, 2 usage).

These run the CLI in this process (``openkms.cli.main.main``) on a fresh data directory each: the same parser
and code as the installed command, without a Python start per call. ``test_iam_cli.py`` covers the process
boundary and a running server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openkms import identity
from openkms.cli.iam import COMMANDS
from openkms.cli.main import main

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ENVS_TO_DROP = ("OPENKMS_UNSEAL_PASSPHRASE", "OPENKMS_INIT_PASSPHRASE", "OPENKMS_DATA_DIR", "OPENKMS_DATABASE_URL")
DECRYPT_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Decrypt", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}],
}
ENCRYPT_ONLY = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``openkms iam ARGS --data-dir <fresh dir>`` in this process."""
    for name in ENVS_TO_DROP:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = main(["iam", *args, "--data-dir", str(data_dir)])
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def account(cli: Cli) -> Iterator[Cli]:
    """The CLI on a data directory with one account and users alice and bob."""
    ok(cli("create-account", "--account-id", ACCOUNT))
    for name in ("alice", "bob"):
        ok(cli("create-user", "--user-name", name))
    yield cli


def ok(result: Result) -> str:
    assert result.returncode == 0, result
    assert result.stderr == "", result.stderr
    return result.stdout


def refused(result: Result, message: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.startswith("openkms: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


def usage_error(result: Result, message: str = "") -> None:
    assert result.returncode == 2, result
    assert "usage:" in result.stderr and message in result.stderr, result.stderr
    assert result.stdout == ""


def table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def compact(document: object) -> str:
    return json.dumps(document, separators=(",", ":"))


# ------------------------------------------------------------------------------------ user inline policies


def test_user_policy_lifecycle(account: Cli, tmp_path: Path) -> None:
    cli = account
    assert ok(cli("put-user-policy", "--user-name", "alice", "--policy-name", "decrypt",
                  "--policy-document", json.dumps(DECRYPT_ONLY, indent=4))) == ""  # fmt: skip
    policy_file = tmp_path / "encrypt.json"
    policy_file.write_text(json.dumps(ENCRYPT_ONLY))
    assert ok(cli("put-user-policy", "--user-name", "alice", "--policy-name", "Encrypt",
                  "--policy-document", f"file://{policy_file}")) == ""  # fmt: skip

    header, rows = table(ok(cli("list-user-policies", "--user-name", "alice")))
    assert header == ["UserName", "PolicyName", "Size"]
    assert rows == [
        ["alice", "Encrypt", str(len(compact(ENCRYPT_ONLY)))],  # bytewise order; size without whitespace
        ["alice", "decrypt", str(len(compact(DECRYPT_ONLY)))],
    ]
    listed = json.loads(ok(cli("list-user-policies", "--user-name", "alice", "--json")))
    assert listed == [
        {"UserName": "alice", "PolicyName": "Encrypt", "Size": len(compact(ENCRYPT_ONLY))},
        {"UserName": "alice", "PolicyName": "decrypt", "Size": len(compact(DECRYPT_ONLY))},
    ]
    assert json.loads(ok(cli("list-user-policies", "--user-name", "bob", "--json"))) == []
    assert table(ok(cli("list-user-policies", "--user-name", "bob"))) == (["UserName", "PolicyName", "Size"], [])

    shown = ok(cli("get-user-policy", "--user-name", "alice", "--policy-name", "decrypt"))
    assert json.loads(shown) == DECRYPT_ONLY and shown.startswith("{\n  ")  # the document, indented
    assert json.loads(ok(cli("get-user-policy", "--user-name", "alice", "--policy-name", "decrypt", "--json"))) == {
        "UserName": "alice",
        "PolicyName": "decrypt",
        "PolicyDocument": DECRYPT_ONLY,
    }

    ok(cli("put-user-policy", "--user-name", "alice", "--policy-name", "decrypt",
           "--policy-document", json.dumps(ENCRYPT_ONLY)))  # fmt: skip
    assert json.loads(ok(cli("get-user-policy", "--user-name", "alice", "--policy-name", "decrypt"))) == ENCRYPT_ONLY

    assert ok(cli("delete-user-policy", "--user-name", "alice", "--policy-name", "decrypt")) == ""
    refused(cli("delete-user-policy", "--user-name", "alice", "--policy-name", "decrypt"), "no policy decrypt")
    refused(cli("get-user-policy", "--user-name", "alice", "--policy-name", "decrypt"), "no policy decrypt")
    names = [p["PolicyName"] for p in json.loads(ok(cli("list-user-policies", "--user-name", "alice", "--json")))]
    assert names == ["Encrypt"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "malformed policy document: Syntax errors in policy"),
        ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}',
         "should not specify a principal"),
        ('{"Statement": [{"Effect": "Allow", "Action": "kms:*"}]}', "must contain resources"),
        ('{"Version": "2012-10-17", "Statement": []}', "malformed policy document"),
        ("", "malformed policy document"),
    ],
)  # fmt: skip
def test_put_user_policy_refuses_a_malformed_document(account: Cli, document: str, message: str) -> None:
    refused(account("put-user-policy", "--user-name", "alice", "--policy-name", "p",
                    "--policy-document", document), message)  # fmt: skip
    assert json.loads(ok(account("list-user-policies", "--user-name", "alice", "--json"))) == []


def test_put_user_policy_refusals(account: Cli, tmp_path: Path) -> None:
    cli = account
    doc = json.dumps(DECRYPT_ONLY)

    def put(user: str, name: str, document: str) -> Result:
        return cli("put-user-policy", "--user-name", user, "--policy-name", name, "--policy-document", document)

    refused(put("nobody", "p", doc), "no user nobody")
    refused(put("alice", "bad name", doc), "policy name")
    refused(put("alice", "x" * 129, doc), "policy name")
    ok(put("alice", "x" * 128, doc))
    refused(put("alice", "p", f"file://{tmp_path / 'missing.json'}"), "cannot read")
    refused(cli("put-user-policy", "--account-id", OTHER_ACCOUNT, "--user-name", "alice", "--policy-name", "p",
                "--policy-document", doc), f"no user alice in account {OTHER_ACCOUNT}")  # fmt: skip


def _policy_of_size(size: int, sid: str = "S") -> str:
    """An identity policy of exactly ``size`` non-whitespace characters (padding in a Sid)."""
    base = {"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    padding = size - len(compact(base))
    assert padding >= 0
    base["Statement"][0]["Sid"] = sid + "a" * padding  # type: ignore[index]
    text = json.dumps(base, indent=2)
    assert identity.policy_size(text) == size
    return text


def test_a_users_inline_policies_together_hold_at_most_2048_characters(account: Cli) -> None:
    cli = account

    def put(name: str, document: str) -> Result:
        return cli("put-user-policy", "--user-name", "alice", "--policy-name", name, "--policy-document", document)

    refused(put("huge", _policy_of_size(2049)), "2048")
    ok(put("first", _policy_of_size(1500)))
    refused(put("second", _policy_of_size(549, "T")), "would total 2049 non-whitespace characters; the limit is 2048")
    ok(put("second", _policy_of_size(548, "T")))
    ok(put("first", _policy_of_size(1500, "U")))  # replacing a policy counts it once, not twice
    assert [p["Size"] for p in json.loads(ok(cli("list-user-policies", "--user-name", "alice", "--json")))] == [
        1500,
        548,
    ]
    ok(cli("put-user-policy", "--user-name", "bob", "--policy-name", "big", "--policy-document",
           _policy_of_size(2048)))  # fmt: skip


# ---------------------------------------------------------------------------------------------- groups


def test_group_lifecycle_and_membership(account: Cli) -> None:
    cli = account
    header, rows = table(ok(cli("create-group", "--group-name", "operators")))
    assert header == ["GroupName", "GroupId", "Arn"]
    assert rows[0][0] == "operators" and rows[0][1].startswith("AGPA")
    assert rows[0][2] == f"arn:aws:iam::{ACCOUNT}:group/operators"
    created = json.loads(ok(cli("create-group", "--group-name", "Auditors", "--json")))
    assert set(created) == {"GroupName", "GroupId", "Arn"} and created["GroupName"] == "Auditors"
    assert len(created["GroupId"]) == 21 and created["GroupId"].startswith("AGPA")
    refused(cli("create-group", "--group-name", "operators"), "already exists")
    refused(cli("create-group", "--group-name", "no spaces"), "group name")
    refused(cli("create-group", "--group-name", "g" * 65), "group name")

    header, rows = table(ok(cli("list-groups")))
    assert header == ["AccountId", "GroupName", "GroupId", "Arn"]
    assert [r[:2] for r in rows] == [[ACCOUNT, "Auditors"], [ACCOUNT, "operators"]]
    listed = json.loads(ok(cli("list-groups", "--account-id", ACCOUNT, "--json")))
    assert listed[0] == {"AccountId": ACCOUNT, **created}

    assert table(ok(cli("get-group", "--group-name", "operators")))[1][0][3] == "-"
    for user in ("bob", "alice", "alice"):  # adding twice changes nothing
        assert ok(cli("add-user-to-group", "--user-name", user, "--group-name", "operators")) == ""
    ok(cli("add-user-to-group", "--user-name", "alice", "--group-name", "Auditors"))
    header, rows = table(ok(cli("get-group", "--group-name", "operators")))
    assert header == ["GroupName", "GroupId", "Arn", "Members"]
    assert rows[0][3] == "alice,bob"
    got = json.loads(ok(cli("get-group", "--group-name", "operators", "--json")))
    assert got["Users"] == ["alice", "bob"] and got["GroupName"] == "operators"

    assert table(ok(cli("list-groups-for-user", "--user-name", "alice"))) == (
        ["UserName", "GroupName"],
        [["alice", "Auditors"], ["alice", "operators"]],
    )
    assert json.loads(ok(cli("list-groups-for-user", "--user-name", "bob", "--json"))) == [
        {"UserName": "bob", "GroupName": "operators"}
    ]

    assert ok(cli("remove-user-from-group", "--user-name", "bob", "--group-name", "operators")) == ""
    refused(cli("remove-user-from-group", "--user-name", "bob", "--group-name", "operators"), "not in group")
    refused(cli("add-user-to-group", "--user-name", "nobody", "--group-name", "operators"), "no user nobody")
    refused(cli("add-user-to-group", "--user-name", "bob", "--group-name", "nogroup"), "no group nogroup")
    refused(cli("get-group", "--group-name", "nogroup"), "no group nogroup")
    refused(cli("list-groups-for-user", "--user-name", "nobody"), "no user nobody")

    assert ok(cli("delete-group", "--group-name", "operators")) == ""
    refused(cli("delete-group", "--group-name", "operators"), "no group operators")
    assert [g["GroupName"] for g in json.loads(ok(cli("list-groups", "--json")))] == ["Auditors"]
    assert json.loads(ok(cli("list-groups-for-user", "--user-name", "alice", "--json"))) == [
        {"UserName": "alice", "GroupName": "Auditors"}
    ]
    users = [u["UserName"] for u in json.loads(ok(cli("list-users", "--json")))]
    assert users == ["alice", "bob"]  # deleting a group deletes no user


def test_group_policies(account: Cli) -> None:
    cli = account
    ok(cli("create-group", "--group-name", "ops"))

    def put(name: str, document: str, group: str = "ops") -> Result:
        return cli("put-group-policy", "--group-name", group, "--policy-name", name, "--policy-document", document)

    assert ok(put("decrypt", json.dumps(DECRYPT_ONLY))) == ""
    ok(put("big", _policy_of_size(3000)))  # more than a user may hold: a group may hold 5120
    refused(
        put("more", _policy_of_size(5121 - 3000 - len(compact(DECRYPT_ONLY)), "T")),
        "would total 5121 non-whitespace characters; the limit is 5120",
    )
    refused(put("p", json.dumps(DECRYPT_ONLY), group="nogroup"), "no group nogroup")
    refused(put("p", '{"Statement": {"Effect": "Allow", "Action": "kms:*"}}'), "malformed policy document")

    header, rows = table(ok(cli("list-group-policies", "--group-name", "ops")))
    assert header == ["GroupName", "PolicyName", "Size"]
    assert rows == [["ops", "big", "3000"], ["ops", "decrypt", str(len(compact(DECRYPT_ONLY)))]]
    assert [p["PolicyName"] for p in json.loads(ok(cli("list-group-policies", "--group-name", "ops", "--json")))] == [
        "big",
        "decrypt",
    ]
    assert json.loads(ok(cli("get-group-policy", "--group-name", "ops", "--policy-name", "decrypt"))) == DECRYPT_ONLY
    assert json.loads(ok(cli("get-group-policy", "--group-name", "ops", "--policy-name", "decrypt", "--json"))) == {
        "GroupName": "ops",
        "PolicyName": "decrypt",
        "PolicyDocument": DECRYPT_ONLY,
    }
    assert ok(cli("delete-group-policy", "--group-name", "ops", "--policy-name", "big")) == ""
    refused(cli("delete-group-policy", "--group-name", "ops", "--policy-name", "big"), "no policy big")
    refused(cli("get-group-policy", "--group-name", "ops", "--policy-name", "big"), "no policy big")
    refused(cli("list-group-policies", "--group-name", "nogroup"), "no group nogroup")


# ----------------------------------------------------------------------------------------------- tags


def test_tag_user_in_every_notation_and_list(account: Cli, tmp_path: Path) -> None:
    cli = account
    tags_file = tmp_path / "tags.json"
    tags_file.write_text(json.dumps([{"Key": "cost-center", "Value": "42"}]))
    assert ok(cli("tag-user", "--user-name", "alice", "--tags", "Key=env,Value=prod", "Value=a b,Key=team",
                  '[{"Key": "project", "Value": "x/y:z"}, {"Key": "empty"}]', f"file://{tags_file}")) == ""  # fmt: skip
    header, rows = table(ok(cli("list-user-tags", "--user-name", "alice")))
    assert header == ["Key", "Value"]
    assert rows == [["cost-center", "42"], ["empty"], ["env", "prod"], ["project", "x/y:z"], ["team", "a", "b"]]
    assert json.loads(ok(cli("list-user-tags", "--user-name", "alice", "--json"))) == [
        {"Key": "cost-center", "Value": "42"},
        {"Key": "empty", "Value": ""},
        {"Key": "env", "Value": "prod"},
        {"Key": "project", "Value": "x/y:z"},
        {"Key": "team", "Value": "a b"},
    ]
    assert json.loads(ok(cli("list-user-tags", "--user-name", "bob", "--json"))) == []

    # Tag keys of users are case-insensitive: a new spelling replaces the old key, and keeps its own case.
    ok(cli("tag-user", "--user-name", "alice", "--tags", "Key=ENV,Value=dev", "Key=team,Value=core"))
    tags = {t["Key"]: t["Value"] for t in json.loads(ok(cli("list-user-tags", "--user-name", "alice", "--json")))}
    assert tags == {"cost-center": "42", "empty": "", "ENV": "dev", "project": "x/y:z", "team": "core"}

    assert ok(cli("untag-user", "--user-name", "alice", "--tag-keys", "env", "Project", "never-there")) == ""
    ok(cli("untag-user", "--user-name", "alice", "--tag-keys", '["EMPTY", "cost-center"]'))
    assert json.loads(ok(cli("list-user-tags", "--user-name", "alice", "--json"))) == [{"Key": "team", "Value": "core"}]


def test_tag_user_refusals(account: Cli) -> None:
    cli = account

    def tag(*items: str, user: str = "alice") -> Result:
        return cli("tag-user", "--user-name", user, "--tags", *items)

    refused(tag("Key=a,Value=b", user="nobody"), "no user nobody")
    refused(tag("Key=a,Value=1", "Key=a,Value=2"), "more than once")
    refused(tag("Key=a,Value=1", "Key=A,Value=2"), "case-insensitive")
    refused(tag("Key=aws:thing,Value=1"), "reserved")
    refused(tag("Key=,Value=1"), "tag key")
    refused(tag(f"Key={'k' * 129},Value=1"), "tag key")
    refused(tag("Key=semi;colon,Value=1"), "tag key")
    refused(tag(f"Key=k,Value={'v' * 257}"), "tag value")
    refused(tag("Key=k,Value=new\nline"), "tag value")
    ok(tag(f"Key={'k' * 128},Value={'v' * 256}", "Key=caf\u00e9 \u00fcber,Value=\u00e9t\u00e9"))
    many = [f"Key=t{i},Value={i}" for i in range(48)]
    ok(tag(*many))  # 50 in all now
    ok(tag("Key=T0,Value=replaces-t0"))  # a replacement does not count twice
    refused(tag("Key=one-more,Value=x"), "would have 51 tags; the limit is 50")
    refused(tag(*[f"Key=n{i},Value={i}" for i in range(51)], user="bob"), "at most 50 tags")
    refused(cli("untag-user", "--user-name", "nobody", "--tag-keys", "a"), "no user nobody")
    refused(cli("list-user-tags", "--user-name", "nobody"), "no user nobody")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag-user", "--user-name", "alice", "--tags", "env=prod"], "expected Key=KEY,Value=VALUE"),
        (["tag-user", "--user-name", "alice", "--tags", '[{"Key": 1}]'], "--tags JSON"),
        (["tag-user", "--user-name", "alice", "--tags", "[not json"], "--tags JSON"),
        (["tag-user", "--user-name", "alice", "--tags", '[{"Key": "a", "Colour": "b"}]'], "--tags JSON"),
        (["tag-user", "--user-name", "alice"], "--tags"),
        (["untag-user", "--user-name", "alice", "--tag-keys", "[1, 2]"], "--tag-keys JSON"),
        (["untag-user", "--user-name", "alice"], "--tag-keys"),
    ],
)
def test_malformed_tag_arguments_are_usage_errors(account: Cli, args: list[str], message: str) -> None:
    usage_error(account(*args), message)


# ----------------------------------------------------------------------------- deleting users, usage, help


def test_delete_user_takes_its_policies_tags_and_memberships(account: Cli) -> None:
    cli = account
    ok(cli("create-group", "--group-name", "ops"))
    ok(cli("add-user-to-group", "--user-name", "alice", "--group-name", "ops"))
    ok(cli("add-user-to-group", "--user-name", "bob", "--group-name", "ops"))
    ok(cli("put-user-policy", "--user-name", "alice", "--policy-name", "p", "--policy-document",
           json.dumps(DECRYPT_ONLY)))  # fmt: skip
    ok(cli("tag-user", "--user-name", "alice", "--tags", "Key=env,Value=prod"))
    ok(cli("delete-user", "--user-name", "alice"))
    refused(cli("list-user-policies", "--user-name", "alice"), "no user alice")
    ok(cli("create-user", "--user-name", "alice"))  # a new alice starts with nothing of the old one
    assert json.loads(ok(cli("list-user-policies", "--user-name", "alice", "--json"))) == []
    assert json.loads(ok(cli("list-user-tags", "--user-name", "alice", "--json"))) == []
    assert json.loads(ok(cli("list-groups-for-user", "--user-name", "alice", "--json"))) == []
    assert json.loads(ok(cli("get-group", "--group-name", "ops", "--json")))["Users"] == ["bob"]


def test_the_account_defaults_to_the_only_one_and_must_be_named_when_there_are_several(account: Cli) -> None:
    cli = account
    ok(cli("create-group", "--group-name", "ops"))
    ok(cli("create-account", "--account-id", OTHER_ACCOUNT))
    refused(cli("create-group", "--group-name", "dev"), "give --account-id")
    refused(cli("list-user-policies", "--user-name", "alice"), "give --account-id")
    created = json.loads(ok(cli("create-group", "--account-id", OTHER_ACCOUNT, "--group-name", "ops", "--json")))
    assert created["Arn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:group/ops"
    groups = json.loads(ok(cli("list-groups", "--json")))  # every account's when none is given
    assert [(g["AccountId"], g["GroupName"]) for g in groups] == [(ACCOUNT, "ops"), (OTHER_ACCOUNT, "ops")]
    refused(cli("create-group", "--account-id", "999999999999", "--group-name", "x"), "no account 999999999999")


@pytest.mark.parametrize(
    "args",
    [
        ["put-user-policy", "--user-name", "alice", "--policy-name", "p"],
        ["put-user-policy", "--user-name", "alice", "--policy-document", "{}"],
        ["put-user-policy", "--policy-name", "p", "--policy-document", "{}"],
        ["get-user-policy", "--user-name", "alice"],
        ["delete-user-policy", "--policy-name", "p"],
        ["list-user-policies"],
        ["create-group"],
        ["get-group"],
        ["delete-group"],
        ["list-groups", "--group-name", "x"],
        ["list-groups-for-user"],
        ["add-user-to-group", "--user-name", "alice"],
        ["remove-user-from-group", "--group-name", "ops"],
        ["put-group-policy", "--group-name", "ops", "--policy-name", "p"],
        ["get-group-policy", "--group-name", "ops"],
        ["delete-group-policy", "--policy-name", "p"],
        ["list-group-policies"],
        ["list-user-tags"],
        ["untag-user", "--tag-keys", "a"],
    ],
    ids=lambda args: "-".join(a.lstrip("-") for a in args[:2]),
)
def test_missing_arguments_are_usage_errors(cli: Cli, args: list[str]) -> None:
    usage_error(cli(*args))


def _iam_commands() -> list[str]:
    return sorted(COMMANDS)


def test_every_command_is_there(cli: Cli) -> None:
    listed = ok(cli("--help"))
    assert all(f"\n    {name}" in listed for name in COMMANDS), listed  # each one is a subcommand too
    assert set(COMMANDS) >= {
        "create-user", "delete-user", "list-users", "create-access-key", "list-access-keys", "update-access-key",
        "delete-access-key", "put-user-policy", "get-user-policy", "delete-user-policy", "list-user-policies",
        "create-group", "delete-group", "list-groups", "add-user-to-group", "remove-user-from-group",
        "put-group-policy", "delete-group-policy", "list-group-policies", "tag-user", "untag-user", "list-user-tags",
    }  # fmt: skip


@pytest.mark.parametrize("command", _iam_commands())
def test_every_command_has_help_with_an_example(cli: Cli, command: str) -> None:
    text = ok(cli(command, "--help"))
    assert text.startswith(f"usage: openkms iam {command} ")
    assert "\nexample:\n" in text
    example = text.split("\nexample:\n", 1)[1]
    assert example.lstrip().startswith(f"openkms iam {command} "), example
