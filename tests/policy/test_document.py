"""Parsing and validating policy documents: real-world policies pass, each malformed shape is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms.errors import MalformedPolicyDocumentException
from openkms.policy.document import (
    KEY_POLICY_MAX_BYTES,
    MANAGED_POLICY_MAX_CHARS,
    USER_INLINE_POLICIES_MAX_CHARS,
    Effect,
    PolicyKind,
    Principals,
    parse_policy,
    policy_size,
)

from .builders import ACCOUNT, FIXTURES, ROOT, document_text, fixture, key_policy, statement, user

KEY_FIXTURES = sorted(p.name for p in FIXTURES.glob("key_*.json"))
IDENTITY_FIXTURES = sorted(p.name for p in FIXTURES.glob("identity_*.json"))


def _refused(text: str, kind: PolicyKind = "key", **kwargs: Any) -> str:
    with pytest.raises(MalformedPolicyDocumentException) as caught:
        parse_policy(text, kind, **kwargs)
    assert caught.value.code == "MalformedPolicyDocumentException"
    return caught.value.message


def _key(*statements: dict[str, Any]) -> str:
    return document_text(*statements)


# ---- accepted --------------------------------------------------------------------------------------------


def test_fixture_sets_are_present() -> None:
    assert len(KEY_FIXTURES) >= 8 and len(IDENTITY_FIXTURES) >= 2


@pytest.mark.parametrize("name", KEY_FIXTURES)
def test_real_world_key_policies_are_accepted(name: str) -> None:
    document = parse_policy(fixture(name), "key")
    assert document.kind == "key" and document.statements


@pytest.mark.parametrize("name", IDENTITY_FIXTURES)
def test_real_world_identity_policies_are_accepted(name: str) -> None:
    document = parse_policy(fixture(name), "identity")
    assert document.kind == "identity" and all(s.principal is None for s in document.statements)


def test_identity_policies_keep_other_services_actions() -> None:
    document = parse_policy(fixture("identity_mixed_services.json"), "identity")
    assert document.statements[0].actions == ("s3:getobject", "s3:putobject")
    assert document.statements[2].not_actions == ("kms:schedulekeydeletion", "kms:putkeypolicy")


def test_default_key_policy_structure() -> None:
    document = parse_policy(fixture("key_default.json"))
    assert document.version == "2012-10-17" and document.id == "key-default-1" and document.variables
    (only,) = document.statements
    assert only.sid == "Enable IAM User Permissions"
    assert only.effect is Effect.ALLOW
    assert only.principal == Principals(aws=(ROOT,))
    assert only.actions == ("kms:*",) and only.resources == ("*",)
    assert only.not_principal is None and only.not_actions is None and only.not_resources is None


def test_a_bare_account_id_means_the_account_root() -> None:
    document = key_policy(statement(principal={"AWS": [ACCOUNT, user("alice")]}))
    assert document.statements[0].principal == Principals(aws=(ROOT, user("alice")))


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*", "arn:aws:iam::111122223333:user/a"]}])
def test_everyone_principals(principal: object) -> None:
    principals = key_policy(statement(principal=principal)).statements[0].principal
    assert principals is not None and principals.everyone


def test_service_federated_and_role_principals_are_kept() -> None:
    principal = {
        "Service": ["logs.us-west-2.amazonaws.com", "ec2.amazonaws.com"],
        "Federated": "cognito-identity.amazonaws.com",
        "AWS": ["arn:aws:iam::111122223333:role/App", "arn:aws:sts::111122223333:assumed-role/App/session-1"],
    }
    principals = key_policy(statement(principal=principal)).statements[0].principal
    assert principals is not None
    assert principals.services == ("logs.us-west-2.amazonaws.com", "ec2.amazonaws.com")
    assert principals.federated == ("cognito-identity.amazonaws.com",)
    assert len(principals.aws) == 2 and not principals.everyone


def test_a_single_statement_object_is_accepted() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": statement(principal={"AWS": ROOT})})
    assert len(parse_policy(text).statements) == 1


def test_version_is_optional_and_legacy_turns_variables_off() -> None:
    assert parse_policy(document_text(statement(principal="*"), version=None)).variables is False
    assert parse_policy(document_text(statement(principal="*"), version="2008-10-17")).variables is False


def test_condition_values_are_kept_as_text_and_keys_lower_cased() -> None:
    text = _key(
        statement(
            principal="*",
            Condition={
                "Bool": {"aws:SecureTransport": False},
                "NumericLessThan": {"kms:Foo": 10, "kms:Bar": 1.5},
                "StringEquals": {"kms:EncryptionContext:Dept": ["IT", "HR"]},
            },
        )
    )
    conditions = parse_policy(text).statements[0].conditions
    assert [(c.operator.base, c.key, c.values) for c in conditions] == [
        ("Bool", "aws:securetransport", ("false",)),
        ("NumericLessThan", "kms:foo", ("10",)),
        ("NumericLessThan", "kms:bar", ("1.5",)),
        ("StringEquals", "kms:encryptioncontext:dept", ("IT", "HR")),
    ]


def test_key_policy_sid_may_hold_spaces_and_repeat() -> None:
    s = statement(principal="*", Sid="Allow use of the key")
    assert len(parse_policy(_key(s, s)).statements) == 2


def test_terraform_empty_sid_is_accepted_in_both_kinds() -> None:
    parse_policy(_key(statement(principal="*", Sid="")))
    parse_policy(document_text(statement(Sid=""), statement(Sid="")), "identity")


def test_latin1_characters_are_allowed() -> None:
    parse_policy(_key(statement(principal="*", Sid="Clé de chiffrement ©")).replace("\\u00e9", "é"))


# ---- size ------------------------------------------------------------------------------------------------


def _padded_key_policy(size: int) -> str:
    text = _key(statement(principal="*", Sid=""))
    return text.replace('"Sid": ""', '"Sid": "' + "x" * (size - len(text)) + '"')


def test_key_policy_size_limit_is_32768_bytes() -> None:
    at_limit = _padded_key_policy(KEY_POLICY_MAX_BYTES)
    assert policy_size(at_limit, "key") == KEY_POLICY_MAX_BYTES
    parse_policy(at_limit)
    message = _refused(_padded_key_policy(KEY_POLICY_MAX_BYTES + 1))
    assert message == "The policy document exceeds the maximum size of 32768 bytes."


def test_key_policy_size_counts_utf8_bytes() -> None:
    text = _key(statement(principal="*", Sid="é")).replace("\\u00e9", "é")
    assert policy_size(text, "key") == len(text) + 1


def test_identity_policy_size_counts_non_whitespace_characters() -> None:
    base = document_text(statement(Sid="A"))
    padding = MANAGED_POLICY_MAX_CHARS - policy_size(base, "identity")
    at_limit = base.replace('"Sid": "A"', '"Sid": "A' + "b" * padding + '"')
    assert policy_size(at_limit, "identity") == MANAGED_POLICY_MAX_CHARS
    parse_policy(at_limit + " " * 5000, "identity")  # whitespace is free
    over = at_limit.replace('"Sid": "A', '"Sid": "AB')
    message = _refused(over, "identity")
    assert message == "The policy document exceeds the maximum size of 6144 non-whitespace characters."


def test_identity_size_limit_can_be_lowered_to_the_user_inline_aggregate() -> None:
    text = document_text(statement(Sid="A" * 2100))
    parse_policy(text, "identity")
    assert "2048" in _refused(text, "identity", max_size=USER_INLINE_POLICIES_MAX_CHARS)


# ---- refused ---------------------------------------------------------------------------------------------

REFUSALS: list[tuple[str, str, str]] = [
    ("not json", '{"Statement": [', "Syntax errors in policy: the document is not valid JSON."),
    ("NaN", '{"Statement": [], "Id": NaN}', "Syntax errors in policy: the document is not valid JSON."),
    (
        "duplicate element",
        '{"Version": "2012-10-17", "Version": "2008-10-17", "Statement": []}',
        "Syntax errors in policy: the element Version appears more than once in one object.",
    ),
    (
        "duplicate statement element",
        '{"Statement": [{"Effect": "Allow", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}',
        "Syntax errors in policy: the element Effect appears more than once in one object.",
    ),
    ("array document", "[]", "Syntax errors in policy: the document must be a JSON object."),
    ("string document", '"policy"', "Syntax errors in policy: the document must be a JSON object."),
    ("missing Statement", '{"Version": "2012-10-17"}', "Missing required field Statement."),
    (
        "unknown top-level element",
        '{"Version": "2012-10-17", "Statements": []}',
        "Syntax errors in policy: unknown element Statements.",
    ),
    (
        "bad version",
        '{"Version": "2020-01-01", "Statement": []}',
        "The policy version 2020-01-01 is not supported. Use 2012-10-17.",
    ),
    (
        "empty statement list",
        '{"Statement": []}',
        "Syntax errors in policy: Statement must be a statement object or a non-empty list of them.",
    ),
    ("non-string Id", '{"Id": 5, "Statement": []}', "Syntax errors in policy: Id must be a string."),
    (
        "statement not an object",
        '{"Statement": ["x"]}',
        "Syntax errors in policy: each statement must be a JSON object.",
    ),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in REFUSALS], ids=[n for n, _, _ in REFUSALS])
def test_document_level_refusals(text: str, message: str) -> None:
    assert _refused(text) == message


STATEMENT_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown element",
        statement(principal="*", Principals="*"),
        "Syntax errors in policy: unknown statement element Principals.",
    ),
    ("missing Effect", {"Principal": "*", "Action": "kms:*", "Resource": "*"}, "Missing required field Effect."),
    ("lower-case effect", statement("allow", principal="*"), "Invalid effect: allow. Use Allow or Deny."),
    ("Effect not a string", statement(True, principal="*"), "Invalid effect: True. Use Allow or Deny."),
    (
        "Action and NotAction",
        statement(principal="*", NotAction="kms:Decrypt"),
        "Syntax errors in policy: a statement cannot contain both Action and NotAction.",
    ),
    ("no action", statement(principal="*", action=None), "Policy statement must contain actions."),
    ("no resource", statement(principal="*", resource=None), "Policy statement must contain resources."),
    (
        "Resource and NotResource",
        statement(principal="*", NotResource="*"),
        "Syntax errors in policy: a statement cannot contain both Resource and NotResource.",
    ),
    ("no principal in a key policy", statement(), "Missing required field Principal."),
    (
        "Principal and NotPrincipal",
        statement(principal="*", NotPrincipal={"AWS": ACCOUNT}),
        "Syntax errors in policy: a statement cannot contain both Principal and NotPrincipal.",
    ),
    (
        "non-KMS action in a key policy",
        statement(principal="*", action=["kms:Encrypt", "s3:GetObject"]),
        "A key policy can allow or deny only KMS actions (kms:...), not s3:GetObject.",
    ),
    (
        "action without a vendor",
        statement(principal="*", action="Encrypt"),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Found: Encrypt",
    ),
    (
        "action with two colons",
        statement(principal="*", action="kms:Encrypt:All"),
        "Actions/Condition can contain only one colon. Found: kms:Encrypt:All",
    ),
    ("action with a space", statement(principal="*", action="kms:En crypt"), "Policy contains an invalid action"),
    (
        "non-string action",
        statement(principal="*", action=5),
        "Syntax errors in policy: Action must be a string or a list of strings.",
    ),
    (
        "non-string action in a list",
        statement(principal="*", action=["kms:Encrypt", 5]),
        "Syntax errors in policy: Action must be a string or a list of strings.",
    ),
    ("empty action list", statement(principal="*", action=[]), "Syntax errors in policy: Action is an empty list."),
    (
        "object resource",
        statement(principal="*", resource={"arn": "*"}),
        "Syntax errors in policy: Resource must be a string or a list of strings.",
    ),
    (
        "resource not an ARN",
        statement(principal="*", resource="key/1234"),
        'Resource key/1234 must be in ARN format or "*".',
    ),
    ("non-string Sid", statement(principal="*", Sid=7), "Syntax errors in policy: Sid must be a string."),
    (
        "condition not an object",
        statement(principal="*", Condition=["StringEquals"]),
        "Syntax errors in policy: Condition must be an object of operators.",
    ),
    (
        "unknown condition operator",
        statement(principal="*", Condition={"StringEqualz": {"kms:CallerAccount": ACCOUNT}}),
        "Invalid Condition type: StringEqualz.",
    ),
    (
        "unknown set qualifier",
        statement(principal="*", Condition={"ForSomeValues:StringEquals": {"kms:EncryptionContextKeys": "a"}}),
        "Invalid Condition type: ForSomeValues:StringEquals.",
    ),
    (
        "Null with IfExists",
        statement(principal="*", Condition={"NullIfExists": {"kms:EncryptionContextKeys": "true"}}),
        "Invalid Condition type: NullIfExists. Null takes neither IfExists nor a set qualifier.",
    ),
    (
        "empty condition value list",
        statement(principal="*", Condition={"StringEquals": {"kms:CallerAccount": []}}),
        "Syntax errors in policy: condition StringEquals on key kms:CallerAccount has an empty list of values.",
    ),
    (
        "empty operator block",
        statement(principal="*", Condition={"StringEquals": {}}),
        "Syntax errors in policy: condition StringEquals must map condition keys to values.",
    ),
    (
        "condition key without a vendor",
        statement(principal="*", Condition={"StringEquals": {"CallerAccount": ACCOUNT}}),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Found: CallerAccount",
    ),
    (
        "nested condition value",
        statement(principal="*", Condition={"StringEquals": {"kms:CallerAccount": {"x": "y"}}}),
        "Syntax errors in policy: the values of condition StringEquals on key kms:CallerAccount must be strings.",
    ),
    (
        "null condition value",
        statement(principal="*", Condition={"StringEquals": {"kms:CallerAccount": [None]}}),
        "Syntax errors in policy: the values of condition StringEquals on key kms:CallerAccount must be strings.",
    ),
    (
        "bad number",
        statement(principal="*", Condition={"NumericLessThan": {"kms:X": "ten"}}),
        "Invalid value 'ten' for condition NumericLessThan on key kms:X.",
    ),
    (
        "bad date",
        statement(principal="*", Condition={"DateLessThan": {"aws:CurrentTime": "yesterday"}}),
        "Invalid value 'yesterday' for condition DateLessThan on key aws:CurrentTime.",
    ),
    (
        "bad CIDR",
        statement(principal="*", Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}),
        "Invalid value '300.1.1.1/8' for condition IpAddress on key aws:SourceIp.",
    ),
    (
        "bad boolean",
        statement(principal="*", Condition={"Bool": {"aws:SecureTransport": "yes"}}),
        "Invalid value 'yes' for condition Bool on key aws:SecureTransport.",
    ),
    (
        "bad base64",
        statement(principal="*", Condition={"BinaryEquals": {"kms:X": "!!"}}),
        "Invalid value '!!' for condition BinaryEquals on key kms:X.",
    ),
]


@pytest.mark.parametrize(
    ("raw", "message"), [(s, m) for _, s, m in STATEMENT_REFUSALS], ids=[n for n, _, _ in STATEMENT_REFUSALS]
)
def test_statement_refusals(raw: dict[str, Any], message: str) -> None:
    assert _refused(_key(raw)).startswith(message)


INVALID_PRINCIPALS: list[object] = [
    "arn:aws:iam::111122223333:user/alice",  # a bare string other than "*"
    {},
    {"AWS": 111122223333},
    {"AWS": []},
    {"Users": "arn:aws:iam::111122223333:user/alice"},
    {"AWS": "arn:aws:iam::111122223333:group/Admins"},  # groups are not principals
    {"AWS": "arn:aws:iam::*:root"},
    {"AWS": "arn:aws:iam::111122223333:user/*"},  # no wildcards inside a principal ARN
    {"AWS": "arn:aws:iam::111122223333:role/Admin?"},
    {"AWS": "arn:aws:iam::11112222333:root"},
    {"AWS": "alice"},
    {"AWS": "arn:aws:s3:::bucket"},
    {"Service": "Not A Service"},
    {"Federated": " "},
]


@pytest.mark.parametrize("principal", INVALID_PRINCIPALS)
def test_invalid_principals(principal: object) -> None:
    message = _refused(_key(statement(principal=principal)))
    assert message in (
        "Policy contains a statement with one or more invalid principals.",
        "Syntax errors in policy: Principal AWS must be a string or a list of strings.",
        "Syntax errors in policy: Principal AWS is an empty list.",
    )


def test_invalid_principal_message_is_awss() -> None:
    assert _refused(_key(statement(principal={"AWS": "bob"}))) == (
        "Policy contains a statement with one or more invalid principals."
    )


def test_not_principal_is_validated_too() -> None:
    raw = statement("Deny", NotPrincipal={"AWS": "arn:aws:iam::111122223333:group/G"})
    assert _refused(_key(raw)) == "Policy contains a statement with one or more invalid principals."


def test_identity_policies_refuse_principals() -> None:
    for element in ("Principal", "NotPrincipal"):
        raw = statement(**{element: {"AWS": ACCOUNT}})
        assert _refused(document_text(raw), "identity") == "Policy document should not specify a principal."


def test_identity_policies_require_resources_too() -> None:
    assert _refused(document_text(statement(resource=None)), "identity") == "Policy statement must contain resources."


def test_identity_sids_are_alphanumeric_and_unique() -> None:
    assert _refused(document_text(statement(Sid="Use the key")), "identity") == (
        "Statement IDs (SID) must be alpha-numeric."
    )
    assert _refused(document_text(statement(Sid="A"), statement(Sid="A")), "identity") == (
        "Statement IDs (SID) in a single policy must be unique."
    )


@pytest.mark.parametrize(("char", "kind"), [("\u0001", "key"), ("\u0085", "key"), ("\u2028", "identity")])
def test_characters_outside_the_allowed_set_are_refused(char: str, kind: PolicyKind) -> None:
    raw = statement(principal="*") if kind == "key" else statement()
    text = document_text(raw).replace('"Effect"', char + '"Effect"')
    assert _refused(text, kind) == (f"The policy document contains a character that is not allowed: U+{ord(char):04X}.")


def test_identity_policies_allow_latin1_controls_key_policies_do_not() -> None:
    text = document_text(statement(resource="arn:aws:s3:::bucket/x")).replace("/x", "/\u0085")
    parse_policy(text, "identity")
    key_text = document_text(statement(principal="*", resource="arn:aws:s3:::bucket/x")).replace("/x", "/\u0085")
    assert _refused(key_text) == "The policy document contains a character that is not allowed: U+0085."
