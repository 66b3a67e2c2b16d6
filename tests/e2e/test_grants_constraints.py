"""Grants that create grants, and ListRetirableGrants across accounts, over HTTP with boto3 (issue 15, items 3
and 6).

AWS (KMS API Reference, GrantConstraints and CreateGrant; Developer Guide, "Granting CreateGrant permission"):
"If a grant with a grant constraint includes the CreateGrant operation, the constraint requires that any grants
created with the CreateGrant permission have an equally strict or stricter encryption context constraint", and
the new grant's operations are a subset of the parent's. ListRetirableGrants: "You must specify a principal in
your AWS account"; the authorized resource is the retiring principal.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kmsapi import expect_error, message
from tests.e2e.principals import User, allow, make_user
from tests.e2e.server import ACCOUNT_ID, ServerProcess

pytestmark = pytest.mark.e2e

OTHER_ACCOUNT = "222233334444"
TENANT_A = {"tenant": "A"}
TENANT_B = {"tenant": "B"}


def _key(admin: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = admin.create_key()["KeyMetadata"]
    return metadata


def _holder(server: ServerProcess, admin: Any, key: dict[str, Any], constraints: dict[str, Any] | None) -> User:
    """A user with no policies whose only access is a grant of Encrypt, Decrypt and CreateGrant."""
    holder = make_user(server, "holder")
    extra = {"Constraints": constraints} if constraints is not None else {}
    admin.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=holder.arn, Operations=["Encrypt", "Decrypt", "CreateGrant"], **extra
    )
    return holder


def _sub_grant(holder: User, key: dict[str, Any], grantee: str, **params: Any) -> Any:
    return holder.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=grantee, **params)


def _refused(holder: User, key: dict[str, Any], grantee: str, **params: Any) -> None:
    exc = expect_error(holder.kms.create_grant, "AccessDeniedException", KeyId=key["Arn"], GranteePrincipal=grantee,
                       **params)  # fmt: skip
    assert "kms:CreateGrant" in message(exc)


# -- item 3: a grant's CreateGrant passes on no weaker constraint ---------------------------------------------


def test_the_issue_attack_an_unconstrained_decrypt_grant_is_refused(server: ServerProcess, kms: Any) -> None:
    key = _key(kms)
    holder = _holder(server, kms, key, {"EncryptionContextEquals": TENANT_A})
    outsider = make_user(server, "outsider", account_id=OTHER_ACCOUNT)
    tenant_b = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"tenant B data", EncryptionContext=TENANT_B)
    for grantee in (holder.arn, outsider.arn):
        _refused(holder, key, grantee, Operations=["Decrypt"])
        _refused(holder, key, grantee, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": TENANT_B})
        _refused(holder, key, grantee, Operations=["Decrypt"], Constraints={"EncryptionContextSubset": TENANT_A})
        _refused(holder, key, grantee, Operations=["Decrypt"],
                 Constraints={"EncryptionContextEquals": {"tenant": "A", "extra": "x"}})  # fmt: skip
    expect_error(holder.kms.decrypt, "AccessDeniedException", CiphertextBlob=tenant_b["CiphertextBlob"],
                 EncryptionContext=TENANT_B)  # fmt: skip
    assert kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=outsider.arn)["Grants"] == []


def test_same_constraint_passes_on_under_equals(server: ServerProcess, kms: Any) -> None:
    key = _key(kms)
    holder = _holder(server, kms, key, {"EncryptionContextEquals": TENANT_A})
    helper = make_user(server, "helper")
    outsider = make_user(server, "outsider", account_id=OTHER_ACCOUNT)
    tenant_a = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"tenant A data", EncryptionContext=TENANT_A)
    tenant_b = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"tenant B data", EncryptionContext=TENANT_B)
    # Constraint keys compare case-insensitively, values case-sensitively (AWS GrantConstraints).
    _sub_grant(
        holder, key, helper.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": {"TENANT": "A"}}
    )
    _sub_grant(holder, key, outsider.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": TENANT_A})
    _refused(holder, key, helper.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": {"tenant": "a"}})
    _refused(holder, key, helper.arn, Operations=["Decrypt", "GenerateDataKey"],
             Constraints={"EncryptionContextEquals": TENANT_A})  # fmt: skip
    plain = helper.kms.decrypt(CiphertextBlob=tenant_a["CiphertextBlob"], EncryptionContext=TENANT_A)["Plaintext"]
    assert plain == b"tenant A data"
    expect_error(helper.kms.decrypt, "AccessDeniedException", CiphertextBlob=tenant_b["CiphertextBlob"],
                 EncryptionContext=TENANT_B)  # fmt: skip


def test_stricter_constraints_pass_on_under_subset(server: ServerProcess, kms: Any) -> None:
    key = _key(kms)
    holder = _holder(server, kms, key, {"EncryptionContextSubset": TENANT_A})
    helper = make_user(server, "helper")
    wider = {"tenant": "A", "app": "billing"}
    for stricter in ({"EncryptionContextSubset": TENANT_A}, {"EncryptionContextSubset": wider},
                     {"EncryptionContextEquals": TENANT_A}, {"EncryptionContextEquals": wider}):  # fmt: skip
        _sub_grant(holder, key, helper.arn, Operations=["Encrypt"], Constraints=stricter)
    for weaker in ({"EncryptionContextSubset": {"app": "billing"}}, {"EncryptionContextEquals": {"app": "billing"}},
                   {"EncryptionContextSubset": {"tenant": "B"}}):  # fmt: skip
        _refused(holder, key, helper.arn, Operations=["Encrypt"], Constraints=weaker)
    _refused(holder, key, helper.arn, Operations=["Encrypt"])
    helper.kms.encrypt(KeyId=key["Arn"], Plaintext=b"p", EncryptionContext={"tenant": "A", "app": "billing"})
    expect_error(helper.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"p",
                 EncryptionContext={"tenant": "B", "app": "billing"})  # fmt: skip


def test_an_unconstrained_parent_passes_on_anything_it_holds(server: ServerProcess, kms: Any) -> None:
    key = _key(kms)
    holder = _holder(server, kms, key, None)
    helper = make_user(server, "helper")
    _sub_grant(holder, key, helper.arn, Operations=["Decrypt"])
    _sub_grant(holder, key, helper.arn, Operations=["Encrypt"], Constraints={"EncryptionContextSubset": TENANT_A})
    _refused(holder, key, helper.arn, Operations=["Decrypt", "ReEncryptFrom"])


# -- item 6: ListRetirableGrants names a principal of the caller's own account ----------------------------------


def test_list_retirable_grants_refuses_another_accounts_principal(server: ServerProcess, kms: Any) -> None:
    key = _key(kms)
    retirer = make_user(server, "retirer", policy=allow("kms:ListRetirableGrants"))
    grantee = make_user(server, "grantee")
    grant = kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=retirer.arn, Operations=["DescribeKey"]
    )
    snoop = make_user(server, "snoop", account_id=OTHER_ACCOUNT, policy=allow("kms:ListRetirableGrants"))
    for named in (retirer.arn, ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:root"):
        exc = expect_error(snoop.kms.list_retirable_grants, "AccessDeniedException", RetiringPrincipal=named)
        assert message(exc).startswith(f"User: {snoop.arn} is not authorized to perform: kms:ListRetirableGrants")
    # The grant's own account still lists it, and a principal of the caller's account is fine (no grants).
    mine = retirer.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    assert [g["GrantId"] for g in mine] == [grant["GrantId"]]
    assert snoop.kms.list_retirable_grants(RetiringPrincipal=snoop.arn)["Grants"] == []
