"""The storage contract for issue 15's identity fixes, on both engines: migration 8 binds the users that existing
key policies and grants name to their unique ids; migration 9 makes user names unique ignoring case (IAM's
rule), without failing on a database that already holds two such names."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

import pytest

from openkms import identity
from openkms.clock import FrozenClock
from openkms.storage.ports import DuplicateError, Storage
from tests.storage.support import ACCOUNT, ALICE, LATEST, OTHER_ACCOUNT, Opener, grant, key, user

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
GHOST = f"arn:aws:iam::{ACCOUNT}:user/ghost"  # named, never created
OTHER_ALICE = f"arn:aws:iam::{OTHER_ACCOUNT}:user/alice"


def raw(storage: Storage, sql: str, *params: Any) -> None:
    """One statement outside the port (the columns of a newer schema do not exist yet)."""
    with storage.transaction() as tx:
        concrete = cast(Any, tx)
        concrete._run(sql.replace("?", "%s") if storage.dialect == "postgresql" else sql, params)


def key_policy(*arns: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": list(arns)}, "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_migration_8_binds_the_users_existing_policies_and_grants_name(engine: Opener) -> None:
    storage = engine()
    assert storage.migrate(target=7) == 7
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        tx.insert_user(user("alice"))
        tx.insert_user(user("bob"))  # named by nothing
        tx.insert_user(dataclasses.replace(user("alice", account=OTHER_ACCOUNT), user_id="AIDAOTHERALICE"))
    columns = (
        "key_id, account_id, region, arn, description, key_usage, key_spec, origin, key_manager, key_state, "
        "creation_date, multi_region, policy, current_version_id, rotation_enabled"
    )
    for key_id, policy in (("k1", key_policy(ROOT, ALICE, GHOST, OTHER_ALICE)), ("k2", key_policy(ROOT))):
        record = key(key_id, policy=policy)
        values = [getattr(record, name.strip()) for name in columns.split(",")]
        raw(storage, f"INSERT INTO keys ({columns}) VALUES ({', '.join('?' * len(values))})", *values)
    grant_columns = (
        "key_id, grant_id, account_id, grantee_principal, retiring_principal, operations, issuing_principal, "
        "creation_date, grant_token"
    )
    for grant_id, grantee, retiring in (("g1", ALICE, ROOT), ("g2", GHOST, ALICE), ("g3", ROOT, None)):
        values = ["k1", grant_id, ACCOUNT, grantee, retiring, '["Decrypt"]', ALICE, 1.0, f"token-{grant_id}"]
        raw(storage, f"INSERT INTO grants ({grant_columns}) VALUES ({', '.join('?' * len(values))})", *values)

    assert storage.migrate() == LATEST
    with storage.read() as tx:
        bound = tx.get_key("k1")
        assert bound is not None and bound.policy_principal_ids is not None
        assert json.loads(bound.policy_principal_ids) == {ALICE: user("alice").user_id, OTHER_ALICE: "AIDAOTHERALICE"}
        unbound = tx.get_key("k2")
        assert unbound is not None and json.loads(unbound.policy_principal_ids or "null") == {}
        grants = {g.grant_id: g for g in tx.list_grants("k1", None, 10)}
    assert (grants["g1"].grantee_principal_id, grants["g1"].retiring_principal_id) == (user("alice").user_id, None)
    assert (grants["g2"].grantee_principal_id, grants["g2"].retiring_principal_id) == ("", user("alice").user_id)
    assert (grants["g3"].grantee_principal_id, grants["g3"].retiring_principal_id) == (None, None)


def test_keys_and_grants_keep_their_bindings(storage: Storage) -> None:
    ids = json.dumps({ALICE: "AIDAALICE"})
    with storage.transaction() as tx:
        tx.insert_key(key("k1", policy_principal_ids=ids))
        tx.insert_grant(grant("k1", "g1", grantee_principal_id="AIDAALICE", retiring_principal_id=""))
    with storage.transaction() as tx:
        found = tx.get_key("k1")
        assert found is not None and found.policy_principal_ids == ids
        tx.update_key(dataclasses.replace(found, policy_principal_ids="{}"))
    with storage.read() as tx:
        assert tx.get_key("k1") == key("k1", policy_principal_ids="{}")
        assert tx.grants_for("k1", ALICE) == [
            grant("k1", "g1", grantee_principal_id="AIDAALICE", retiring_principal_id="")
        ]


def test_existing_user_ids(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_user(user("alice"))
        tx.insert_user(user("bob"))
    alice, bob = user("alice").user_id, user("bob").user_id
    with storage.transaction() as tx:
        tx.delete_user(ACCOUNT, "bob")
    with storage.read() as tx:
        assert tx.existing_user_ids([alice, bob, "AIDANOBODY", alice]) == {alice}
        assert tx.existing_user_ids([]) == set()


# ------------------------------------------------------------------------------------------- migration 9


def test_user_names_are_unique_ignoring_case(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        tx.insert_user(user("dave"))
    with storage.transaction() as tx, pytest.raises(DuplicateError):
        tx.insert_user(dataclasses.replace(user("Dave"), user_id="AIDADAVEAGAIN"))
    with storage.transaction() as tx:
        other = dataclasses.replace(user("Dave", account=OTHER_ACCOUNT), user_id="AIDAOTHERDAVE")
        tx.insert_user(other)  # another account: another namespace
        assert tx.find_user_ignoring_case(ACCOUNT, "DAVE") == user("dave")
        assert tx.find_user_ignoring_case(ACCOUNT, "dave") == user("dave")
        assert tx.find_user_ignoring_case(ACCOUNT, "dave_") is None  # no LIKE wildcards
        assert tx.get_user(ACCOUNT, "Dave") is None  # lookups by name stay exact
    with storage.transaction() as tx:
        tx.delete_user(ACCOUNT, "dave")
    with storage.transaction() as tx:
        tx.insert_user(dataclasses.replace(user("DAVE"), user_id="AIDADAVETHIRD"))  # the name is free again


def test_identity_refuses_a_user_name_differing_only_in_case(storage: Storage) -> None:
    clock = FrozenClock(1_700_000_000.0)
    identity.ensure_account(storage, ACCOUNT, clock)
    identity.create_user(storage, ACCOUNT, "dave", clock)
    for name in ("Dave", "DAVE", "dave"):
        with pytest.raises(identity.IdentityError, match=f"^User with name {name} already exists.$"):
            identity.create_user(storage, ACCOUNT, name, clock)


def test_migration_9_keeps_names_that_already_differ_only_in_case(engine: Opener) -> None:
    storage = engine()
    assert storage.migrate(target=8) == 8
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_user(user("dave"))
        tx.insert_user(dataclasses.replace(user("Dave"), user_id="AIDACAPITALDAVE"))
        tx.insert_user(user("erin"))
    assert storage.migrate() == LATEST  # does not fail: neither user can be dropped for the operator
    with storage.read() as tx:
        assert tx.get_user(ACCOUNT, "dave") == user("dave")
        assert tx.get_user(ACCOUNT, "Dave") is not None
    clock = FrozenClock(1_700_000_000.0)
    with pytest.raises(identity.IdentityError, match="already exists"):
        identity.create_user(storage, ACCOUNT, "DAVE", clock)
    with storage.transaction() as tx, pytest.raises(DuplicateError):
        tx.insert_user(dataclasses.replace(user("ERIN"), user_id="AIDAERINAGAIN"))  # unmarked names: the index
    identity.delete_user(storage, ACCOUNT, "Dave")
    identity.delete_user(storage, ACCOUNT, "dave")
    identity.create_user(storage, ACCOUNT, "DAVE", clock)
