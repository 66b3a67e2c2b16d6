"""docs/tests.md P-1: the engine against a small, obviously-correct reference evaluator, with hypothesis.

The reference knows only what it needs to: statements with an effect, a principal (in key policies), an action
pattern and an optional StringEquals condition on one encryption-context key; AWS's KMS rules written as plainly
as possible. Random policies and requests must get the same decision from both, and two properties are checked
on the engine directly: an explicit Deny that applies always wins, and removing an Allow never grants more.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.policy.evaluate import Decision, evaluate

from .builders import ACCOUNT, OTHER_ACCOUNT, ROOT, identity_policy, key_policy, request, statement, user

ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol", OTHER_ACCOUNT)
OTHER_ROOT = f"arn:aws:iam::{OTHER_ACCOUNT}:root"
ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:PutKeyPolicy"]
ACTION_PATTERNS = ["kms:*", "kms:Encrypt", "kms:Decrypt", "kms:De*", "kms:*Key*", "*"]


@dataclass(frozen=True)
class Rule:
    effect: str
    principal: str | None  # None in identity policies; "*", an account root or a user ARN in key policies
    action: str
    tenant: str | None  # StringEquals kms:EncryptionContext:tenant, when set

    def as_statement(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.tenant is not None:
            extra["Condition"] = {"StringEquals": {"kms:EncryptionContext:tenant": self.tenant}}
        principal = None if self.principal is None else ("*" if self.principal == "*" else {"AWS": self.principal})
        return statement(self.effect, principal=principal, action=self.action, **extra)


def _applies(rule: Rule, action: str, tenant: str | None) -> bool:
    return fnmatch.fnmatchcase(action.lower(), rule.action.lower()) and (rule.tenant is None or rule.tenant == tenant)


def _account_of(arn: str) -> str:
    return arn.split(":")[4]


def reference(key_rules: list[Rule], identity_rules: list[Rule], caller: str, action: str, tenant: str | None) -> bool:
    """AWS's KMS evaluation, as plainly as it can be written."""
    key_applicable = [r for r in key_rules if _applies(r, action, tenant)]
    ident_applicable = [r for r in identity_rules if _applies(r, action, tenant)]

    def names_caller(rule: Rule) -> bool:
        return rule.principal in ("*", caller)

    def names_account(rule: Rule) -> bool:
        return rule.principal == f"arn:aws:iam::{_account_of(caller)}:root"

    if any(r.effect == "Deny" and (names_caller(r) or names_account(r)) for r in key_applicable):
        return False
    if any(r.effect == "Deny" for r in ident_applicable):
        return False
    direct = any(r.effect == "Allow" and names_caller(r) for r in key_applicable)
    delegated = any(r.effect == "Allow" and names_account(r) for r in key_applicable)
    identity_allows = any(r.effect == "Allow" for r in ident_applicable)
    if _account_of(caller) == ACCOUNT:
        return direct or (delegated and identity_allows)
    return (direct or delegated) and identity_allows


tenants = st.sampled_from([None, "a", "b"])
key_rules = st.lists(
    st.builds(
        Rule,
        effect=st.sampled_from(["Allow", "Allow", "Deny"]),
        principal=st.sampled_from(["*", ROOT, OTHER_ROOT, ALICE, BOB, CAROL]),
        action=st.sampled_from(ACTION_PATTERNS),
        tenant=tenants,
    ),
    max_size=5,
)
identity_rules = st.lists(
    st.builds(
        Rule,
        effect=st.sampled_from(["Allow", "Allow", "Deny"]),
        principal=st.none(),
        action=st.sampled_from(ACTION_PATTERNS),
        tenant=tenants,
    ),
    max_size=3,
)
callers = st.sampled_from([ALICE, BOB, CAROL])


def _engine(keys: list[Rule], identity: list[Rule], caller: str, action: str, tenant: str | None) -> Decision:
    document = key_policy(*[r.as_statement() for r in keys]) if keys else key_policy(statement("Deny", "*", "kms:X"))
    identities = [identity_policy(*[r.as_statement() for r in identity])] if identity else []
    context = {} if tenant is None else {"kms:EncryptionContext:tenant": tenant}
    return evaluate(document, identities, request(caller, action, context=context)).decision


@settings(max_examples=1000, deadline=None)
@given(keys=key_rules, identity=identity_rules, caller=callers, action=st.sampled_from(ACTIONS), tenant=tenants)
def test_engine_agrees_with_the_reference(
    keys: list[Rule], identity: list[Rule], caller: str, action: str, tenant: str | None
) -> None:
    expected = reference(keys, identity, caller, action, tenant)
    assert (_engine(keys, identity, caller, action, tenant) is Decision.ALLOW) == expected


@settings(max_examples=400, deadline=None)
@given(keys=key_rules, identity=identity_rules, caller=callers, action=st.sampled_from(ACTIONS), tenant=tenants)
def test_an_applicable_explicit_deny_always_wins(
    keys: list[Rule], identity: list[Rule], caller: str, action: str, tenant: str | None
) -> None:
    deny = Rule("Deny", caller, action, None)
    assert _engine([*keys, deny], identity, caller, action, tenant) is Decision.EXPLICIT_DENY
    assert _engine(keys, [*identity, Rule("Deny", None, action, None)], caller, action, tenant) is (
        Decision.EXPLICIT_DENY
    )


@settings(max_examples=400, deadline=None)
@given(
    keys=key_rules,
    identity=identity_rules,
    caller=callers,
    action=st.sampled_from(ACTIONS),
    tenant=tenants,
    drop=st.integers(0, 7),
)
def test_removing_an_allow_never_grants_more(
    keys: list[Rule], identity: list[Rule], caller: str, action: str, tenant: str | None, drop: int
) -> None:
    before = _engine(keys, identity, caller, action, tenant) is Decision.ALLOW
    allows = [("key", i) for i, r in enumerate(keys) if r.effect == "Allow"]
    allows += [("identity", i) for i, r in enumerate(identity) if r.effect == "Allow"]
    if not allows:
        return
    where, index = allows[drop % len(allows)]
    fewer_keys = [r for i, r in enumerate(keys) if not (where == "key" and i == index)]
    fewer_identity = [r for i, r in enumerate(identity) if not (where == "identity" and i == index)]
    after = _engine(fewer_keys, fewer_identity, caller, action, tenant) is Decision.ALLOW
    assert before or not after
