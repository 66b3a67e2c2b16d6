"""``openkms iam ...``: accounts, users, groups, access keys, inline policies and user tags.

Every command works straight against the data directory or database (``--data-dir``/``--database-url``),
also while the server runs: the server reads identities, policies and tags from storage on every request,
so a change applies to the very next one. Output is a table, or JSON with ``--json``; exit codes are 0
(done), 1 (refused, with a message on stderr) and 2 (usage).

Every change (the commands in :data:`CHANGES`) is a privilege change, so it needs the root key, as
unsealing does (the key file of a dev install, else the passphrase; reads need none), and runs as an IAM
operation (operations/iam_admin.py) through the one operation runner, as the account's operator (its root, with
the operating-system user's name): validated, authorised and recorded like every call, its record written in
the change's own transaction, so both commit or neither. Reads go straight to storage. docs/iam.md says why and
what the record holds.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openkms
from openkms import identity
from openkms.audit import scope as audit_scope
from openkms.audit.hub import HubClient, local_hub
from openkms.audit.writer import Reservation
from openkms.cli.common import (
    CliError,
    add_storage_arguments,
    emit,
    only_account,
    open_migrated,
    resolve_paths,
    root_key_for_change,
)
from openkms.crypto.rand import random_bytes
from openkms.errors import KMSInternalException
from openkms.operations import iam_admin
from openkms.seal.keyring import Keyring
from openkms.server.operation_runner import Caller, OperationRunner
from openkms.settings import Settings
from openkms.storage.audit import AuditRecord
from openkms.storage.ports import Storage
from openkms.wiring import build_services

FILE_PREFIX = "file://"
USER_AGENT = f"openkms-cli/{openkms.__version__}"
_SHORTHAND_TAG = re.compile(r"Key=(?P<key>.*?)(?:,Value=(?P<value>.*))?|Value=(?P<value2>.*?),Key=(?P<key2>.*)", re.S)
_EXAMPLE_POLICY = '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}\''


# The commands that change something, and the eventName (IAM's operation) each is recorded as.
CHANGES: dict[str, str] = {
    "create-account": "CreateAccount",
    "create-user": "CreateUser",
    "delete-user": "DeleteUser",
    "create-access-key": "CreateAccessKey",
    "update-access-key": "UpdateAccessKey",
    "delete-access-key": "DeleteAccessKey",
    "put-user-policy": "PutUserPolicy",
    "delete-user-policy": "DeleteUserPolicy",
    "create-group": "CreateGroup",
    "delete-group": "DeleteGroup",
    "add-user-to-group": "AddUserToGroup",
    "remove-user-from-group": "RemoveUserFromGroup",
    "put-group-policy": "PutGroupPolicy",
    "delete-group-policy": "DeleteGroupPolicy",
    "tag-user": "TagUser",
    "untag-user": "UntagUser",
}


@dataclass(frozen=True, slots=True)
class Operator:
    """Who ran the command, as the operating system tells it: recorded as the account root's ``userName`` and
    the call's ``sourceIPAddress`` (the host's name). They say where to look; the root key said who may."""

    user: str
    host: str

    @classmethod
    def current(cls) -> Operator:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
            user = "unknown"
        return cls(user or "unknown", socket.gethostname() or "localhost")


class _Watched:
    """The audit writer, noting whether a record could not be written (the change's own, in its transaction,
    then the record of that failure): the command then says so rather than "internal error"."""

    def __init__(self, writer: HubClient) -> None:
        self._writer = writer
        self.lost = False

    def reserve(self) -> Reservation:
        return Reservation(self)

    def expect(self) -> None:
        self._writer.expect()

    def forget(self) -> None:
        self._writer.forget()

    async def submit(self, record: AuditRecord) -> bool:
        written = await self._writer.submit(record)
        self.lost = self.lost or not written
        return written

    def close(self) -> None:
        self._writer.close()


@dataclass(frozen=True, slots=True)
class _Context:
    args: argparse.Namespace
    storage: Storage
    data_dir: Path
    url: str
    operator: Operator = field(default_factory=Operator.current)

    def account(self) -> str:
        """``--account-id``, or the only account there is."""
        return only_account(self.storage, self.args.account_id)

    def change(self, account_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run the command's IAM operation through the operation runner, as ``account_id``'s operator; its result.

        The root key is asked for first: without it nothing runs. The operation validates, authorises and
        records itself as every call does; its record joins its write transaction (audit/scope.py), so a
        record that cannot be written fails the change.
        """
        operation = CHANGES[self.args.iam_command]
        root_key = root_key_for_change(self.storage, self.data_dir, self.args.passphrase_file)
        if root_key is None and operation == "CreateAccessKey":
            raise CliError("this database is not initialised: run `openkms init` or `openkms serve --dev`")
        keyring = Keyring()
        # No init or serve has made a root key yet: there is none to show (docs/iam.md), and nothing is wrapped
        # under this one (CreateAccessKey, the one change that wraps, refuses such a database).
        keyring.unseal(root_key if root_key is not None else random_bytes(32))
        services = build_services(Settings(self.data_dir, self.url), self.storage, keyring)
        writer = _Watched(local_hub(self.storage))
        quiet = logging.NullHandler()  # the runner's and the hub's logs: this command says it in one line
        logging.getLogger("openkms").addHandler(quiet)
        try:
            with self.storage.committing_with(audit_scope.before_commit):  # the change and its record commit together
                outcome = asyncio.run(
                    OperationRunner(services, writer).run_as(
                        iam_admin.operator(account_id, self.operator.user),
                        operation,
                        params,
                        Caller(self.operator.host, USER_AGENT, False),
                        iam_admin.REGION,
                    )
                )
        finally:
            writer.close()
            logging.getLogger("openkms").removeHandler(quiet)
        if outcome.error is None:
            return outcome.result or {}
        if writer.lost:
            raise CliError("nothing was changed: the audit record could not be written")
        if isinstance(outcome.error, KMSInternalException):
            raise CliError(f"nothing was changed: {outcome.error.message}")
        raise CliError(outcome.error.message or outcome.error.code)


# ---- argument types ------------------------------------------------------------------------------------------


def _text_or_file(value: str) -> str:
    """The value itself, or the contents of ``file://path`` (as the AWS CLI reads parameters)."""
    if not value.startswith(FILE_PREFIX):
        return value
    path = Path(value[len(FILE_PREFIX) :]).expanduser()
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None


def _json_tags(text: str) -> list[tuple[str, str]]:
    try:
        items = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError('--tags JSON must be a list like [{"Key": "env", "Value": "prod"}]') from None
    if not isinstance(items, list) or not all(
        isinstance(item, dict)
        and set(item) <= {"Key", "Value"}
        and isinstance(item.get("Key"), str)
        and isinstance(item.get("Value", ""), str)
        for item in items
    ):
        raise argparse.ArgumentTypeError('--tags JSON must be a list of {"Key": ..., "Value": ...} objects')
    return [(item["Key"], item.get("Value", "")) for item in items]


def tag_argument(text: str) -> list[tuple[str, str]]:
    """One ``--tags`` item: ``Key=k,Value=v`` (AWS CLI shorthand), a JSON list of ``{"Key", "Value"}``, or
    ``file://`` holding that JSON."""
    if text.startswith(FILE_PREFIX):
        try:
            return _json_tags(_text_or_file(text))
        except CliError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if text.lstrip().startswith("["):
        return _json_tags(text)
    match = _SHORTHAND_TAG.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected Key=KEY,Value=VALUE, got {text!r}")
    key = match["key"] if match["key"] is not None else match["key2"]
    value = match["value"] if match["key"] is not None else match["value2"]
    return [(key, value or "")]


def tag_keys_argument(text: str) -> list[str]:
    """One ``--tag-keys`` item: a key, or a JSON list of keys."""
    if not text.lstrip().startswith("["):
        return [text]
    try:
        keys = json.loads(text)
    except ValueError:
        keys = None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise argparse.ArgumentTypeError("--tag-keys JSON must be a list of strings")
    return keys


# ---- parser --------------------------------------------------------------------------------------------------


# Arguments several commands share, by the name commands list them under.
_COMMON_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "user": ("--user-name", {"required": True}),
    "user?": ("--user-name", {"default": None, "help": "only this user's"}),
    "group": ("--group-name", {"required": True}),
    "policy": ("--policy-name", {"required": True}),
    "document": (
        "--policy-document",
        {"required": True, "help": "the policy as JSON text, or file://path to a file holding it"},
    ),
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    iam = subparsers.add_parser(
        "iam",
        help="manage accounts, users, groups, access keys, inline policies and user tags",
        description=(
            "Manage identities and their identity policies, straight against the data directory or database "
            "(also while the server runs). Example: openkms iam create-access-key --user-name alice --json"
        ),
    )
    commands = iam.add_subparsers(dest="iam_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *examples: str, options: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        parser = commands.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog="example:\n" + "\n".join(f"  openkms iam {name} {example}" for example in examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_storage_arguments(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--account-id", default=None, help="12-digit account (default: the only account)")
        if name in CHANGES:  # a change: needs the root key (docs/iam.md, "Who may change identities")
            parser.add_argument(
                "--passphrase-file",
                type=Path,
                default=None,
                help="unseal passphrase of a passphrase-sealed install (or env OPENKMS_UNSEAL_PASSPHRASE)",
            )
        for option in options:
            flag, settings = _COMMON_OPTIONS[option]
            parser.add_argument(flag, **settings)
        return parser

    user_limit = identity.USER_INLINE_POLICIES_MAX_CHARS
    group_limit = identity.GROUP_INLINE_POLICIES_MAX_CHARS

    # accounts and users
    command("create-account", "create an account (12 digits; random if --account-id is omitted)", "--json")
    command("list-users", "list users (of every account unless --account-id is given)", "--account-id 111122223333")
    command("create-user", "create a user", "--user-name alice", options=("user",))
    command(
        "delete-user",
        "delete a user with its access keys, inline policies, tags and group memberships",
        "--user-name alice",
        options=("user",),
    )

    # access keys
    command(
        "create-access-key",
        "issue an access key; the secret is shown only now",
        "--user-name alice --json",
        options=("user",),
    )
    command("list-access-keys", "list access keys (never their secrets)", "--user-name alice", options=("user?",))
    update = command(
        "update-access-key", "activate or deactivate an access key", "--access-key-id AKIAEXAMPLE --status Inactive"
    )
    update.add_argument("--access-key-id", required=True)
    update.add_argument("--status", required=True, choices=[identity.ACTIVE, identity.INACTIVE])
    delete_key = command("delete-access-key", "delete an access key", "--access-key-id AKIAEXAMPLE")
    delete_key.add_argument("--access-key-id", required=True)

    # inline policies of users
    command(
        "put-user-policy",
        f"create or replace an inline policy of a user (a user's together: at most {user_limit} non-whitespace "
        "characters)",
        f"--user-name alice --policy-name decrypt-only --policy-document {_EXAMPLE_POLICY}",
        "--user-name alice --policy-name ops --policy-document file://ops.json",
        options=("user", "policy", "document"),
    )
    user_policy = "--user-name alice --policy-name decrypt-only"
    command("get-user-policy", "show an inline policy of a user", user_policy, options=("user", "policy"))
    command("delete-user-policy", "delete an inline policy of a user", user_policy, options=("user", "policy"))
    command(
        "list-user-policies",
        "list the inline policies of a user, with their sizes",
        "--user-name alice",
        options=("user",),
    )

    # groups
    command("create-group", "create a group", "--group-name operators", options=("group",))
    command("get-group", "show a group and its members", "--group-name operators", options=("group",))
    command(
        "delete-group",
        "delete a group with its inline policies (its members stay)",
        "--group-name operators",
        options=("group",),
    )
    command("list-groups", "list groups (of every account unless --account-id is given)", "--json")
    command("list-groups-for-user", "list the groups of a user", "--user-name alice", options=("user",))
    membership = "--user-name alice --group-name operators"
    command(
        "add-user-to-group",
        "add a user to a group (adding it again changes nothing)",
        membership,
        options=("user", "group"),
    )
    command("remove-user-from-group", "remove a user from a group", membership, options=("user", "group"))

    # inline policies of groups
    command(
        "put-group-policy",
        f"create or replace an inline policy of a group (a group's together: at most {group_limit} non-whitespace "
        "characters)",
        "--group-name operators --policy-name ops --policy-document file://ops.json",
        options=("group", "policy", "document"),
    )
    group_policy = "--group-name operators --policy-name ops"
    command("get-group-policy", "show an inline policy of a group", group_policy, options=("group", "policy"))
    command("delete-group-policy", "delete an inline policy of a group", group_policy, options=("group", "policy"))
    command(
        "list-group-policies",
        "list the inline policies of a group, with their sizes",
        "--group-name operators",
        options=("group",),
    )

    # tags of users (aws:PrincipalTag/...)
    tag = command(
        "tag-user",
        f"add or overwrite tags of a user (at most {identity.MAX_USER_TAGS}; keys are case-insensitive)",
        "--user-name alice --tags Key=env,Value=prod Key=team,Value=payments",
        '--user-name alice --tags \'[{"Key": "env", "Value": "prod"}]\'',
        options=("user",),
    )
    tag.add_argument(
        "--tags",
        required=True,
        nargs="+",
        type=tag_argument,
        metavar="TAG",
        help='Key=KEY,Value=VALUE items, or a JSON list of {"Key": ..., "Value": ...} (or file://path to one)',
    )
    untag = command(
        "untag-user",
        "remove tags of a user (keys are case-insensitive)",
        "--user-name alice --tag-keys env team",
        options=("user",),
    )
    untag.add_argument("--tag-keys", required=True, nargs="+", type=tag_keys_argument, metavar="KEY")
    command("list-user-tags", "list the tags of a user", "--user-name alice", options=("user",))


# ---- commands ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    storage = open_migrated(url, data_dir)
    try:
        COMMANDS[args.iam_command](_Context(args, storage, data_dir, url))
    except identity.IdentityError as exc:
        raise CliError(str(exc)) from None
    finally:
        storage.close()
    return 0


def _create_account(c: _Context) -> None:
    account_id = c.args.account_id or identity.new_account_id()
    c.change(account_id, {"accountId": c.args.account_id} if c.args.account_id else {})
    emit([{"AccountId": account_id}], ["AccountId"], c.args.json, single=True)


def _list_users(c: _Context) -> None:
    with c.storage.read() as tx:
        users = tx.list_users(c.args.account_id)
    rows = [{"AccountId": u.account_id, "UserName": u.user_name, "UserId": u.user_id, "Arn": u.arn} for u in users]
    emit(rows, ["AccountId", "UserName", "UserId", "Arn"], c.args.json)


def _create_user(c: _Context) -> None:
    user = c.change(c.account(), {"userName": c.args.user_name})["User"]
    row = {"UserName": user["UserName"], "UserId": user["UserId"], "Arn": user["Arn"]}
    emit([row], list(row), c.args.json, single=True)


def _delete_user(c: _Context) -> None:
    c.change(c.account(), {"userName": c.args.user_name})


def _create_access_key(c: _Context) -> None:
    account_id = c.account()
    new = c.change(account_id, {"userName": c.args.user_name})["AccessKey"]
    row = {
        "UserName": new["UserName"],
        "AccessKeyId": new["AccessKeyId"],
        "SecretAccessKey": new["SecretAccessKey"],
        "Status": new["Status"],
        "AccountId": account_id,
    }
    emit([row], list(row), c.args.json, single=True)


def _list_access_keys(c: _Context) -> None:
    with c.storage.read() as tx:
        keys = tx.list_access_keys(c.args.account_id, c.args.user_name)
    rows = [
        {"AccountId": k.account_id, "UserName": k.user_name, "AccessKeyId": k.access_key_id, "Status": k.status}
        for k in keys
    ]
    emit(rows, ["AccountId", "UserName", "AccessKeyId", "Status"], c.args.json)


def _account_of_access_key(c: _Context) -> str:
    """The account the access key belongs to (the record's), read before the change."""
    with c.storage.read() as tx:
        key = tx.get_access_key(c.args.access_key_id)
    if key is None:
        raise identity.IdentityError(f"no access key {c.args.access_key_id}")
    return key.account_id


def _update_access_key(c: _Context) -> None:
    c.change(_account_of_access_key(c), {"accessKeyId": c.args.access_key_id, "status": c.args.status})


def _delete_access_key(c: _Context) -> None:
    c.change(_account_of_access_key(c), {"accessKeyId": c.args.access_key_id})


def _emit_policy(c: _Context, owner_field: str, owner: str, document: str) -> None:
    """``--json``: the AWS CLI's shape (the document as a JSON object); else the document, indented."""
    parsed = json.loads(document)
    if c.args.json:
        row = {owner_field: owner, "PolicyName": c.args.policy_name, "PolicyDocument": parsed}
        print(json.dumps(row, indent=2, ensure_ascii=False))
    else:
        print(json.dumps(parsed, indent=2, ensure_ascii=False))


def _emit_policy_list(c: _Context, owner_field: str, owner: str, policies: dict[str, str]) -> None:
    rows = [
        {owner_field: owner, "PolicyName": name, "Size": identity.policy_size(text)} for name, text in policies.items()
    ]
    emit(rows, [owner_field, "PolicyName", "Size"], c.args.json)


def _put_user_policy(c: _Context) -> None:
    document = _text_or_file(c.args.policy_document)
    c.change(c.account(), {"userName": c.args.user_name, "policyName": c.args.policy_name, "policyDocument": document})


def _get_user_policy(c: _Context) -> None:
    document = identity.get_user_policy(c.storage, c.account(), c.args.user_name, c.args.policy_name)
    _emit_policy(c, "UserName", c.args.user_name, document)


def _delete_user_policy(c: _Context) -> None:
    c.change(c.account(), {"userName": c.args.user_name, "policyName": c.args.policy_name})


def _list_user_policies(c: _Context) -> None:
    policies = identity.list_user_policies(c.storage, c.account(), c.args.user_name)
    _emit_policy_list(c, "UserName", c.args.user_name, policies)


def _create_group(c: _Context) -> None:
    group = c.change(c.account(), {"groupName": c.args.group_name})["Group"]
    row = {"GroupName": group["GroupName"], "GroupId": group["GroupId"], "Arn": group["Arn"]}
    emit([row], list(row), c.args.json, single=True)


def _get_group(c: _Context) -> None:
    group, members = identity.get_group(c.storage, c.account(), c.args.group_name)
    row: dict[str, Any] = {"GroupName": group.group_name, "GroupId": group.group_id, "Arn": group.arn}
    if c.args.json:
        print(json.dumps({**row, "Users": members}, indent=2))
    else:
        emit([{**row, "Members": ",".join(members) or "-"}], [*row, "Members"], False)


def _delete_group(c: _Context) -> None:
    c.change(c.account(), {"groupName": c.args.group_name})


def _list_groups(c: _Context) -> None:
    with c.storage.read() as tx:
        groups = tx.list_groups(c.args.account_id)
    rows = [{"AccountId": g.account_id, "GroupName": g.group_name, "GroupId": g.group_id, "Arn": g.arn} for g in groups]
    emit(rows, ["AccountId", "GroupName", "GroupId", "Arn"], c.args.json)


def _list_groups_for_user(c: _Context) -> None:
    names = identity.list_groups_for_user(c.storage, c.account(), c.args.user_name)
    emit([{"UserName": c.args.user_name, "GroupName": n} for n in names], ["UserName", "GroupName"], c.args.json)


def _add_user_to_group(c: _Context) -> None:
    c.change(c.account(), {"userName": c.args.user_name, "groupName": c.args.group_name})


def _remove_user_from_group(c: _Context) -> None:
    c.change(c.account(), {"userName": c.args.user_name, "groupName": c.args.group_name})


def _put_group_policy(c: _Context) -> None:
    document = _text_or_file(c.args.policy_document)
    c.change(
        c.account(), {"groupName": c.args.group_name, "policyName": c.args.policy_name, "policyDocument": document}
    )


def _get_group_policy(c: _Context) -> None:
    document = identity.get_group_policy(c.storage, c.account(), c.args.group_name, c.args.policy_name)
    _emit_policy(c, "GroupName", c.args.group_name, document)


def _delete_group_policy(c: _Context) -> None:
    c.change(c.account(), {"groupName": c.args.group_name, "policyName": c.args.policy_name})


def _list_group_policies(c: _Context) -> None:
    policies = identity.list_group_policies(c.storage, c.account(), c.args.group_name)
    _emit_policy_list(c, "GroupName", c.args.group_name, policies)


def _tag_user(c: _Context) -> None:
    pairs = [pair for item in c.args.tags for pair in item]
    if len(dict(pairs)) != len(pairs):
        raise CliError("a tag key is given more than once")
    c.change(c.account(), {"userName": c.args.user_name, "tags": [{"key": k, "value": v} for k, v in pairs]})


def _untag_user(c: _Context) -> None:
    keys = [key for item in c.args.tag_keys for key in item]
    c.change(c.account(), {"userName": c.args.user_name, "tagKeys": keys})


def _list_user_tags(c: _Context) -> None:
    tags = identity.list_user_tags(c.storage, c.account(), c.args.user_name)
    emit([{"Key": k, "Value": v} for k, v in tags.items()], ["Key", "Value"], c.args.json)


# Every subcommand and what runs it; add_parser declares the same names.
COMMANDS: dict[str, Callable[[_Context], None]] = {
    "create-account": _create_account,
    "list-users": _list_users,
    "create-user": _create_user,
    "delete-user": _delete_user,
    "create-access-key": _create_access_key,
    "list-access-keys": _list_access_keys,
    "update-access-key": _update_access_key,
    "delete-access-key": _delete_access_key,
    "put-user-policy": _put_user_policy,
    "get-user-policy": _get_user_policy,
    "delete-user-policy": _delete_user_policy,
    "list-user-policies": _list_user_policies,
    "create-group": _create_group,
    "get-group": _get_group,
    "delete-group": _delete_group,
    "list-groups": _list_groups,
    "list-groups-for-user": _list_groups_for_user,
    "add-user-to-group": _add_user_to_group,
    "remove-user-from-group": _remove_user_from_group,
    "put-group-policy": _put_group_policy,
    "get-group-policy": _get_group_policy,
    "delete-group-policy": _delete_group_policy,
    "list-group-policies": _list_group_policies,
    "tag-user": _tag_user,
    "untag-user": _untag_user,
    "list-user-tags": _list_user_tags,
}
