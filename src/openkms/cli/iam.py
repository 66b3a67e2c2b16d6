"""``openkms iam ...``: accounts, users and access keys, straight against the data directory or database."""

from __future__ import annotations

import argparse
from pathlib import Path

from openkms import identity
from openkms.cli.common import CliError, add_storage_arguments, emit, open_migrated, resolve_paths, root_key_for_admin
from openkms.clock import SystemClock
from openkms.storage.ports import Storage


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    iam = subparsers.add_parser(
        "iam",
        help="manage accounts, users and access keys",
        description="Manage identities. Example: openkms iam create-access-key --user-name alice --json",
    )
    commands = iam.add_subparsers(dest="iam_command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        add_storage_arguments(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--account-id", default=None, help="12-digit account (default: the only account)")
        return parser

    command("create-account", "create an account (12 digits; random if --account-id is omitted)")
    command("list-users", "list users")
    command("create-user", "create a user").add_argument("--user-name", required=True)
    command("delete-user", "delete a user and its access keys").add_argument("--user-name", required=True)
    create_key = command("create-access-key", "issue an access key; the secret is shown only now")
    create_key.add_argument("--user-name", required=True)
    create_key.add_argument("--passphrase-file", type=Path, default=None, help="unseal passphrase (or env)")
    command("list-access-keys", "list access keys (never their secrets)").add_argument("--user-name", default=None)
    update = command("update-access-key", "activate or deactivate an access key")
    update.add_argument("--access-key-id", required=True)
    update.add_argument("--status", required=True, choices=[identity.ACTIVE, identity.INACTIVE])
    command("delete-access-key", "delete an access key").add_argument("--access-key-id", required=True)


def _account(storage: Storage, args: argparse.Namespace) -> str:
    if args.account_id:
        return str(args.account_id)
    with storage.read() as tx:
        accounts = tx.list_accounts()
    if len(accounts) != 1:
        raise CliError("several accounts exist: give --account-id" if accounts else "no account exists yet")
    return accounts[0]


def run(args: argparse.Namespace) -> int:
    data_dir, url = resolve_paths(args)
    storage = open_migrated(url, data_dir)
    clock = SystemClock()
    try:
        return _dispatch(args, storage, data_dir, clock)
    except identity.IdentityError as exc:
        raise CliError(str(exc)) from None
    finally:
        storage.close()


def _dispatch(args: argparse.Namespace, storage: Storage, data_dir: Path, clock: SystemClock) -> int:
    name = args.iam_command
    if name == "create-account":
        account_id = args.account_id or identity.new_account_id()
        identity.ensure_account(storage, account_id, clock)
        emit([{"AccountId": account_id}], ["AccountId"], args.json, single=True)
    elif name == "list-users":
        with storage.read() as tx:
            users = tx.list_users(args.account_id)
        rows = [{"AccountId": u.account_id, "UserName": u.user_name, "UserId": u.user_id, "Arn": u.arn} for u in users]
        emit(rows, ["AccountId", "UserName", "UserId", "Arn"], args.json)
    elif name == "create-user":
        account_id = _account(storage, args)
        user = identity.create_user(storage, account_id, args.user_name, clock)
        emit(
            [{"UserName": user.user_name, "UserId": user.user_id, "Arn": user.arn}],
            ["UserName", "UserId", "Arn"],
            args.json,
            single=True,
        )
    elif name == "delete-user":
        identity.delete_user(storage, _account(storage, args), args.user_name)
    elif name == "create-access-key":
        account_id = _account(storage, args)
        root_key = root_key_for_admin(storage, data_dir, args.passphrase_file)
        new = identity.create_access_key(storage, root_key, account_id, args.user_name, clock)
        row = {
            "UserName": new.user_name,
            "AccessKeyId": new.access_key_id,
            "SecretAccessKey": new.secret_access_key,
            "Status": identity.ACTIVE,
            "AccountId": new.account_id,
        }
        emit([row], list(row), args.json, single=True)
    elif name == "list-access-keys":
        with storage.read() as tx:
            keys = tx.list_access_keys(args.account_id, args.user_name)
        rows = [
            {"AccountId": k.account_id, "UserName": k.user_name, "AccessKeyId": k.access_key_id, "Status": k.status}
            for k in keys
        ]
        emit(rows, ["AccountId", "UserName", "AccessKeyId", "Status"], args.json)
    elif name == "update-access-key":
        identity.set_access_key_status(storage, args.access_key_id, args.status)
    elif name == "delete-access-key":
        identity.delete_access_key(storage, args.access_key_id)
    return 0
