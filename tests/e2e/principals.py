"""Users for end-to-end tests, made as an operator makes them: with the ``openkms iam`` CLI against the running
server's data, then used through boto3 with their own access keys."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from tests.e2e.server import ACCOUNT_ID, ServerProcess


@dataclass(frozen=True)
class User:
    name: str
    account_id: str
    arn: str
    kms: Any
    credentials: tuple[str, str]  # access key id and secret, for more clients (more connections)


def iam(server: ServerProcess, *args: str) -> str:
    result = server.openkms("iam", *args)
    assert result.returncode == 0, f"openkms iam {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def ensure_account(server: ServerProcess, account_id: str) -> None:
    created = server.openkms("iam", "create-account", "--account-id", account_id)
    assert created.returncode == 0 or "exist" in created.stderr.lower(), created.stderr


def make_user(
    server: ServerProcess,
    label: str,
    *,
    account_id: str = ACCOUNT_ID,
    policy: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> User:
    """A fresh user (unique name), optionally with one inline identity policy and principal tags."""
    if account_id != ACCOUNT_ID:
        ensure_account(server, account_id)
    name = f"{label}-{secrets.token_hex(4)}"
    account = ("--account-id", account_id)
    made = json.loads(iam(server, "create-user", *account, "--user-name", name, "--json"))
    if policy is not None:
        put_policy(server, name, policy, account_id=account_id)
    if tags:
        pairs = [f"Key={k},Value={v}" for k, v in tags.items()]
        iam(server, "tag-user", *account, "--user-name", name, "--tags", *pairs)
    key = json.loads(iam(server, "create-access-key", *account, "--user-name", name, "--json"))
    credentials = (key["AccessKeyId"], key["SecretAccessKey"])
    return User(name, account_id, made["Arn"], server.client(*credentials), credentials)


def put_policy(
    server: ServerProcess, user_name: str, policy: dict[str, Any], *, account_id: str = ACCOUNT_ID, name: str = "p"
) -> None:
    iam(
        server, "put-user-policy", "--account-id", account_id, "--user-name", user_name,
        "--policy-name", name, "--policy-document", json.dumps(policy),
    )  # fmt: skip


def allow(actions: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    """A one-statement Allow policy (identity policies have no Principal)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource, **extra}],
    }


ADMINISTRATOR = allow("*")
