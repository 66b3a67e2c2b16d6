"""A user deleted and created again under the same name is a new principal (issue 15, item 7).

AWS binds a key policy's or a grant's user ARN to the user's unique id (``AIDA...``) when it is stored: the
new ``dave`` gets nothing the old one was given, and GetKeyPolicy shows the old principal's unique id where
its ARN was ("If the principal is deleted ... the key policy shows the principal's unique ID"). Users are
deleted and created with the ``openkms iam`` CLI against the running server's data, as an operator does.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.kmsapi import expect_error, message
from tests.e2e.principals import iam as _iam
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

ROOT = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def iam(server: ServerProcess, command: str, *args: str) -> str:
    return _iam(server, command, "--account-id", ACCOUNT_ID, *args)


@dataclass(frozen=True)
class Incarnation:
    """One life of a user name: its unique id and a client with its own access key."""

    name: str
    arn: str
    user_id: str
    kms: Any


def create(server: ServerProcess, name: str) -> Incarnation:
    made = json.loads(iam(server, "create-user", "--user-name", name, "--json"))
    key = json.loads(iam(server, "create-access-key", "--user-name", name, "--json"))
    return Incarnation(name, made["Arn"], made["UserId"], server.client(key["AccessKeyId"], key["SecretAccessKey"]))


def recreate(server: ServerProcess, old: Incarnation) -> Incarnation:
    iam(server, "delete-user", "--user-name", old.name)
    new = create(server, old.name)
    assert new.arn == old.arn and new.user_id != old.user_id
    return new


def policy_naming(arn: str, *, sid: str = "Dave") -> str:
    dave = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": arn}, "Action": ["kms:Encrypt"], "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [ROOT, dave]})


def allow_all(server: ServerProcess, name: str) -> None:
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    iam(
        server,
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "all",
        "--policy-document",
        json.dumps(everything),
    )


def unique_name() -> str:
    return f"dave-{secrets.token_hex(4)}"


def test_a_recreated_user_is_not_named_by_the_old_key_policy(server: ServerProcess, kms: Any) -> None:
    dave = create(server, unique_name())
    written = policy_naming(dave.arn)
    key = kms.create_key(Policy=written)["KeyMetadata"]
    dave.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == written  # as written while dave exists

    new_dave = recreate(server, dave)
    exc = expect_error(new_dave.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")
    assert message(exc) == (  # the account's statement still delegates to identity policies; it has none
        f"User: {new_dave.arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} "
        "because no identity-based policy allows the kms:Encrypt action"
    )
    shown = json.loads(kms.get_key_policy(KeyId=key["KeyId"])["Policy"])
    assert shown["Statement"][0] == ROOT
    assert shown["Statement"][1]["Principal"] == {"AWS": dave.user_id}
    assert dave.arn not in json.dumps(shown)

    # Writing the ARN again binds it to the user that exists now.
    kms.put_key_policy(KeyId=key["KeyId"], Policy=written)
    new_dave.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == written


def test_put_key_policy_binds_too_and_an_orphaned_unique_id_is_refused(server: ServerProcess, kms: Any) -> None:
    dave = create(server, unique_name())
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key_id, Policy=policy_naming(dave.arn))
    dave.kms.encrypt(KeyId=key_id, Plaintext=b"p")
    new_dave = recreate(server, dave)
    expect_error(new_dave.kms.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"p")

    # Putting back what GetKeyPolicy shows (the old unique id) is refused, as AWS refuses it.
    shown = kms.get_key_policy(KeyId=key_id)["Policy"]
    assert dave.user_id in shown
    exc = expect_error(kms.put_key_policy, "MalformedPolicyDocumentException", KeyId=key_id, Policy=shown)
    assert message(exc) == "Policy contains a statement with one or more invalid principals."


def test_a_deny_naming_a_deleted_user_no_longer_exempts_its_namesake(server: ServerProcess, kms: Any) -> None:
    dave = create(server, unique_name())
    allow_all(server, dave.name)
    admin = f"arn:aws:iam::{ACCOUNT_ID}:user/admin"
    deny_others = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": [f"arn:aws:iam::{ACCOUNT_ID}:root", admin, dave.arn]},
        "Action": "kms:Encrypt",
        "Resource": "*",
    }
    key_id = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [ROOT, deny_others]}))[
        "KeyMetadata"
    ]["KeyId"]
    dave.kms.encrypt(KeyId=key_id, Plaintext=b"p")
    new_dave = recreate(server, dave)
    allow_all(server, dave.name)
    exc = expect_error(new_dave.kms.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"p")
    assert "with an explicit deny in a resource-based policy" in message(exc)
    kms.encrypt(KeyId=key_id, Plaintext=b"p")  # the administrator stays exempt


def test_a_recreated_user_gets_nothing_from_the_old_grant(server: ServerProcess, kms: Any) -> None:
    dave = create(server, unique_name())
    key = kms.create_key()["KeyMetadata"]
    grant = kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=dave.arn, RetiringPrincipal=dave.arn, Operations=["Encrypt", "Decrypt"]
    )
    dave.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    listed = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [(g["GranteePrincipal"], g["RetiringPrincipal"]) for g in listed] == [(dave.arn, dave.arn)]

    new_dave = recreate(server, dave)
    exc = expect_error(new_dave.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")
    assert message(exc) == (
        f"User: {new_dave.arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} "
        "because no identity-based policy allows the kms:Encrypt action"
    )
    # ListGrants shows a deleted principal's unique id, as AWS does.
    listed = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [(g["GranteePrincipal"], g["RetiringPrincipal"]) for g in listed] == [(dave.user_id, dave.user_id)]
    retirable = kms.list_retirable_grants(RetiringPrincipal=dave.arn)["Grants"]
    assert [g["RetiringPrincipal"] for g in retirable if g["GrantId"] == grant["GrantId"]] == [dave.user_id]
    # Nor may the namesake retire the old grant as its retiring principal.
    expect_error(new_dave.kms.retire_grant, "AccessDeniedException", KeyId=key["Arn"], GrantId=grant["GrantId"])

    # A grant made now names the user that exists now.
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=new_dave.arn, Operations=["Encrypt"])
    new_dave.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")


def test_a_grant_named_for_a_user_that_does_not_exist_yet_is_not_inherited(server: ServerProcess, kms: Any) -> None:
    name = unique_name()
    key = kms.create_key()["KeyMetadata"]
    kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{ACCOUNT_ID}:user/{name}", Operations=["Encrypt"]
    )
    later = create(server, name)
    expect_error(later.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")
