"""``openkms iam ...``: accounts, users, groups, access keys, inline policies and user tags.

Every command works straight against the data directory or database (``--data-dir``/``--database-url``),
also while the server runs: the server reads identities, policies and tags from storage on every request,
so a change applies to the very next one. Output is a table, or JSON with ``--json``; exit codes are 0
(done), 1 (refused, with a message on stderr) and 2 (usage).

Every change (the commands in :data:`CHANGES`) is a privilege change, so it needs the root key, as
unsealing does (the key file of a dev install, else the passphrase; reads need none), and leaves one record
in the audit trail, written in the change's own transaction (audit/iam_events.py): both commit or neither.
docs/iam.md says why and what the record holds.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openkms import identity
from openkms.audit import iam_events
from openkms.cli.common import (
    CliError,
    add_storage_arguments,
    emit,
    iso,
    only_account,
    open_migrated,
    resolve_paths,
    root_key_for_change,
)
from openkms.clock import SystemClock
from openkms.storage.ports import Storage, StorageError, Transaction

FILE_PREFIX = "file://"
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
class _Context:
    args: argparse.Namespace
    storage: Storage
    data_dir: Path
    clock: SystemClock
    operator: iam_events.Operator = field(default_factory=iam_events.Operator.current)

    def account(self) -> str:
        """``--account-id``, or the only account there is."""
        return only_account(self.storage, self.args.account_id)

    @contextmanager
    def change(
        self,
        account_id: str,
        request: Mapping[str, Any],
        response: iam_events.Response | None = None,
    ) -> Iterator[bytes | None]:
        """Run the command's change under its audit record; yields the root key (None on a database not
        initialised yet).

        The root key is asked for first: without it nothing is written. The record joins the change's write
        transaction as the storage's commit hook, so a record that cannot be written fails the change.
        """
        root_key = root_key_for_change(self.storage, self.data_dir, self.args.passphrase_file)
        event_name = CHANGES[self.args.iam_command]
        change = iam_events.OperatorChange(self.operator, event_name, account_id, request, self.clock, response)
        try:
            with self.storage.committing_with(change):
                yield root_key
        except StorageError as exc:
            if change.attempted and not change.written:
                reason = " ".join(str(exc).split())  # one line: PostgreSQL's messages carry a CONTEXT line
                raise CliError(f"nothing was changed: the audit record could not be written ({reason})") from None
            raise
        if not change.written:  # every change takes one write transaction; this one took none
            raise RuntimeError(f"{event_name} wrote nothing, so nothing recorded it")


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
        COMMANDS[args.iam_command](_Context(args, storage, data_dir, SystemClock()))
    except identity.IdentityError as exc:
        raise CliError(str(exc)) from None
    finally:
        storage.close()
    return 0


def _create_account(c: _Context) -> None:
    account_id = c.args.account_id or identity.new_account_id()
    request = {"accountId": c.args.account_id} if c.args.account_id else {}
    with c.change(account_id, request, lambda tx: {"accountId": account_id}):
        identity.ensure_account(c.storage, account_id, c.clock)
    emit([{"AccountId": account_id}], ["AccountId"], c.args.json, single=True)


def _list_users(c: _Context) -> None:
    with c.storage.read() as tx:
        users = tx.list_users(c.args.account_id)
    rows = [{"AccountId": u.account_id, "UserName": u.user_name, "UserId": u.user_id, "Arn": u.arn} for u in users]
    emit(rows, ["AccountId", "UserName", "UserId", "Arn"], c.args.json)


def _created_user(account_id: str, user_name: str) -> iam_events.Response:
    """CreateUser's responseElements, as IAM's record: the user as stored (its unique id is made inside)."""

    def response(tx: Transaction) -> dict[str, Any] | None:
        user = tx.get_user(account_id, user_name)
        if user is None:
            return None
        return {
            "user": {
                "path": "/",
                "userName": user.user_name,
                "userId": user.user_id,
                "arn": user.arn,
                "createDate": iso(user.created_at),
            }
        }

    return response


def _create_user(c: _Context) -> None:
    account_id, name = c.account(), c.args.user_name
    with c.change(account_id, {"userName": name}, _created_user(account_id, name)):
        user = identity.create_user(c.storage, account_id, name, c.clock)
    row = {"UserName": user.user_name, "UserId": user.user_id, "Arn": user.arn}
    emit([row], list(row), c.args.json, single=True)


def _delete_user(c: _Context) -> None:
    account_id = c.account()
    with c.change(account_id, {"userName": c.args.user_name}):
        identity.delete_user(c.storage, account_id, c.args.user_name)


def _created_access_key(access_key_id: str) -> iam_events.Response:
    """CreateAccessKey's responseElements, as IAM's record: the key's id and status, never its secret."""

    def response(tx: Transaction) -> dict[str, Any] | None:
        key = tx.get_access_key(access_key_id)
        if key is None:
            return None
        return {
            "accessKey": {
                "accessKeyId": key.access_key_id,
                "status": key.status,
                "userName": key.user_name,
                "createDate": iso(key.created_at),
            }
        }

    return response


def _create_access_key(c: _Context) -> None:
    account_id = c.account()
    key_id = identity._new_access_key_id()  # chosen here so that the record can name it
    with c.change(account_id, {"userName": c.args.user_name}, _created_access_key(key_id)) as root_key:
        if root_key is None:
            raise CliError("this database is not initialised: run `openkms init` or `openkms serve --dev`")
        new = identity.create_access_key(
            c.storage, root_key, account_id, c.args.user_name, c.clock, access_key_id=key_id
        )
    row = {
        "UserName": new.user_name,
        "AccessKeyId": new.access_key_id,
        "SecretAccessKey": new.secret_access_key,
        "Status": identity.ACTIVE,
        "AccountId": new.account_id,
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
    request = {"accessKeyId": c.args.access_key_id, "status": c.args.status}
    with c.change(_account_of_access_key(c), request):
        identity.set_access_key_status(c.storage, c.args.access_key_id, c.args.status)


def _delete_access_key(c: _Context) -> None:
    with c.change(_account_of_access_key(c), {"accessKeyId": c.args.access_key_id}):
        identity.delete_access_key(c.storage, c.args.access_key_id)


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
    account_id, user, policy = c.account(), c.args.user_name, c.args.policy_name
    with c.change(account_id, {"userName": user, "policyName": policy, "policyDocument": document}):
        identity.put_user_policy(c.storage, account_id, user, policy, document)


def _get_user_policy(c: _Context) -> None:
    document = identity.get_user_policy(c.storage, c.account(), c.args.user_name, c.args.policy_name)
    _emit_policy(c, "UserName", c.args.user_name, document)


def _delete_user_policy(c: _Context) -> None:
    account_id, user, policy = c.account(), c.args.user_name, c.args.policy_name
    with c.change(account_id, {"userName": user, "policyName": policy}):
        identity.delete_user_policy(c.storage, account_id, user, policy)


def _list_user_policies(c: _Context) -> None:
    policies = identity.list_user_policies(c.storage, c.account(), c.args.user_name)
    _emit_policy_list(c, "UserName", c.args.user_name, policies)


def _created_group(account_id: str, group_name: str) -> iam_events.Response:
    """CreateGroup's responseElements, as IAM's record: the group as stored."""

    def response(tx: Transaction) -> dict[str, Any] | None:
        group = tx.get_group(account_id, group_name)
        if group is None:
            return None
        return {
            "group": {
                "path": "/",
                "groupName": group.group_name,
                "groupId": group.group_id,
                "arn": group.arn,
                "createDate": iso(group.created_at),
            }
        }

    return response


def _create_group(c: _Context) -> None:
    account_id, name = c.account(), c.args.group_name
    with c.change(account_id, {"groupName": name}, _created_group(account_id, name)):
        group = identity.create_group(c.storage, account_id, name, c.clock)
    row = {"GroupName": group.group_name, "GroupId": group.group_id, "Arn": group.arn}
    emit([row], list(row), c.args.json, single=True)


def _get_group(c: _Context) -> None:
    group, members = identity.get_group(c.storage, c.account(), c.args.group_name)
    row: dict[str, Any] = {"GroupName": group.group_name, "GroupId": group.group_id, "Arn": group.arn}
    if c.args.json:
        print(json.dumps({**row, "Users": members}, indent=2))
    else:
        emit([{**row, "Members": ",".join(members) or "-"}], [*row, "Members"], False)


def _delete_group(c: _Context) -> None:
    account_id = c.account()
    with c.change(account_id, {"groupName": c.args.group_name}):
        identity.delete_group(c.storage, account_id, c.args.group_name)


def _list_groups(c: _Context) -> None:
    with c.storage.read() as tx:
        groups = tx.list_groups(c.args.account_id)
    rows = [{"AccountId": g.account_id, "GroupName": g.group_name, "GroupId": g.group_id, "Arn": g.arn} for g in groups]
    emit(rows, ["AccountId", "GroupName", "GroupId", "Arn"], c.args.json)


def _list_groups_for_user(c: _Context) -> None:
    names = identity.list_groups_for_user(c.storage, c.account(), c.args.user_name)
    emit([{"UserName": c.args.user_name, "GroupName": n} for n in names], ["UserName", "GroupName"], c.args.json)


def _add_user_to_group(c: _Context) -> None:
    account_id, user, group = c.account(), c.args.user_name, c.args.group_name
    with c.change(account_id, {"userName": user, "groupName": group}):
        identity.add_user_to_group(c.storage, account_id, user, group)


def _remove_user_from_group(c: _Context) -> None:
    account_id, user, group = c.account(), c.args.user_name, c.args.group_name
    with c.change(account_id, {"userName": user, "groupName": group}):
        identity.remove_user_from_group(c.storage, account_id, user, group)


def _put_group_policy(c: _Context) -> None:
    document = _text_or_file(c.args.policy_document)
    account_id, group, policy = c.account(), c.args.group_name, c.args.policy_name
    with c.change(account_id, {"groupName": group, "policyName": policy, "policyDocument": document}):
        identity.put_group_policy(c.storage, account_id, group, policy, document)


def _get_group_policy(c: _Context) -> None:
    document = identity.get_group_policy(c.storage, c.account(), c.args.group_name, c.args.policy_name)
    _emit_policy(c, "GroupName", c.args.group_name, document)


def _delete_group_policy(c: _Context) -> None:
    account_id, group, policy = c.account(), c.args.group_name, c.args.policy_name
    with c.change(account_id, {"groupName": group, "policyName": policy}):
        identity.delete_group_policy(c.storage, account_id, group, policy)


def _list_group_policies(c: _Context) -> None:
    policies = identity.list_group_policies(c.storage, c.account(), c.args.group_name)
    _emit_policy_list(c, "GroupName", c.args.group_name, policies)


def _tag_user(c: _Context) -> None:
    pairs = [pair for item in c.args.tags for pair in item]
    tags = dict(pairs)
    if len(tags) != len(pairs):
        raise CliError("a tag key is given more than once")
    account_id, user = c.account(), c.args.user_name
    request = {"userName": user, "tags": [{"key": key, "value": value} for key, value in pairs]}
    with c.change(account_id, request):
        identity.tag_user(c.storage, account_id, user, tags)


def _untag_user(c: _Context) -> None:
    keys = [key for item in c.args.tag_keys for key in item]
    account_id, user = c.account(), c.args.user_name
    with c.change(account_id, {"userName": user, "tagKeys": keys}):
        identity.untag_user(c.storage, account_id, user, keys)


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
