"""The policy lockout safety check: the caller must keep kms:PutKeyPolicy, directly or via its account."""

from __future__ import annotations

import pytest

from openkms import ids
from openkms.errors import MalformedPolicyDocumentException
from openkms.policy.lockout import LOCKOUT_MESSAGE, ensure_no_lockout, would_lock_out

from .builders import ACCOUNT, KEY_ARN, OTHER_ACCOUNT, OTHER_KEY_ARN, ROOT, fixture_policy, key_policy, statement, user

ALICE, BOB = user("alice"), user("bob")


def test_default_policy_keeps_root_and_account_users() -> None:
    default = fixture_policy("key_default.json")
    assert not would_lock_out(default, ROOT, ACCOUNT)
    assert not would_lock_out(default, BOB, ACCOUNT)  # delegated to the account: enough


def test_default_policy_of_another_account_locks_out() -> None:
    other = user("carol", OTHER_ACCOUNT)
    assert would_lock_out(fixture_policy("key_default.json"), other, OTHER_ACCOUNT)


def test_a_policy_for_someone_else_locks_the_caller_out() -> None:
    policy = key_policy(statement(principal={"AWS": ALICE}))
    assert would_lock_out(policy, BOB, ACCOUNT)
    assert would_lock_out(policy, ROOT, ACCOUNT)
    assert not would_lock_out(policy, ALICE, ACCOUNT)


def test_the_action_must_cover_put_key_policy() -> None:
    assert would_lock_out(key_policy(statement(principal={"AWS": ALICE}, action="kms:Encrypt")), ALICE, ACCOUNT)
    for action in ("kms:PutKeyPolicy", "kms:Put*", "KMS:putkeypolicy", "kms:*", "*"):
        assert not would_lock_out(key_policy(statement(principal={"AWS": ALICE}, action=action)), ALICE, ACCOUNT)
    not_action = key_policy(statement(principal={"AWS": ALICE}, action=None, NotAction="kms:PutKeyPolicy"))
    assert would_lock_out(not_action, ALICE, ACCOUNT)


def test_everyone_principal_keeps_the_caller() -> None:
    assert not would_lock_out(key_policy(statement(principal="*")), BOB, ACCOUNT)


def test_an_unconditional_deny_locks_out() -> None:
    policy = key_policy(statement(principal={"AWS": ROOT}), statement("Deny", principal="*", action="kms:PutKeyPolicy"))
    assert would_lock_out(policy, ROOT, ACCOUNT)
    assert would_lock_out(policy, BOB, ACCOUNT)


def test_conditions_are_given_the_benefit_of_the_doubt() -> None:
    conditional_deny = key_policy(
        statement(principal={"AWS": ROOT}),
        statement("Deny", principal="*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}}),
    )
    assert not would_lock_out(conditional_deny, ROOT, ACCOUNT)
    conditional_allow = key_policy(
        statement(principal={"AWS": ALICE}, Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})
    )
    assert not would_lock_out(conditional_allow, ALICE, ACCOUNT)


def test_console_policy_keeps_its_administrators() -> None:
    console = fixture_policy("key_console.json")
    assert not would_lock_out(console, user("KeyAdmin"), ACCOUNT)
    assert not would_lock_out(console, user("KeyUser"), ACCOUNT)  # through the account root statement


def test_resources_are_checked_when_the_key_is_known() -> None:
    policy = key_policy(statement(principal={"AWS": ALICE}, resource=OTHER_KEY_ARN))
    assert would_lock_out(policy, ALICE, ACCOUNT, key_arn=KEY_ARN)
    assert not would_lock_out(policy, ALICE, ACCOUNT)  # CreateKey: the ARN is not known yet
    matching = key_policy(statement(principal={"AWS": ALICE}, resource=f"arn:aws:kms:*:{ACCOUNT}:key/*"))
    assert not would_lock_out(matching, ALICE, ACCOUNT, key_arn=KEY_ARN)
    never = key_policy(statement(principal={"AWS": ALICE}, resource=None, NotResource="*"))
    assert would_lock_out(never, ALICE, ACCOUNT)


def test_not_principal_allow() -> None:
    policy = key_policy(statement(NotPrincipal={"AWS": [ROOT, BOB]}))
    assert not would_lock_out(policy, ALICE, ACCOUNT)
    assert would_lock_out(policy, BOB, ACCOUNT)


def test_assumed_role_sessions_are_named_through_their_account() -> None:
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice"
    assert not would_lock_out(fixture_policy("key_default.json"), session, ACCOUNT)
    assert would_lock_out(key_policy(statement(principal={"AWS": ALICE})), session, ACCOUNT)


def test_ensure_no_lockout_raises_awss_error() -> None:
    policy = key_policy(statement(principal={"AWS": ALICE}))
    with pytest.raises(MalformedPolicyDocumentException) as caught:
        ensure_no_lockout(policy, BOB, ACCOUNT)
    assert caught.value.message == LOCKOUT_MESSAGE
    assert LOCKOUT_MESSAGE == "The new key policy will not allow you to update the key policy in the future."
    ensure_no_lockout(policy, ALICE, ACCOUNT, key_arn=ids.key_arn("us-west-2", ACCOUNT, "k"))
