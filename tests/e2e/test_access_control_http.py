"""Access control over HTTP with several users' credentials (issue 4): key policies, identity policies, grants,
conditions, cross-account use, and revocation that holds from the very next request.

Users are made with the ``openkms iam`` CLI against the running server's data, as an operator would. Expected
errors and messages are AWS's (KMS "Key policies", "Grants", "Condition keys"; IAM "Policy evaluation logic"):
a denial is AccessDeniedException with "User: <arn> is not authorized to perform: kms:<Action> on resource:
<arn> because no <identity-based|resource-based> policy allows the kms:<Action> action", or "with an explicit
deny in a <...> policy".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.kmsapi import expect_error, message, new_key
from tests.e2e.principals import ADMINISTRATOR, User, allow, iam, make_user, put_policy
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

OTHER_ACCOUNT = "777788889999"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/admin"  # the dev administrator the e2e server starts with


def denied(user: User, action: str, resource: str, source: str = "identity-based") -> str:
    return (
        f"User: {user.arn} is not authorized to perform: kms:{action} on resource: {resource} "
        f"because no {source} policy allows the kms:{action} action"
    )


def key_policy(*statements: dict[str, Any], account: str = ACCOUNT_ID) -> str:
    root = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]})


@pytest.fixture
def admin(kms: Any) -> Any:
    return kms


# -- identity policies and the default key policy -------------------------------------------------------------


def test_a_user_without_policies_may_do_nothing(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key()["KeyMetadata"]
    nobody = make_user(server, "nobody")
    exc = expect_error(nobody.kms.describe_key, "AccessDeniedException", KeyId=key["KeyId"])
    assert message(exc) == denied(nobody, "DescribeKey", key["Arn"])
    exc = expect_error(nobody.kms.create_key, "AccessDeniedException")
    assert message(exc) == denied(nobody, "CreateKey", "*")
    expect_error(nobody.kms.list_keys, "AccessDeniedException")
    expect_error(nobody.kms.generate_random, "AccessDeniedException", NumberOfBytes=8)


def test_identity_policy_scoped_to_one_key_and_action(server: ServerProcess, admin: Any) -> None:
    mine, other = admin.create_key()["KeyMetadata"], admin.create_key()["KeyMetadata"]
    user = make_user(server, "encrypt-only", policy=allow("kms:Encrypt", mine["Arn"]))
    blob = user.kms.encrypt(KeyId=mine["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    exc = expect_error(user.kms.decrypt, "AccessDeniedException", CiphertextBlob=blob)
    assert message(exc) == denied(user, "Decrypt", mine["Arn"])
    exc = expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=other["KeyId"], Plaintext=b"p")
    assert message(exc) == denied(user, "Encrypt", other["Arn"])
    assert admin.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p"


def test_wildcard_actions_and_case_insensitive_action_names(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key()["KeyMetadata"]
    user = make_user(server, "wild", policy=allow(["KMS:encrypt", "kms:Generate*"], "arn:aws:kms:*:*:key/*"))
    user.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    user.kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    user.kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=16)
    expect_error(user.kms.describe_key, "AccessDeniedException", KeyId=key["KeyId"])


def test_explicit_deny_wins_over_every_allow(server: ServerProcess, admin: Any) -> None:
    user = make_user(server, "denied", policy=ADMINISTRATOR)
    deny = {
        "Sid": "NoDecrypt",
        "Effect": "Deny",
        "Principal": {"AWS": user.arn},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }
    key = admin.create_key(Policy=key_policy(deny))["KeyMetadata"]
    blob = user.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    exc = expect_error(user.kms.decrypt, "AccessDeniedException", CiphertextBlob=blob)
    assert message(exc) == (
        f"User: {user.arn} is not authorized to perform: kms:Decrypt on resource: {key['Arn']} "
        "with an explicit deny in a resource-based policy"
    )
    identity_deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }
    put_policy(server, user.name, identity_deny)
    exc = expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")
    assert "with an explicit deny in an identity-based policy" in message(exc)


def test_key_policy_naming_a_user_needs_no_identity_policy(server: ServerProcess, admin: Any) -> None:
    user = make_user(server, "named")
    named = {
        "Effect": "Allow",
        "Principal": {"AWS": user.arn},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
    }
    key = admin.create_key(Policy=key_policy(named))["KeyMetadata"]
    blob = user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"named")["CiphertextBlob"]
    assert user.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"named"
    exc = expect_error(user.kms.describe_key, "AccessDeniedException", KeyId=key["KeyId"])
    assert message(exc) == denied(user, "DescribeKey", key["Arn"])


def test_key_policy_without_account_delegation_ignores_identity_policies(server: ServerProcess, admin: Any) -> None:
    user = make_user(server, "delegation", policy=ADMINISTRATOR)
    only_admin = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": ADMIN_ARN}, "Action": "kms:*", "Resource": "*"}],
        }
    )
    key = admin.create_key(Policy=only_admin)["KeyMetadata"]
    exc = expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")
    assert message(exc) == denied(user, "Encrypt", key["Arn"], "resource-based")
    admin.encrypt(KeyId=key["KeyId"], Plaintext=b"p")


# -- conditions ----------------------------------------------------------------------------------------------


def test_encryption_context_condition_with_policy_variable(server: ServerProcess, admin: Any) -> None:
    """ "This service may decrypt only records of its own tenant": the tenant is the user name."""
    key = admin.create_key()["KeyMetadata"]
    tenant_policy = allow(
        ["kms:Encrypt", "kms:Decrypt"],
        key["Arn"],
        Condition={"StringEquals": {"kms:EncryptionContext:tenant": "${aws:username}"}},
    )
    alice = make_user(server, "alice", policy=tenant_policy)
    bob = make_user(server, "bob", policy=tenant_policy)
    mine = alice.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"a", EncryptionContext={"tenant": alice.name})
    expect_error(
        alice.kms.encrypt,
        "AccessDeniedException",
        KeyId=key["KeyId"],
        Plaintext=b"a",
        EncryptionContext={"tenant": bob.name},
    )
    expect_error(alice.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"a")
    expect_error(
        bob.kms.decrypt,
        "AccessDeniedException",
        CiphertextBlob=mine["CiphertextBlob"],
        EncryptionContext={"tenant": alice.name},
    )
    opened = alice.kms.decrypt(CiphertextBlob=mine["CiphertextBlob"], EncryptionContext={"tenant": alice.name})
    assert opened["Plaintext"] == b"a"


def test_environment_tags_on_keys_and_principals(server: ServerProcess, admin: Any) -> None:
    """Production keys only for production principals: aws:ResourceTag against aws:PrincipalTag."""
    prod = admin.create_key(Tags=[{"TagKey": "env", "TagValue": "production"}])["KeyMetadata"]
    dev = admin.create_key(Tags=[{"TagKey": "env", "TagValue": "dev"}])["KeyMetadata"]
    same_env = allow("kms:Encrypt", "*", Condition={"StringEquals": {"aws:ResourceTag/env": "${aws:PrincipalTag/env}"}})
    service = make_user(server, "prod-svc", policy=same_env, tags={"env": "production"})
    service.kms.encrypt(KeyId=prod["KeyId"], Plaintext=b"p")
    expect_error(service.kms.encrypt, "AccessDeniedException", KeyId=dev["KeyId"], Plaintext=b"p")
    untagged = make_user(server, "untagged", policy=same_env)
    expect_error(untagged.kms.encrypt, "AccessDeniedException", KeyId=prod["KeyId"], Plaintext=b"p")
    # Retagging the key moves it out of reach at once.
    admin.tag_resource(KeyId=prod["KeyId"], Tags=[{"TagKey": "env", "TagValue": "staging"}])
    expect_error(service.kms.encrypt, "AccessDeniedException", KeyId=prod["KeyId"], Plaintext=b"p")


def test_request_alias_and_algorithm_conditions(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key()["KeyMetadata"]
    alias = f"alias/cond-{key['KeyId'][:8]}"
    admin.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    via_alias = allow("kms:Encrypt", "*", Condition={"StringEquals": {"kms:RequestAlias": alias}})
    user = make_user(server, "alias-only", policy=via_alias)
    user.kms.encrypt(KeyId=alias, Plaintext=b"p")
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"p")


# -- grants --------------------------------------------------------------------------------------------------


def test_grant_with_constraints_retire_and_revoke(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key()["KeyMetadata"]
    grantee = make_user(server, "grantee")
    expect_error(grantee.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p")
    grant = admin.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee.arn,
        Operations=["Encrypt", "Decrypt", "RetireGrant"],
        Constraints={"EncryptionContextSubset": {"app": "billing"}},
        Name="billing-grant",
    )
    again = admin.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee.arn,
        Operations=["Encrypt", "Decrypt", "RetireGrant"],
        Constraints={"EncryptionContextSubset": {"app": "billing"}},
        Name="billing-grant",
    )
    assert again["GrantId"] == grant["GrantId"]  # Name makes CreateGrant idempotent
    blob = grantee.kms.encrypt(
        KeyId=key["Arn"],
        Plaintext=b"p",
        EncryptionContext={"app": "billing", "row": "7"},
        GrantTokens=[grant["GrantToken"]],
    )["CiphertextBlob"]
    expect_error(grantee.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p")
    expect_error(
        grantee.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p", EncryptionContext={"app": "hr"}
    )
    listed = admin.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    entry = listed[0]
    assert entry["GranteePrincipal"] == grantee.arn and entry["KeyId"] == key["Arn"]
    assert entry["IssuingAccount"] == f"arn:aws:iam::{ACCOUNT_ID}:root" and entry["Name"] == "billing-grant"
    assert sorted(entry["Operations"]) == ["Decrypt", "Encrypt", "RetireGrant"]
    assert entry["Constraints"] == {"EncryptionContextSubset": {"app": "billing"}}

    admin.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    expect_error(
        grantee.kms.decrypt,
        "AccessDeniedException",
        CiphertextBlob=blob,
        EncryptionContext={"app": "billing", "row": "7"},
    )
    assert admin.list_grants(KeyId=key["KeyId"])["Grants"] == []
    expect_error(admin.revoke_grant, "NotFoundException", KeyId=key["KeyId"], GrantId=grant["GrantId"])

    second = admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt", "RetireGrant"])
    grantee.kms.encrypt(KeyId=key["Arn"], Plaintext=b"p")
    grantee.kms.retire_grant(GrantToken=second["GrantToken"])
    expect_error(grantee.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p")


def test_retiring_principal_and_list_retirable_grants(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key()["KeyMetadata"]
    grantee = make_user(server, "g")
    retirer = make_user(server, "retirer", policy=allow("kms:ListRetirableGrants"))
    grant = admin.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=retirer.arn, Operations=["DescribeKey"]
    )
    assert grantee.kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyId"] == key["KeyId"]
    retirable = retirer.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    assert [g["GrantId"] for g in retirable] == [grant["GrantId"]]
    expect_error(grantee.kms.retire_grant, "AccessDeniedException", KeyId=key["Arn"], GrantId=grant["GrantId"])
    retirer.kms.retire_grant(KeyId=key["Arn"], GrantId=grant["GrantId"])
    expect_error(grantee.kms.describe_key, "AccessDeniedException", KeyId=key["Arn"])
    expect_error(retirer.kms.retire_grant, "InvalidGrantTokenException", GrantToken=grant["GrantToken"])


def test_create_grant_validation(server: ServerProcess, admin: Any) -> None:
    key = admin.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    user = make_user(server, "v")
    expect_error(
        admin.create_grant, "ValidationException", KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"]
    )
    expect_error(
        admin.create_grant,
        "ValidationException",
        KeyId=key["KeyId"],
        GranteePrincipal="not-a-principal",
        Operations=["Sign"],
    )
    expect_error(
        admin.create_grant,
        "DryRunOperationException",
        KeyId=key["KeyId"],
        GranteePrincipal=user.arn,
        Operations=["Sign"],
        DryRun=True,
    )
    admin.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Sign", "GetPublicKey"])
    user.kms.sign(KeyId=key["Arn"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    expect_error(user.kms.verify, "AccessDeniedException", KeyId=key["Arn"], Message=b"m", Signature=b"s" * 70,
                 SigningAlgorithm="ECDSA_SHA_256")  # fmt: skip


# -- key policies --------------------------------------------------------------------------------------------


def test_get_put_list_key_policy_and_the_lockout_check(server: ServerProcess, admin: Any) -> None:
    key_id = new_key(admin)
    default = json.loads(admin.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert default["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
    assert admin.get_key_policy(KeyId=key_id)["PolicyName"] == "default"
    assert admin.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    expect_error(admin.get_key_policy, "NotFoundException", KeyId=key_id, PolicyName="other")

    stranger = {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/x"}
    stranger_only = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": stranger, "Action": "kms:*", "Resource": "*"}],
        }
    )
    exc = expect_error(admin.put_key_policy, "MalformedPolicyDocumentException", KeyId=key_id, Policy=stranger_only)
    assert message(exc) == "The new key policy will not allow you to update the key policy in the future."
    for bad, why in (
        ("{not json", "JSON"),
        (
            json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}),
            "Maybe",
        ),
        (
            json.dumps(
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}
            ),
            "",
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "kms:*",
                            "Resource": "*",
                            "Condition": {"StringEqualz": {"a": "b"}},
                        }
                    ]
                }
            ),
            "StringEqualz",
        ),
    ):
        exc = expect_error(admin.put_key_policy, "MalformedPolicyDocumentException", KeyId=key_id, Policy=bad)
        assert why in message(exc)
    admin.put_key_policy(KeyId=key_id, Policy=stranger_only, BypassPolicyLockoutSafetyCheck=True)
    expect_error(admin.describe_key, "AccessDeniedException", KeyId=key_id)  # locked out, as asked
    expect_error(admin.put_key_policy, "AccessDeniedException", KeyId=key_id, Policy=key_policy())


def test_put_key_policy_takes_effect_on_the_next_request(server: ServerProcess, admin: Any) -> None:
    user = make_user(server, "revoked")
    named = {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "Resource": "*"}
    key_id = admin.create_key(Policy=key_policy(named))["KeyMetadata"]["KeyId"]
    for _ in range(3):
        user.kms.encrypt(KeyId=f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{key_id}", Plaintext=b"p")
    admin.put_key_policy(KeyId=key_id, Policy=key_policy())
    for _ in range(5):  # every worker, every connection
        expect_error(
            user.kms.encrypt,
            "AccessDeniedException",
            KeyId=f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/{key_id}",
            Plaintext=b"p",
        )


# -- cross-account -------------------------------------------------------------------------------------------


def test_cross_account_use_needs_the_key_policy_and_the_callers_identity_policy(
    server: ServerProcess, admin: Any
) -> None:
    partner_root = {
        "Sid": "Partner",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
    }
    key = admin.create_key(Policy=key_policy(partner_root))["KeyMetadata"]
    partner = make_user(server, "partner", account_id=OTHER_ACCOUNT, policy=allow("kms:*", key["Arn"]))
    blob = partner.kms.encrypt(KeyId=key["Arn"], Plaintext=b"across")["CiphertextBlob"]
    assert admin.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across"
    assert partner.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across"
    assert partner.kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]
    expect_error(partner.kms.encrypt, "NotFoundException", KeyId=key["KeyId"], Plaintext=b"p")  # bare id: own account
    exc = expect_error(partner.kms.disable_key, "AccessDeniedException", KeyId=key["Arn"])
    assert message(exc) == denied(partner, "DisableKey", key["Arn"], "resource-based")
    no_identity = make_user(server, "partner-bare", account_id=OTHER_ACCOUNT)
    exc = expect_error(no_identity.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p")
    assert message(exc) == denied(no_identity, "Encrypt", key["Arn"])


# -- revocation of credentials -------------------------------------------------------------------------------


def test_deactivated_access_key_and_deleted_policy_stop_at_once(server: ServerProcess, admin: Any) -> None:
    key_id = new_key(admin)
    user = make_user(server, "deactivate", policy=allow("kms:Encrypt"))
    user.kms.encrypt(KeyId=key_id, Plaintext=b"p")
    iam(server, "delete-user-policy", "--account-id", ACCOUNT_ID, "--user-name", user.name, "--policy-name", "p")
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"p")
