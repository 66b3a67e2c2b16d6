"""A key policy's user ARNs bound to unique ids (issue 15, item 7): the principal named is the user that existed
when the policy was stored, not whoever has the name now; account and service principals are unaffected."""

from __future__ import annotations

import dataclasses
import json

from openkms.policy.evaluate import Decision, evaluate
from openkms.policy.principals import bind, grant_names, with_unique_ids
from openkms.policy.request import AuthorizationRequest
from tests.policy.builders import ACCOUNT, ROOT, document_text, key_policy, request, statement, user

DAVE = user("dave")
OLD_ID, NEW_ID = "AIDAOLDDAVE0000000000", "AIDANEWDAVE0000000000"


def as_dave(user_id: str, action: str = "kms:Encrypt") -> AuthorizationRequest:
    return dataclasses.replace(request(DAVE, action), principal_id=user_id)


def test_a_bound_allow_names_the_user_with_that_unique_id_only() -> None:
    policy = bind(key_policy(statement(principal={"AWS": DAVE})), {DAVE: OLD_ID})
    assert evaluate(policy, [], as_dave(OLD_ID)).decision is Decision.ALLOW
    assert evaluate(policy, [], as_dave(NEW_ID)).decision is Decision.IMPLICIT_DENY
    assert evaluate(policy, [], as_dave("")).decision is Decision.IMPLICIT_DENY


def test_a_user_arn_bound_to_nobody_names_nobody() -> None:
    policy = bind(key_policy(statement(principal={"AWS": [DAVE, ROOT]})), {})
    assert policy.statements[0].principal is not None
    assert policy.statements[0].principal.aws == (ROOT,)
    assert evaluate(policy, [], as_dave(NEW_ID)).decision is Decision.IMPLICIT_DENY


def test_account_and_service_principals_are_left_as_they_are() -> None:
    written = key_policy(
        statement(principal={"AWS": ACCOUNT}),
        statement(principal={"Service": "logs.amazonaws.com"}),
        statement(principal="*"),
    )
    assert bind(written, {DAVE: OLD_ID}) == written


def test_a_deny_with_not_principal_exempts_only_the_bound_user() -> None:
    deny = statement("Deny", action="kms:Encrypt", NotPrincipal={"AWS": [ROOT, DAVE]})
    policy = bind(key_policy(statement(principal={"AWS": DAVE}), deny), {DAVE: OLD_ID})
    assert evaluate(policy, [], as_dave(OLD_ID)).decision is Decision.ALLOW
    assert evaluate(policy, [], as_dave(NEW_ID)).decision is Decision.EXPLICIT_DENY
    deny_dave = bind(key_policy(statement("Deny", principal={"AWS": DAVE})), {DAVE: OLD_ID})
    assert evaluate(deny_dave, [], as_dave(OLD_ID)).decision is Decision.EXPLICIT_DENY


def test_an_unbound_document_still_matches_by_arn() -> None:
    """The lockout check and the evaluator's own tests judge a policy as written: by ARN."""
    written = key_policy(statement(principal={"AWS": DAVE}))
    assert evaluate(written, [], request(DAVE)).decision is Decision.ALLOW


def test_with_unique_ids_replaces_principals_only() -> None:
    text = document_text(
        statement(principal={"AWS": DAVE}, Sid="One"),
        statement(principal={"AWS": [ROOT, DAVE]}, Condition={"ArnEquals": {"aws:PrincipalArn": DAVE}}),
        {"Effect": "Deny", "NotPrincipal": {"AWS": [DAVE]}, "Action": "kms:*", "Resource": "*"},
    )
    shown = json.loads(with_unique_ids(text, {DAVE: OLD_ID}))
    assert shown["Statement"][0]["Principal"] == {"AWS": OLD_ID}
    assert shown["Statement"][1]["Principal"] == {"AWS": [ROOT, OLD_ID]}
    assert shown["Statement"][1]["Condition"] == {"ArnEquals": {"aws:PrincipalArn": DAVE}}
    assert shown["Statement"][2]["NotPrincipal"] == {"AWS": [OLD_ID]}
    assert shown["Statement"][0]["Sid"] == "One"
    single = json.dumps({"Statement": statement(principal={"AWS": DAVE})})  # a lone statement, not a list
    assert json.loads(with_unique_ids(single, {DAVE: OLD_ID}))["Statement"]["Principal"] == {"AWS": OLD_ID}


def test_grant_principals_name_the_bound_user() -> None:
    assert grant_names(DAVE, OLD_ID, DAVE, OLD_ID)
    assert not grant_names(DAVE, OLD_ID, DAVE, NEW_ID)
    assert not grant_names(DAVE, "", DAVE, NEW_ID)  # the ARN named no user when the grant was made
    assert not grant_names(DAVE, OLD_ID, user("erin"), OLD_ID)
    assert grant_names(ROOT, None, ROOT, "")  # an account principal: by ARN
    assert not grant_names(None, None, DAVE, OLD_ID)
