"""The evaluation matrix: explicit deny wins, direct and delegated key policy allows, grants, cross-account."""

from __future__ import annotations

from typing import Any

import pytest

from openkms import ids
from openkms.errors import AccessDeniedException
from openkms.policy.document import PolicyDocument
from openkms.policy.evaluate import AuthorizationResult, Decision, PolicySource, authorize, evaluate
from openkms.policy.request import AuthorizationRequest, ContextValue, PrincipalType

from .builders import (
    ACCOUNT,
    KEY_ARN,
    OTHER_ACCOUNT,
    OTHER_KEY_ARN,
    ROOT,
    THIRD_ACCOUNT,
    fixture_policy,
    identity_policy,
    key_policy,
    request,
    statement,
    user,
)

ALICE, BOB = user("alice"), user("bob")
CAROL = user("carol", OTHER_ACCOUNT)  # in the external account
PARTNER = user("Partner", OTHER_ACCOUNT)
OTHER_ROOT = ids.root_arn(OTHER_ACCOUNT)

DEFAULT = fixture_policy("key_default.json")
ALLOW_KMS = identity_policy(statement(action="kms:*", resource="*"))


def decide(
    key: PolicyDocument,
    req: AuthorizationRequest,
    identities: list[PolicyDocument] | None = None,
    *,
    grant: bool = False,
) -> tuple[Decision, PolicySource]:
    result = evaluate(key, identities or [], req, grant_allows=grant)
    return result.decision, result.decided_by


ALLOW_KEY = (Decision.ALLOW, PolicySource.KEY_POLICY)
ALLOW_IDENTITY = (Decision.ALLOW, PolicySource.IDENTITY_POLICY)
ALLOW_GRANT = (Decision.ALLOW, PolicySource.GRANT)
DENY_KEY = (Decision.EXPLICIT_DENY, PolicySource.KEY_POLICY)
DENY_IDENTITY = (Decision.EXPLICIT_DENY, PolicySource.IDENTITY_POLICY)
NO_KEY_ALLOW = (Decision.IMPLICIT_DENY, PolicySource.KEY_POLICY)
NO_IDENTITY_ALLOW = (Decision.IMPLICIT_DENY, PolicySource.IDENTITY_POLICY)


# ---- same account ------------------------------------------------------------------------------------------


def test_default_policy_allows_root_directly() -> None:
    assert decide(DEFAULT, request(ROOT)) == ALLOW_KEY


def test_default_policy_delegates_users_to_identity_policies() -> None:
    assert decide(DEFAULT, request(BOB)) == NO_IDENTITY_ALLOW
    assert decide(DEFAULT, request(BOB), [ALLOW_KMS]) == ALLOW_IDENTITY
    only_decrypt = identity_policy(statement(action="kms:Decrypt"))
    assert decide(DEFAULT, request(BOB), [only_decrypt]) == NO_IDENTITY_ALLOW
    assert decide(DEFAULT, request(BOB, "kms:Decrypt"), [only_decrypt]) == ALLOW_IDENTITY


def test_any_of_several_identity_policies_may_allow() -> None:
    user_policy = identity_policy(statement(action="kms:Decrypt"))
    group_policy = identity_policy(statement(action="kms:Encrypt"))
    assert decide(DEFAULT, request(BOB), [user_policy, group_policy]) == ALLOW_IDENTITY


def test_a_key_policy_naming_the_user_needs_no_identity_policy() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}, action="kms:Encrypt"))
    assert decide(key, request(ALICE)) == ALLOW_KEY
    assert decide(key, request(ALICE, "kms:Decrypt")) == NO_KEY_ALLOW


def test_without_the_key_policy_an_identity_policy_is_not_enough() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}))
    assert decide(key, request(BOB), [ALLOW_KMS]) == NO_KEY_ALLOW


def test_the_root_user_needs_the_key_policy_like_anyone() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}))
    assert decide(key, request(ROOT)) == NO_KEY_ALLOW
    assert decide(key_policy(statement(principal={"AWS": ACCOUNT})), request(ROOT)) == ALLOW_KEY


def test_delegation_to_another_account_does_not_cover_this_one() -> None:
    key = key_policy(statement(principal={"AWS": OTHER_ROOT}))
    assert decide(key, request(BOB), [ALLOW_KMS]) == NO_KEY_ALLOW


def test_everyone_principal_allows_in_the_account_without_identity_policy() -> None:
    assert decide(key_policy(statement(principal="*")), request(BOB)) == ALLOW_KEY
    assert decide(key_policy(statement(principal={"AWS": "*"})), request(BOB)) == ALLOW_KEY


def test_service_principals_do_not_cover_iam_callers() -> None:
    key = key_policy(statement(principal={"Service": "logs.us-west-2.amazonaws.com"}))
    assert decide(key, request(BOB), [ALLOW_KMS]) == NO_KEY_ALLOW


# ---- explicit deny wins --------------------------------------------------------------------------------------


def test_explicit_deny_in_the_key_policy_beats_a_direct_allow() -> None:
    key = key_policy(
        statement(principal={"AWS": ALICE}, Sid="UseIt"),
        statement("Deny", principal={"AWS": ALICE}, action="kms:Encrypt", Sid="NoEncrypt"),
    )
    result = evaluate(key, [], request(ALICE))
    assert (result.decision, result.decided_by) == DENY_KEY
    assert [s.sid for s in result.statements] == ["NoEncrypt"]
    assert decide(key, request(ALICE, "kms:Decrypt")) == ALLOW_KEY


def test_explicit_deny_in_an_identity_policy_beats_a_key_policy_allow() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}))
    deny = identity_policy(statement("Deny", action="kms:Encrypt"))
    assert decide(key, request(ALICE), [ALLOW_KMS, deny]) == DENY_IDENTITY


def test_a_deny_naming_the_account_covers_its_users() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}), statement("Deny", principal={"AWS": ACCOUNT}))
    assert decide(key, request(ALICE)) == DENY_KEY
    assert decide(key, request(ROOT)) == DENY_KEY


def test_a_deny_naming_another_user_does_not_apply() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}), statement("Deny", principal={"AWS": BOB}))
    assert decide(key, request(ALICE)) == ALLOW_KEY


def test_key_policy_deny_is_reported_before_identity_deny() -> None:
    key = key_policy(statement("Deny", principal="*"))
    deny = identity_policy(statement("Deny"))
    assert decide(key, request(ALICE), [deny]) == DENY_KEY


def test_conditional_deny_applies_only_when_its_condition_holds() -> None:
    key = key_policy(
        statement(principal="*"),
        statement("Deny", principal="*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
    )
    assert decide(key, request(ALICE, context={"aws:SecureTransport": True})) == ALLOW_KEY
    assert decide(key, request(ALICE, context={"aws:SecureTransport": False})) == DENY_KEY
    assert decide(key, request(ALICE)) == ALLOW_KEY  # key absent: Bool is false, the deny does not apply


# ---- grants --------------------------------------------------------------------------------------------------


def test_a_grant_allows_what_the_policies_do_not() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}))
    assert decide(key, request(BOB), grant=True) == ALLOW_GRANT
    assert decide(DEFAULT, request(BOB), grant=True) == ALLOW_GRANT
    assert decide(key, request(CAROL), grant=True) == ALLOW_GRANT


def test_explicit_denies_beat_a_grant() -> None:
    key = key_policy(statement(principal="*"), statement("Deny", principal={"AWS": BOB}))
    assert decide(key, request(BOB), grant=True) == DENY_KEY
    deny = identity_policy(statement("Deny"))
    assert decide(DEFAULT, request(BOB), [deny], grant=True) == DENY_IDENTITY


def test_policies_that_allow_are_reported_before_the_grant() -> None:
    assert decide(DEFAULT, request(ROOT), grant=True) == ALLOW_KEY


# ---- cross-account ---------------------------------------------------------------------------------------------

CROSS = fixture_policy("key_cross_account.json")
IN_OFFICE: dict[str, ContextValue] = {"aws:SourceIp": "192.0.2.10", "aws:SecureTransport": True}


def test_cross_account_needs_the_callers_identity_policy() -> None:
    assert decide(CROSS, request(CAROL, context=IN_OFFICE)) == NO_IDENTITY_ALLOW
    assert decide(CROSS, request(CAROL, context=IN_OFFICE), [ALLOW_KMS]) == ALLOW_KEY


def test_cross_account_even_a_directly_named_user_needs_its_identity_policy() -> None:
    assert decide(CROSS, request(PARTNER, context=IN_OFFICE)) == NO_IDENTITY_ALLOW
    assert decide(CROSS, request(PARTNER, context=IN_OFFICE), [ALLOW_KMS]) == ALLOW_KEY


def test_cross_account_root_has_its_accounts_permissions() -> None:
    assert decide(CROSS, request(OTHER_ROOT, context=IN_OFFICE)) == ALLOW_KEY


def test_cross_account_only_for_the_actions_the_key_policy_allows() -> None:
    assert decide(CROSS, request(CAROL, "kms:PutKeyPolicy", context=IN_OFFICE), [ALLOW_KMS]) == NO_KEY_ALLOW


def test_cross_account_a_third_account_is_not_allowed() -> None:
    stranger = user("eve", THIRD_ACCOUNT)
    assert decide(CROSS, request(stranger, context=IN_OFFICE), [ALLOW_KMS]) == NO_KEY_ALLOW


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"aws:SourceIp": "192.0.2.200", "aws:SecureTransport": True}, ALLOW_KEY),
        ({"aws:SourceIp": "2001:db8::7", "aws:SecureTransport": True}, ALLOW_KEY),
        ({"aws:SourceIp": "203.0.113.9", "aws:SecureTransport": True}, DENY_KEY),
        ({"aws:SourceIp": "192.0.2.200", "aws:SecureTransport": False}, DENY_KEY),
        ({"aws:SecureTransport": True}, DENY_KEY),  # NotIpAddress on an absent key is true
    ],
)
def test_cross_account_fixture_denies(context: dict[str, Any], expected: tuple[Decision, PolicySource]) -> None:
    assert decide(CROSS, request(CAROL, context=context), [ALLOW_KMS]) == expected


def test_cross_account_deny_on_the_external_account_does_not_touch_the_owner() -> None:
    assert decide(CROSS, request(ROOT, context={"aws:SecureTransport": True})) == ALLOW_KEY


# ---- NotPrincipal, NotAction, NotResource -------------------------------------------------------------------------


def test_not_principal_deny_exempts_a_user_listed_with_its_account() -> None:
    key = key_policy(
        statement(principal={"AWS": ACCOUNT}),
        statement("Deny", NotPrincipal={"AWS": [ROOT, ALICE]}, action="kms:Decrypt"),
    )
    assert decide(key, request(ALICE, "kms:Decrypt"), [ALLOW_KMS]) == ALLOW_IDENTITY
    assert decide(key, request(ROOT, "kms:Decrypt")) == ALLOW_KEY
    assert decide(key, request(BOB, "kms:Decrypt"), [ALLOW_KMS]) == DENY_KEY
    assert decide(key, request(BOB, "kms:Encrypt"), [ALLOW_KMS]) == ALLOW_IDENTITY


def test_not_principal_deny_listing_the_user_without_its_account_still_denies_it() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}), statement("Deny", NotPrincipal={"AWS": ALICE}))
    assert decide(key, request(ALICE)) == DENY_KEY


def test_not_principal_everyone_never_applies() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}), statement("Deny", NotPrincipal="*"))
    assert decide(key, request(ALICE)) == ALLOW_KEY


def test_not_principal_allow_covers_everyone_else_directly() -> None:
    key = key_policy(statement(NotPrincipal={"AWS": [ROOT, BOB]}))
    assert decide(key, request(ALICE)) == ALLOW_KEY
    assert decide(key, request(BOB), [ALLOW_KMS]) == NO_KEY_ALLOW


def test_not_action_allow() -> None:
    key = key_policy(statement(principal={"AWS": ALICE}, action=None, NotAction="kms:ScheduleKeyDeletion"))
    assert decide(key, request(ALICE, "kms:Encrypt")) == ALLOW_KEY
    assert decide(key, request(ALICE, "kms:ScheduleKeyDeletion")) == NO_KEY_ALLOW
    assert decide(key, request(ALICE, "KMS:SCHEDULEKEYDELETION")) == NO_KEY_ALLOW


def test_not_action_deny() -> None:
    key = key_policy(
        statement(principal={"AWS": ALICE}),
        statement("Deny", principal="*", action=None, NotAction=["kms:Decrypt", "kms:Describe*"]),
    )
    assert decide(key, request(ALICE, "kms:Decrypt")) == ALLOW_KEY
    assert decide(key, request(ALICE, "kms:DescribeKey")) == ALLOW_KEY
    assert decide(key, request(ALICE, "kms:Encrypt")) == DENY_KEY


def test_not_resource_in_an_identity_policy() -> None:
    ident = identity_policy(statement(resource=None, NotResource=KEY_ARN))
    assert decide(DEFAULT, request(BOB), [ident]) == NO_IDENTITY_ALLOW
    assert decide(DEFAULT, request(BOB, resource=OTHER_KEY_ARN), [ident]) == ALLOW_IDENTITY


def test_not_resource_star_in_a_key_policy_never_applies() -> None:
    key = key_policy(
        statement(principal={"AWS": ALICE}), statement("Deny", principal="*", resource=None, NotResource="*")
    )
    assert decide(key, request(ALICE)) == ALLOW_KEY


# ---- actions, principals and resources: matching rules ----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("kms:Encrypt", "kms:Encrypt", True),
        ("KMS:encrypt", "kms:Encrypt", True),
        ("kms:Encrypt", "KMS:ENCRYPT", True),
        ("kms:Gen*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("kms:Describe?ey", "kms:DescribeKey", True),
        ("kms:Describe?ey", "kms:DescribeKeys", False),
        ("kms:*", "kms:Decrypt", True),
        ("*", "kms:Decrypt", True),
        ("kms:Encrypt", "kms:EncryptX", False),
        ("kms:Re*", "kms:Decrypt", False),
    ],
)
def test_action_matching_is_case_insensitive_with_wildcards(pattern: str, action: str, allowed: bool) -> None:
    key = key_policy(statement(principal={"AWS": ALICE}, action=pattern))
    assert decide(key, request(ALICE, action)) == (ALLOW_KEY if allowed else NO_KEY_ALLOW)


def test_principal_arns_match_case_sensitively() -> None:
    key = key_policy(statement(principal={"AWS": user("Alice")}))
    assert decide(key, request(user("Alice"))) == ALLOW_KEY
    assert decide(key, request(ALICE)) == NO_KEY_ALLOW


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        ("*", True),
        (KEY_ARN, True),
        (OTHER_KEY_ARN, False),
        (f"arn:aws:kms:*:{ACCOUNT}:key/*", True),
        (f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-*", True),
        (f"arn:aws:kms:*:{OTHER_ACCOUNT}:key/*", False),
        (f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*", False),
        (f"arn:aws:kms:us-west-2:{ACCOUNT}:alias/*", False),
    ],
)
def test_key_policy_resources(resource: str, allowed: bool) -> None:
    key = key_policy(statement(principal={"AWS": ALICE}, resource=resource))
    assert decide(key, request(ALICE)) == (ALLOW_KEY if allowed else NO_KEY_ALLOW)


def test_resource_variables() -> None:
    ident = identity_policy(statement(resource="arn:aws:kms:*:111122223333:key/${aws:PrincipalTag/KeyId}"))
    key_id = KEY_ARN.rsplit("/", 1)[1]
    assert decide(DEFAULT, request(BOB, context={"aws:PrincipalTag/KeyId": key_id}), [ident]) == ALLOW_IDENTITY
    assert decide(DEFAULT, request(BOB, context={"aws:PrincipalTag/KeyId": "*"}), [ident]) == NO_IDENTITY_ALLOW
    assert decide(DEFAULT, request(BOB), [ident]) == NO_IDENTITY_ALLOW  # unresolvable: matches nothing
    legacy = identity_policy(statement(resource="arn:aws:kms:*:111122223333:key/${aws:username}"), version=None)
    assert decide(DEFAULT, request(BOB), [legacy]) == NO_IDENTITY_ALLOW


def test_unresolvable_variable_voids_a_not_resource() -> None:
    ident = identity_policy(statement(resource=None, NotResource="arn:aws:kms:*:*:key/${aws:PrincipalTag/x}"))
    assert decide(DEFAULT, request(BOB), [ident]) == NO_IDENTITY_ALLOW


# ---- the fixtures, decided --------------------------------------------------------------------------------------


def test_console_policy() -> None:
    key = fixture_policy("key_console.json")
    key_user, admin = user("KeyUser"), user("KeyAdmin")
    assert decide(key, request(key_user, "kms:Encrypt")) == ALLOW_KEY
    assert decide(key, request(key_user, "kms:ReEncryptFrom")) == ALLOW_KEY
    assert decide(key, request(key_user, "kms:CreateGrant")) == NO_IDENTITY_ALLOW
    grant_for_aws = {"kms:GrantIsForAWSResource": True}
    assert decide(key, request(key_user, "kms:CreateGrant", context=grant_for_aws)) == ALLOW_KEY
    assert decide(key, request(admin, "kms:PutKeyPolicy")) == ALLOW_KEY
    assert decide(key, request(admin, "kms:Decrypt")) == NO_IDENTITY_ALLOW
    assert decide(key, request(admin, "kms:Decrypt"), [ALLOW_KMS]) == ALLOW_IDENTITY


def test_via_service_policy() -> None:
    key = fixture_policy("key_via_service.json")
    via_ec2 = {"kms:ViaService": "ec2.us-west-2.amazonaws.com"}
    assert decide(key, request(BOB, "kms:Decrypt", context=via_ec2)) == ALLOW_KEY
    assert decide(key, request(BOB, "kms:Decrypt")) == NO_KEY_ALLOW
    assert decide(key, request(BOB, "kms:Decrypt", context={"kms:ViaService": "s3.us-west-2.amazonaws.com"})) == (
        NO_KEY_ALLOW
    )
    assert decide(key, request(CAROL, "kms:Decrypt", context=via_ec2), [ALLOW_KMS]) == NO_KEY_ALLOW
    assert decide(key, request(BOB, "kms:DescribeKey"), [ALLOW_KMS]) == ALLOW_IDENTITY


def test_encryption_context_policy() -> None:
    key = fixture_policy("key_encryption_context.json")
    app = user("FinanceApp")

    def ctx(**pairs: str) -> dict[str, Any]:
        context: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in pairs.items()}
        context["kms:EncryptionContextKeys"] = list(pairs)
        return context

    assert decide(key, request(app, "kms:Decrypt", context=ctx(Department="Finance"))) == ALLOW_KEY
    assert decide(key, request(app, "kms:Decrypt", context=ctx(Department="Payroll", Project="x"))) == ALLOW_KEY
    assert decide(key, request(app, "kms:Decrypt", context=ctx(Department="HR"))) == NO_IDENTITY_ALLOW
    assert decide(key, request(app, "kms:Decrypt", context=ctx(Department="Finance", Owner="x"))) == (NO_IDENTITY_ALLOW)
    assert decide(key, request(app, "kms:Decrypt")) == DENY_KEY  # no encryption context at all
    assert decide(key, request(app, "kms:Encrypt", context=ctx(Project="p"))) == ALLOW_KEY
    assert decide(key, request(app, "kms:Encrypt", context=ctx(Department="Finance"))) == NO_IDENTITY_ALLOW


def test_principal_tag_policy() -> None:
    key = fixture_policy("key_principal_tag.json")
    tags = {"aws:PrincipalTag/Team": "payments", "aws:PrincipalTag/Project": "ledger"}
    good = {**tags, "kms:EncryptionContext:project": "ledger", "aws:ResourceTag/Environment": "prod"}
    assert decide(key, request(BOB, context=good)) == ALLOW_KEY
    assert decide(key, request(BOB, context={**good, "kms:EncryptionContext:project": "other"})) == (NO_IDENTITY_ALLOW)
    no_env = {k: v for k, v in good.items() if k != "aws:ResourceTag/Environment"}
    assert decide(key, request(BOB, context=no_env)) == ALLOW_KEY  # StringEqualsIfExists
    assert decide(key, request(BOB, context={**good, "aws:ResourceTag/Environment": "dev"})) == NO_IDENTITY_ALLOW
    assert decide(key, request(BOB, context={**good, "aws:PrincipalTag/EmploymentType": "contractor"})) == DENY_KEY


def test_cloudwatch_logs_policy_does_not_cover_users() -> None:
    key = fixture_policy("key_cloudwatch_logs.json")
    arn_ctx = {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-west-2:111122223333:log-group:/app"}
    assert decide(key, request(BOB, context=arn_ctx)) == NO_IDENTITY_ALLOW
    assert decide(key, request(BOB, context=arn_ctx), [ALLOW_KMS]) == ALLOW_IDENTITY


def test_terraform_policy() -> None:
    key = fixture_policy("key_terraform.json")
    deployer, other = user("ci-deployer"), user("someone")
    assert decide(key, request(deployer, "kms:CreateAlias")) == ALLOW_KEY
    via_s3: dict[str, ContextValue] = {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    assert decide(key, request(other, "kms:Decrypt", context=via_s3)) == ALLOW_KEY
    attested: dict[str, ContextValue] = {
        "kms:RecipientAttestation:ImageSha384Length": 48,
        "aws:CurrentTime": "2026-01-01T00:00:00Z",
    }
    assert decide(key, request(other, "kms:Decrypt", context={**via_s3, **attested})) == DENY_KEY
    assert decide(key, request(deployer, "kms:Decrypt", context={**via_s3, **attested})) == ALLOW_KEY
    assert decide(key, request(deployer, "kms:Decrypt", context=attested), [ALLOW_KMS]) == ALLOW_IDENTITY
    late = {**attested, "aws:CurrentTime": "2031-01-01T00:00:00Z"}
    assert decide(key, request(other, "kms:Decrypt", context=late), [ALLOW_KMS]) == ALLOW_IDENTITY


def test_identity_policy_fixture_with_username_variable() -> None:
    ident = fixture_policy("identity_kms_user.json")
    own = {"kms:EncryptionContext:owner": "bob"}
    assert decide(DEFAULT, request(BOB, context=own), [ident]) == ALLOW_IDENTITY
    assert decide(DEFAULT, request(BOB, context={"kms:EncryptionContext:owner": "alice"}), [ident]) == (
        NO_IDENTITY_ALLOW
    )
    assert decide(DEFAULT, request(BOB, "kms:ScheduleKeyDeletion"), [ident, ALLOW_KMS]) == DENY_IDENTITY
    foreign_key = ids.key_arn("us-west-2", OTHER_ACCOUNT, "0987dcba-09fe-87dc-65ba-ab0987654321")
    # The identity policy's Resource names only the account's own keys.
    assert decide(DEFAULT, request(BOB, resource=foreign_key, context=own), [ident]) == NO_IDENTITY_ALLOW


# ---- API shape ----------------------------------------------------------------------------------------------------


def test_messages_follow_aws_wording() -> None:
    req = request(BOB)
    head = f"User: {BOB} is not authorized to perform: kms:Encrypt on resource: {KEY_ARN}"
    cases = {
        Decision.IMPLICIT_DENY: {
            PolicySource.KEY_POLICY: f"{head} because no resource-based policy allows the kms:Encrypt action",
            PolicySource.IDENTITY_POLICY: f"{head} because no identity-based policy allows the kms:Encrypt action",
        },
        Decision.EXPLICIT_DENY: {
            PolicySource.KEY_POLICY: f"{head} with an explicit deny in a resource-based policy",
            PolicySource.IDENTITY_POLICY: f"{head} with an explicit deny in an identity-based policy",
        },
    }
    for decision, by_source in cases.items():
        for source, message in by_source.items():
            assert AuthorizationResult(decision, source).denial_message(req) == message


def test_authorize_raises_access_denied() -> None:
    with pytest.raises(AccessDeniedException) as caught:
        authorize(DEFAULT, [], request(BOB))
    assert caught.value.message.endswith("because no identity-based policy allows the kms:Encrypt action")
    assert authorize(DEFAULT, [ALLOW_KMS], request(BOB)).allowed


def test_evaluate_refuses_documents_of_the_wrong_kind() -> None:
    with pytest.raises(ValueError):
        evaluate(ALLOW_KMS, [], request(BOB))
    with pytest.raises(ValueError):
        evaluate(DEFAULT, [DEFAULT], request(BOB))


def test_request_normalises_context_and_derives_global_keys() -> None:
    req = request(BOB, context={"kms:EncryptionContext:Dept": "IT"})
    assert req.context["kms:encryptioncontext:dept"] == "IT"
    assert req.context["aws:principalarn"] == BOB
    assert req.context["aws:principalaccount"] == ACCOUNT == req.context["kms:calleraccount"]
    assert req.context["aws:principaltype"] == "User"
    assert req.context["aws:username"] == "bob"
    assert request(ROOT).principal_type is PrincipalType.ROOT and request(ROOT).is_root
    assert "aws:username" not in request(ROOT).context
    with pytest.raises(ValueError, match="given twice"):
        request(BOB, context={"kms:EncryptionContext:a": "1", "kms:encryptioncontext:A": "2"})
    with pytest.raises(TypeError):
        req.context["x"] = "y"  # type: ignore[index]
