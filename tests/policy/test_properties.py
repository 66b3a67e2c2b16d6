"""Properties of the engine, checked with hypothesis."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from openkms.policy.conditions import Condition, condition_holds, parse_operator
from openkms.policy.document import parse_policy
from openkms.policy.evaluate import Decision, evaluate

from .builders import (
    ACCOUNT,
    OTHER_ACCOUNT,
    ROOT,
    identity_policy,
    key_policy,
    request,
    statement,
    user,
)

plain_text = st.text(alphabet=st.characters(codec="latin-1", exclude_characters="*?$"), max_size=12)
any_text = st.text(alphabet=st.characters(codec="latin-1"), max_size=12)
actions = st.sampled_from(
    ["kms:Encrypt", "kms:Decrypt", "kms:PutKeyPolicy", "kms:GenerateDataKey", "kms:CreateGrant", "kms:DescribeKey"]
)
principals = st.sampled_from(
    [ROOT, user("alice"), user("bob"), user("carol", OTHER_ACCOUNT), f"arn:aws:iam::{OTHER_ACCOUNT}:root"]
)
principal_elements = st.sampled_from(
    ["*", {"AWS": ACCOUNT}, {"AWS": user("alice")}, {"AWS": [OTHER_ACCOUNT, user("bob")]}, {"AWS": "*"}]
)
action_elements = st.sampled_from(["kms:*", "*", "kms:Encrypt", ["kms:Decrypt", "kms:Put*"], "kms:Gen*"])


def _holds(op: str, policy: str, value: str | list[str] | None) -> bool:
    ctx: dict[str, Any] = {} if value is None else {"k:key": value}
    return condition_holds(Condition(parse_operator(op), "k:key", (policy,)), ctx, variables=True)


@given(policy=plain_text, value=any_text)
def test_string_like_without_wildcards_is_string_equals(policy: str, value: str) -> None:
    assert _holds("StringLike", policy, value) == _holds("StringEquals", policy, value)
    assert _holds("StringLike", policy, policy)


@given(policy=any_text, value=st.one_of(any_text, st.lists(any_text, max_size=3)))
def test_negated_operators_are_the_negation_when_comparable(policy: str, value: str | list[str]) -> None:
    for positive, negated in (
        ("StringEquals", "StringNotEquals"),
        ("StringLike", "StringNotLike"),
        ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
        ("ArnLike", "ArnNotLike"),
    ):
        if "${" in policy:
            continue  # an unresolvable variable is neither true nor its negation
        assert _holds(negated, policy, value) == (not _holds(positive, policy, value))


@given(policy=any_text)
def test_for_all_values_holds_on_missing_and_empty_keys(policy: str) -> None:
    assert _holds("ForAllValues:StringEquals", policy, None)
    assert _holds("ForAllValues:StringEquals", policy, [])
    assert not _holds("ForAnyValue:StringEquals", policy, None)
    assert not _holds("ForAnyValue:StringEquals", policy, [])


@given(
    allows=st.lists(st.tuples(principal_elements, action_elements), max_size=4),
    principal=principals,
    action=actions,
    grant=st.booleans(),
    identity_allows=st.booleans(),
)
def test_deny_everything_always_denies(
    allows: list[tuple[Any, Any]], principal: str, action: str, grant: bool, identity_allows: bool
) -> None:
    statements = [statement(principal=p, action=a) for p, a in allows]
    key = key_policy(*statements, statement("Deny", principal="*", action="kms:*"))
    identities = [identity_policy(statement(action="*"))] if identity_allows else []
    result = evaluate(key, identities, request(principal, action), grant_allows=grant)
    assert result.decision is Decision.EXPLICIT_DENY


@given(
    allows=st.lists(st.tuples(principal_elements, action_elements), min_size=1, max_size=4),
    principal=principals,
    action=actions,
    grant=st.booleans(),
)
def test_an_identity_deny_never_turns_into_an_allow(
    allows: list[tuple[Any, Any]], principal: str, action: str, grant: bool
) -> None:
    key = key_policy(*[statement(principal=p, action=a) for p, a in allows])
    deny = identity_policy(statement("Deny", action=action))
    result = evaluate(key, [identity_policy(statement()), deny], request(principal, action), grant_allows=grant)
    assert result.decision is Decision.EXPLICIT_DENY


@given(
    allows=st.lists(st.tuples(principal_elements, action_elements), min_size=1, max_size=4),
    principal=principals,
    action=actions,
    flips=st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_action_case_never_changes_the_decision(
    allows: list[tuple[Any, Any]], principal: str, action: str, flips: list[bool]
) -> None:
    key = key_policy(*[statement(principal=p, action=a) for p, a in allows])
    shouted = "".join(c.upper() if flip else c.lower() for c, flip in zip(action, flips, strict=False))
    before = evaluate(key, [], request(principal, action))
    after = evaluate(key, [], request(principal, shouted))
    assert before.decision is after.decision and before.decided_by is after.decided_by


@given(
    allows=st.lists(st.tuples(principal_elements, action_elements), min_size=1, max_size=4),
    principal=principals,
    action=actions,
)
def test_a_grant_or_an_identity_policy_can_only_widen_access(
    allows: list[tuple[Any, Any]], principal: str, action: str
) -> None:
    key = key_policy(*[statement(principal=p, action=a) for p, a in allows])
    req = request(principal, action)
    base = evaluate(key, [], req).allowed
    assert not base or evaluate(key, [identity_policy(statement())], req).allowed
    assert not base or evaluate(key, [], req, grant_allows=True).allowed
    assert evaluate(key, [], req, grant_allows=True).allowed


printable_latin1 = st.characters(codec="latin-1", exclude_categories=["Cc"]).filter(
    lambda c: not 0x7F <= ord(c) <= 0x9F
)


@given(sid=st.text(alphabet=printable_latin1, max_size=40))
def test_any_printable_latin1_sid_is_accepted_raw_in_a_key_policy(sid: str) -> None:
    text = json.dumps({"Statement": [statement(principal="*", Sid=sid)]}, ensure_ascii=False)
    assert parse_policy(text).statements[0].sid == sid
