"""Condition operators: every operator true and false, IfExists, set qualifiers, negation, variables."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from openkms.policy.conditions import (
    Condition,
    SetQualifier,
    condition_holds,
    conditions_hold,
    parse_operator,
    validate_values,
)
from openkms.policy.document import parse_policy
from openkms.policy.request import Conflicting, ContextValue, folded_pairs

from .builders import ACCOUNT, document_text, request, statement, user

MISSING = object()
KEY = "kms:Test"


def holds(op: str, policy: str | list[str], value: Any = MISSING, *, variables: bool = True, **ctx: Any) -> bool:
    """Evaluate ``{op: {KEY: policy}}`` with ``KEY`` set to ``value`` (absent if MISSING) plus ``ctx``."""
    operator = parse_operator(op)
    values = tuple(policy) if isinstance(policy, list) else (policy,)
    validate_values(operator, KEY, values)
    context: dict[str, ContextValue] = {k.replace("__", ":").lower(): v for k, v in ctx.items()}
    if value is not MISSING:
        context[KEY.lower()] = value
    return condition_holds(Condition(operator, KEY.lower(), values), context, variables=variables)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


T, F = True, False
CASES: list[tuple[str, str | list[str], Any, bool]] = [
    # strings
    ("StringEquals", "abc", "abc", T),
    ("StringEquals", "abc", "ABC", F),
    ("StringEquals", ["x", "abc"], "abc", T),
    ("StringEquals", "a*", "abc", F),
    ("StringEquals", "a*", "a*", T),
    ("StringEquals", "abc", MISSING, F),
    ("StringNotEquals", ["x", "y"], "abc", T),
    ("StringNotEquals", ["x", "abc"], "abc", F),
    ("StringNotEquals", "abc", MISSING, T),
    ("StringEqualsIgnoreCase", "ABC", "abc", T),
    ("StringEqualsIgnoreCase", "abd", "abc", F),
    ("StringNotEqualsIgnoreCase", "ABC", "abc", F),
    ("StringNotEqualsIgnoreCase", "xyz", "abc", T),
    ("StringLike", "a*c", "abbbc", T),
    ("StringLike", "a?c", "abc", T),
    ("StringLike", "a?c", "abbc", F),
    ("StringLike", "A*", "abc", F),
    ("StringLike", "*", "", T),
    ("StringLike", "arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:eu-west-1:111122223333:key/k", T),
    ("StringLike", "abc", MISSING, F),
    ("StringNotLike", "a*", "abc", F),
    ("StringNotLike", ["b*", "c*"], "abc", T),
    ("StringNotLike", "a*", MISSING, T),
    # request values that are not strings compare by their text
    ("StringEquals", "true", True, T),
    ("StringEquals", "10", 10, T),
    # numbers
    ("NumericEquals", "10", 10, T),
    ("NumericEquals", "10", "10.0", T),
    ("NumericEquals", "10", "11", F),
    ("NumericEquals", "10", "ten", F),
    ("NumericEquals", "1", True, F),
    ("NumericNotEquals", "10", "11", T),
    ("NumericNotEquals", "10", "10", F),
    ("NumericNotEquals", "10", "ten", F),  # not comparable: never helps the condition hold
    ("NumericNotEquals", "10", MISSING, T),
    ("NumericLessThan", "10", "9", T),
    ("NumericLessThan", "10", "10", F),
    ("NumericLessThanEquals", "10", "10", T),
    ("NumericLessThanEquals", "10", "10.5", F),
    ("NumericGreaterThan", "10", "11", T),
    ("NumericGreaterThan", "10", "10", F),
    ("NumericGreaterThanEquals", "-1.5", "-1.5", T),
    ("NumericGreaterThanEquals", "10", "9", F),
    ("NumericLessThan", "10", MISSING, F),
    # dates: ISO 8601 (with or without offset, date only) and epoch seconds
    ("DateEquals", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", T),
    ("DateEquals", "1704067200", "2024-01-01T00:00:00Z", T),
    ("DateEquals", "2024-01-01T00:00:00Z", 1704067200, T),
    ("DateEquals", "2024-01-01", "2024-01-01T00:00:00", T),
    ("DateEquals", "2024-01-01", "2024-01-02", F),
    ("DateEquals", "2024-01-01", "soon", F),
    ("DateNotEquals", "2024-01-01", "2024-01-02", T),
    ("DateNotEquals", "2024-01-01", "2024-01-01T00:00:00Z", F),
    ("DateLessThan", "2024-01-01T00:00:00Z", "2023-12-31T23:59:59Z", T),
    ("DateLessThan", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", F),
    ("DateLessThanEquals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", T),
    ("DateLessThanEquals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", F),
    ("DateGreaterThan", "2024-01-01T00:00:00Z", "1704067201", T),
    ("DateGreaterThan", "2024-01-01T00:00:00Z", "1704067200", F),
    ("DateGreaterThanEquals", "1704067200.5", "2024-01-01T00:00:00.500Z", T),
    ("DateGreaterThanEquals", "2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z", F),
    # booleans
    ("Bool", "true", True, T),
    ("Bool", "true", "true", T),
    ("Bool", "TRUE", "True", T),
    ("Bool", "false", True, F),
    ("Bool", "false", False, T),
    ("Bool", "true", "yes", F),
    ("Bool", "true", MISSING, F),
    # binary
    ("BinaryEquals", b64(b"\x00\x01secret"), b64(b"\x00\x01secret"), T),
    ("BinaryEquals", b64(b"abc"), b64(b"abd"), F),
    ("BinaryEquals", b64(b"abc"), "not base64!", F),
    # IP addresses
    ("IpAddress", "192.0.2.0/24", "192.0.2.55", T),
    ("IpAddress", "192.0.2.0/24", "198.51.100.1", F),
    ("IpAddress", ["198.51.100.0/24", "192.0.2.0/24"], "192.0.2.1", T),
    ("IpAddress", "203.0.113.7", "203.0.113.7", T),
    ("IpAddress", "2001:db8::/32", "2001:db8:1::1", T),
    ("IpAddress", "2001:db8::/32", "192.0.2.1", F),
    ("IpAddress", "192.0.2.0/24", "not an ip", F),
    ("NotIpAddress", "192.0.2.0/24", "198.51.100.1", T),
    ("NotIpAddress", ["192.0.2.0/24", "2001:db8::/32"], "2001:db8::5", F),
    ("NotIpAddress", "192.0.2.0/24", MISSING, T),
    # ARNs: each of the six parts separately
    ("ArnEquals", "arn:aws:iam::111122223333:user/*", "arn:aws:iam::111122223333:user/bob", T),
    ("ArnEquals", "arn:aws:iam::111122223333:user/*", "arn:aws:iam::444455556666:user/bob", F),
    ("ArnLike", "arn:aws:logs:*:111122223333:log-group:*", "arn:aws:logs:us-west-2:111122223333:log-group:/a:b", T),
    ("ArnLike", "arn:aws:kms:us-*:111122223333:key/*", "arn:aws:kms:us-west-2:111122223333:key/k", T),
    ("ArnLike", "arn:aws:kms:us-*:111122223333:key/*", "arn:aws:kms:us-west-2:999:111122223333:key/k", F),
    ("ArnLike", "arn:aws:kms:*", "arn:aws:kms:us-west-2:111122223333:key/k", T),  # not six parts: whole string
    ("ArnLike", "arn:aws:iam::111122223333:root", "not-an-arn", F),
    ("ArnNotEquals", "arn:aws:iam::111122223333:*", "arn:aws:iam::444455556666:user/bob", T),
    ("ArnNotLike", "arn:aws:iam::111122223333:*", "arn:aws:iam::111122223333:user/bob", F),
    ("ArnNotLike", "arn:aws:iam::111122223333:*", MISSING, T),
    # Null: is the key absent?
    ("Null", "true", MISSING, T),
    ("Null", "true", None, T),
    ("Null", "true", [], T),
    ("Null", "true", "x", F),
    ("Null", "false", "x", T),
    ("Null", "false", MISSING, F),
    ("Null", ["true", "false"], "x", T),
]


@pytest.mark.parametrize(("op", "policy", "value", "expected"), CASES)
def test_operator(op: str, policy: str | list[str], value: Any, expected: bool) -> None:
    assert holds(op, policy, value) is expected


def test_string_like_wildcards_do_not_differ_from_arn_like_outside_arns() -> None:
    value = "arn:aws:kms:us-west-2:999:111122223333:key/k"
    assert holds("StringLike", "arn:aws:kms:us-*:111122223333:key/*", value)
    assert not holds("ArnLike", "arn:aws:kms:us-*:111122223333:key/*", value)


def test_every_documented_operator_is_known() -> None:
    names = {case[0] for case in CASES}
    assert len(names) == 27  # 6 string, 6 numeric, 6 date, Bool, Binary, 2 IP, 4 ARN, Null


# ---- IfExists --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("StringEqualsIfExists", "abc", MISSING, T),
        ("StringEqualsIfExists", "abc", None, T),
        ("StringEqualsIfExists", "abc", "abc", T),
        ("StringEqualsIfExists", "abc", "xyz", F),
        ("StringNotEqualsIfExists", "abc", "abc", F),
        ("NumericLessThanIfExists", "10", MISSING, T),
        ("NumericLessThanIfExists", "10", "11", F),
        ("BoolIfExists", "true", MISSING, T),
        ("BoolIfExists", "true", False, F),
        ("IpAddressIfExists", "192.0.2.0/24", MISSING, T),
        ("ArnLikeIfExists", "arn:aws:iam::111122223333:*", "arn:aws:iam::444455556666:root", F),
        ("DateLessThanIfExists", "2024-01-01", MISSING, T),
    ],
)
def test_if_exists(op: str, policy: str, value: Any, expected: bool) -> None:
    assert holds(op, policy, value) is expected


# ---- set qualifiers and multivalued keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "policy", "value", "expected"),
    [
        ("ForAllValues:StringEquals", ["a", "b"], ["a"], T),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], T),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], F),
        ("ForAllValues:StringEquals", ["a", "b"], MISSING, T),  # true on a missing key
        ("ForAllValues:StringEquals", ["a", "b"], [], T),  # and on an empty one
        ("ForAllValues:StringEquals", ["a", "b"], "a", T),  # a single value is a one-element set
        ("ForAllValues:StringEquals", ["a", "b"], "c", F),
        ("ForAnyValue:StringEquals", "a", ["b", "a"], T),
        ("ForAnyValue:StringEquals", "a", ["b", "c"], F),
        ("ForAnyValue:StringEquals", "a", MISSING, F),  # false on a missing key
        ("ForAnyValue:StringEquals", "a", [], F),
        ("ForAnyValue:StringEqualsIfExists", "a", MISSING, T),
        ("ForAnyValue:StringLike", "Proj*", ["Department", "Project"], T),
        ("ForAllValues:StringLike", "Proj*", ["Department", "Project"], F),
        # negated operators under a qualifier apply the negation per request value
        ("ForAllValues:StringNotEquals", ["a", "b"], ["c", "d"], T),
        ("ForAllValues:StringNotEquals", ["a", "b"], ["c", "a"], F),
        ("ForAllValues:StringNotEquals", ["a", "b"], MISSING, T),
        ("ForAnyValue:StringNotEquals", "a", ["a", "c"], T),
        ("ForAnyValue:StringNotEquals", "a", ["a"], F),
        ("ForAnyValue:StringNotEquals", "a", MISSING, F),
        ("ForAnyValue:NumericGreaterThan", "5", ["1", "2", "6"], T),
        ("ForAllValues:NumericGreaterThan", "5", ["1", "2", "6"], F),
        ("ForAnyValue:IpAddress", "10.0.0.0/8", ["192.0.2.1", "10.1.2.3"], T),
        # a plain operator on a multivalued key: positive = any value matches, negated = none does
        ("StringEquals", "a", ["a", "b"], T),
        ("StringEquals", "z", ["a", "b"], F),
        ("StringNotEquals", "a", ["a", "b"], F),
        ("StringNotEquals", ["y", "z"], ["a", "b"], T),
        ("StringEquals", "a", [], F),  # an empty list is an absent key
        ("StringNotEquals", "a", [], T),
    ],
)
def test_set_qualifiers(op: str, policy: str | list[str], value: Any, expected: bool) -> None:
    assert holds(op, policy, value) is expected


def test_several_keys_under_one_operator_and_several_operators_are_anded() -> None:
    text = document_text(
        statement(
            principal="*",
            Condition={
                "StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": "s3.us-west-2.amazonaws.com"},
                "Bool": {"aws:SecureTransport": "true"},
            },
        )
    )
    conditions = parse_policy(text).statements[0].conditions
    full: dict[str, ContextValue] = {
        "kms:calleraccount": ACCOUNT,
        "kms:viaservice": "s3.us-west-2.amazonaws.com",
        "aws:securetransport": True,
    }
    assert conditions_hold(conditions, full, variables=True)
    for missing in full:
        partial = {k: v for k, v in full.items() if k != missing}
        assert not conditions_hold(conditions, partial, variables=True)
    assert conditions_hold((), {}, variables=True)


def test_condition_key_names_are_case_insensitive_values_are_not() -> None:
    text = document_text(
        statement(principal="*", Condition={"StringEquals": {"KMS:EncryptionContext:Dept": "Finance"}})
    )
    conditions = parse_policy(text).statements[0].conditions
    ctx = request(user("alice"), context={"kms:encryptioncontext:DEPT": "Finance"}).context
    assert conditions_hold(conditions, ctx, variables=True)
    ctx = request(user("alice"), context={"kms:EncryptionContext:Dept": "finance"}).context
    assert not conditions_hold(conditions, ctx, variables=True)


# ---- operator names -----------------------------------------------------------------------------------------


def test_parse_operator_fields() -> None:
    op = parse_operator("ForAnyValue:StringLikeIfExists")
    assert (op.base, op.qualifier, op.if_exists, op.negated) == ("StringLike", SetQualifier.FOR_ANY_VALUE, True, False)
    op = parse_operator("stringnotequals")
    assert (op.name, op.base, op.qualifier, op.if_exists, op.negated) == (
        "stringnotequals",
        "StringNotEquals",
        None,
        False,
        True,
    )
    assert parse_operator("forallvalues:ArnNotLike").qualifier is SetQualifier.FOR_ALL_VALUES


@pytest.mark.parametrize(
    "name", ["StringEqualz", "IfExists", "ForSomeValues:StringEquals", "ForAnyValue:", "ForAnyValue:Null", "Nul"]
)
def test_unknown_operators(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid Condition type"):
        parse_operator(name)


# ---- policy variables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "policy", "value", "ctx", "expected"),
    [
        ("StringEquals", "${aws:username}", "alice", {"aws__username": "alice"}, T),
        ("StringEquals", "${aws:username}", "bob", {"aws__username": "alice"}, F),
        ("StringEquals", "${AWS:UserName}", "alice", {"aws__username": "alice"}, T),
        ("StringEquals", "home/${aws:userid}/x", "home/AIDAEXAMPLE/x", {"aws__userid": "AIDAEXAMPLE"}, T),
        ("StringEquals", "${aws:PrincipalTag/team}", "blue", {"aws__principaltag/team": "blue"}, T),
        ("StringEquals", "${aws:PrincipalTag/team, 'none'}", "none", {}, T),
        ("StringEquals", "${aws:PrincipalTag/team,'none'}", "blue", {"aws__principaltag/team": "blue"}, T),
        ("StringEquals", "${ aws:PrincipalTag/team , 'it''s' }", "it's", {}, T),
        ("StringEquals", "${aws:SecureTransport}", "true", {"aws__securetransport": True}, T),
        ("StringEquals", "${$}{aws:username}", "${aws:username}", {"aws__username": "alice"}, T),
        ("StringLike", "a${*}b", "a*b", {}, T),
        ("StringLike", "a${*}b", "axxb", {}, F),
        ("StringLike", "a${?}b", "a?b", {}, T),
        ("StringLike", "a${?}b", "axb", {}, F),
        ("StringLike", "${aws:username}-*", "alice-1", {"aws__username": "alice"}, T),
        ("StringLike", "${aws:PrincipalTag/p}", "anything", {"aws__principaltag/p": "*"}, F),  # substituted = literal
        ("StringLike", "${aws:PrincipalTag/p}", "*", {"aws__principaltag/p": "*"}, T),
        ("ArnLike", "arn:aws:iam::${aws:PrincipalAccount}:user/*", "arn:aws:iam::111:user/x", {}, F),
        (
            "ArnLike",
            "arn:aws:iam::${kms:CallerAccount}:user/*",
            "arn:aws:iam::111:user/x",
            {"kms__calleraccount": "111"},
            T,
        ),
        # unresolvable: an absent key without a default, a multivalued key, a malformed reference
        ("StringEquals", "${aws:username}", "", {}, F),
        ("StringNotEquals", "${aws:username}", "bob", {}, F),
        ("StringEquals", "${kms:EncryptionContextKeys}", "a", {"kms__encryptioncontextkeys": ["a"]}, F),
        ("StringEquals", "${aws:username", "${aws:username", {"aws__username": "alice"}, F),
        ("StringEquals", "${aws:username, none}", "none", {}, F),
        ("StringEquals", "${}", "", {}, F),
        ("StringEquals", ["${aws:username}", "admin"], "admin", {}, T),  # the other value still matches
    ],
)
def test_policy_variables(op: str, policy: str | list[str], value: str, ctx: dict[str, Any], expected: bool) -> None:
    assert holds(op, policy, value, **ctx) is expected


def test_variables_are_literal_text_in_legacy_documents() -> None:
    assert holds("StringEquals", "${aws:username}", "${aws:username}", variables=False, aws__username="alice")
    assert not holds("StringEquals", "${aws:username}", "alice", variables=False, aws__username="alice")


# ---- keys held under several spellings (issue 15, item 12) ----------------------------------------------------


def _colliding(first: tuple[str, str], second: tuple[str, str]) -> dict[str, ContextValue]:
    """The request context of a key tagged with ``first`` then ``second`` (tag keys differing only in case)."""
    built = folded_pairs("aws:ResourceTag/", [first, second])
    return dict(request(user("alice"), context=built).context)


@pytest.mark.parametrize("order", [0, 1])
def test_folded_pairs_does_not_depend_on_insertion_order(order: int) -> None:
    pairs = [("Env", "prod"), ("env", "dev")]
    built = folded_pairs("aws:ResourceTag/", pairs if order == 0 else pairs[::-1])
    assert built == {"aws:ResourceTag/Env": ["prod", "dev"]}
    assert isinstance(built["aws:ResourceTag/Env"], Conflicting)
    assert folded_pairs("p/", [("Env", "prod"), ("team", "a")]) == {"p/Env": "prod", "p/team": "a"}


@pytest.mark.parametrize("pairs", [(("Env", "prod"), ("env", "dev")), (("env", "dev"), ("Env", "prod"))])
@pytest.mark.parametrize(
    "op, values",
    [
        ("StringEquals", ("dev",)),
        ("StringEquals", ("prod",)),
        ("StringNotEquals", ("prod",)),
        ("StringLike", ("*",)),
        ("ForAnyValue:StringEquals", ("dev",)),
        ("ForAllValues:StringEquals", ("dev", "prod")),
        ("StringEqualsIfExists", ("dev",)),
        ("Null", ("false",)),
    ],
)
def test_a_tag_key_spelled_twice_never_allows_and_always_denies(
    pairs: tuple[tuple[str, str], tuple[str, str]], op: str, values: tuple[str, ...]
) -> None:
    """Tag keys are case-sensitive (``Env`` and ``env`` coexist); condition key names are not. No single
    value is picked: any test of the key fails in an Allow and holds in a Deny, whichever tag came first."""
    context = _colliding(*pairs)
    cond = Condition(parse_operator(op), "aws:resourcetag/env", values)
    assert condition_holds(cond, context, variables=True, deny=False) is False
    assert condition_holds(cond, context, variables=True, deny=True) is True


def test_a_policy_variable_naming_a_key_spelled_twice_counts_too() -> None:
    context = _colliding(("Team", "a"), ("team", "b"))
    context["aws:principaltag/team"] = "a"
    cond = Condition(parse_operator("StringEquals"), "aws:principaltag/team", ("${aws:ResourceTag/TEAM}",))
    assert condition_holds(cond, context, variables=True, deny=False) is False
    assert condition_holds(cond, context, variables=True, deny=True) is True
    unrelated = Condition(parse_operator("StringEquals"), "aws:principaltag/team", ("a",))
    assert condition_holds(unrelated, context, variables=True, deny=False) is True
