"""The storage contract for access control, on both engines: inline policies, groups, principal tags, grants,
the per-request authorisation reads, and migration 2 (every existing user keeps what it could do)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, cast

import pytest

from openkms import identity
from openkms.policy.document import parse_policy
from openkms.storage.ports import DuplicateError, Storage, StorageError
from openkms.storage.records import PrincipalAuthorization
from tests.storage.support import (
    ACCOUNT,
    ALICE,
    LATEST,
    OTHER_ACCOUNT,
    Opener,
    add_key_with_version,
    grant,
    group,
    user,
)

ADMIN_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"


def policy(sid: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Action": "kms:*"}]})


def with_users(storage: Storage, *names: str, account: str = ACCOUNT) -> None:
    with storage.transaction() as tx:
        tx.insert_account(account, 1.0)
        for name in names:
            tx.insert_user(user(name, account=account))


class CountingCursor:
    """Wraps a transaction's cursor to count the statements it runs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.statements: list[str] = []

    @property
    def rowcount(self) -> int:
        return int(self.inner.rowcount)

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object:
        self.statements.append(sql)
        return self.inner.execute(sql, params)

    def fetchone(self) -> Any:
        return self.inner.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.inner.fetchall())


def counting(tx: object) -> CountingCursor:
    concrete = cast(Any, tx)
    cursor = CountingCursor(concrete._cur)
    concrete._cur = cursor
    return cursor


# ---------------------------------------------------------------------------------------- migration 2


def test_migration_2_gives_every_existing_user_administrator_access(engine: Opener) -> None:
    storage = engine()
    assert storage.migrate(target=1) == 1
    assert storage.schema_version() == 1
    with storage.transaction() as tx:  # only schema-1 methods: the new tables do not exist yet
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        tx.insert_user(user("alice"))
        tx.insert_user(user("bob"))
        tx.insert_user(dataclasses.replace(user("alice", account=OTHER_ACCOUNT), user_id="AIDAOTHERALICE"))
    assert storage.migrate() == LATEST
    assert storage.migrate(target=1) == LATEST  # no downgrades: a lower target changes nothing
    with storage.read() as tx:
        for account, name in ((ACCOUNT, "alice"), (ACCOUNT, "bob"), (OTHER_ACCOUNT, "alice")):
            assert tx.list_user_policies(account, name) == {"AdministratorAccess": ADMIN_POLICY}
            auth = tx.principal_authorization(account, name)
            assert auth is not None
            assert auth.policies == (ADMIN_POLICY,)
    # What the migration wrote is exactly what init and the dev server give their administrator, and valid.
    assert identity.ADMINISTRATOR_POLICY == ADMIN_POLICY
    assert identity.ADMINISTRATOR_POLICY_NAME == "AdministratorAccess"
    parse_policy(ADMIN_POLICY, "identity")
    with storage.transaction() as tx:  # users created after the migration get nothing implicitly
        tx.insert_user(user("carol"))
    with storage.read() as tx:
        assert tx.list_user_policies(ACCOUNT, "carol") == {}


def test_migrating_an_empty_database_in_two_steps_equals_one_step(engine: Opener) -> None:
    storage = engine()
    assert storage.migrate(target=1) == 1
    assert storage.migrate(target=LATEST) == LATEST
    assert engine().migrate() == LATEST
    with storage.read() as tx:
        assert tx.list_groups(None) == []


# ------------------------------------------------------------------------------------ inline policies


def test_user_policies_put_replace_list_delete(storage: Storage) -> None:
    with_users(storage, "alice", "bob")
    with storage.transaction() as tx:
        tx.put_user_policy(ACCOUNT, "alice", "b-policy", policy("B"))
        tx.put_user_policy(ACCOUNT, "alice", "A-policy", policy("A"))
        tx.put_user_policy(ACCOUNT, "alice", "a-policy", policy("a"))
        tx.put_user_policy(ACCOUNT, "bob", "b-policy", policy("bob"))
    with storage.transaction() as tx:
        tx.put_user_policy(ACCOUNT, "alice", "b-policy", policy("replaced"))  # an upsert, not a duplicate
    with storage.read() as tx:
        got = tx.list_user_policies(ACCOUNT, "alice")
        assert list(got) == ["A-policy", "a-policy", "b-policy"]  # bytewise on both engines
        assert got["b-policy"] == policy("replaced")
        assert tx.list_user_policies(ACCOUNT, "bob") == {"b-policy": policy("bob")}
        assert tx.list_user_policies(ACCOUNT, "nobody") == {}
    with storage.transaction() as tx:
        assert tx.delete_user_policy(ACCOUNT, "alice", "a-policy") is True
        assert tx.delete_user_policy(ACCOUNT, "alice", "a-policy") is False
        assert tx.delete_user_policy(ACCOUNT, "nobody", "x") is False
    with storage.read() as tx:
        assert list(tx.list_user_policies(ACCOUNT, "alice")) == ["A-policy", "b-policy"]


def test_a_policy_of_a_missing_user_is_refused(storage: Storage) -> None:
    with_users(storage, "alice")
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_user_policy(ACCOUNT, "nobody", "p", policy("x"))
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_user_policy(OTHER_ACCOUNT, "alice", "p", policy("x"))  # same name, other account


# --------------------------------------------------------------------------------------------- groups


def test_groups(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        for name in ("ops", "Dev", "auditors"):
            tx.insert_group(group(name))
        tx.insert_group(group("ops", account=OTHER_ACCOUNT, suffix="X"))  # same name, other account: fine
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_group(group("ops", suffix="Y"))
    with pytest.raises(DuplicateError), storage.transaction() as tx:  # group ids are unique everywhere
        tx.insert_group(dataclasses.replace(group("ops"), group_name="other"))
    with pytest.raises(StorageError), storage.transaction() as tx:  # the account must exist
        tx.insert_group(group("ghosts", account="999999999999"))
    with storage.read() as tx:
        assert tx.get_group(ACCOUNT, "ops") == group("ops")
        assert tx.get_group(ACCOUNT, "nope") is None
        assert [g.group_name for g in tx.list_groups(ACCOUNT)] == ["Dev", "auditors", "ops"]
        assert [(g.account_id, g.group_name) for g in tx.list_groups(None)] == [
            (ACCOUNT, "Dev"),
            (ACCOUNT, "auditors"),
            (ACCOUNT, "ops"),
            (OTHER_ACCOUNT, "ops"),
        ]
    with storage.transaction() as tx:
        assert tx.delete_group(ACCOUNT, "ops") is True
        assert tx.delete_group(ACCOUNT, "ops") is False
    with storage.read() as tx:
        assert tx.get_group(ACCOUNT, "ops") is None
        assert tx.get_group(OTHER_ACCOUNT, "ops") is not None


def test_membership_is_idempotent_and_listed_both_ways(storage: Storage) -> None:
    with_users(storage, "alice", "bob")
    with storage.transaction() as tx:
        for name in ("ops", "dev", "Audit"):
            tx.insert_group(group(name))
        tx.add_user_to_group(ACCOUNT, "alice", "ops")
        tx.add_user_to_group(ACCOUNT, "alice", "ops")  # idempotent
        tx.add_user_to_group(ACCOUNT, "alice", "Audit")
        tx.add_user_to_group(ACCOUNT, "bob", "ops")
    with storage.read() as tx:
        assert tx.list_groups_for_user(ACCOUNT, "alice") == ["Audit", "ops"]
        assert tx.list_groups_for_user(ACCOUNT, "bob") == ["ops"]
        assert tx.list_groups_for_user(ACCOUNT, "nobody") == []
        assert tx.list_group_members(ACCOUNT, "ops") == ["alice", "bob"]
        assert tx.list_group_members(ACCOUNT, "dev") == []
    with storage.transaction() as tx:
        assert tx.remove_user_from_group(ACCOUNT, "alice", "ops") is True
        assert tx.remove_user_from_group(ACCOUNT, "alice", "ops") is False
        assert tx.remove_user_from_group(ACCOUNT, "alice", "dev") is False
    with storage.read() as tx:
        assert tx.list_groups_for_user(ACCOUNT, "alice") == ["Audit"]
        assert tx.list_group_members(ACCOUNT, "ops") == ["bob"]


@pytest.mark.parametrize(("user_name", "group_name"), [("nobody", "ops"), ("alice", "nogroup")])
def test_membership_needs_the_user_and_the_group(storage: Storage, user_name: str, group_name: str) -> None:
    with_users(storage, "alice")
    with storage.transaction() as tx:
        tx.insert_group(group("ops"))
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.add_user_to_group(ACCOUNT, user_name, group_name)


def test_group_policies_and_delete_group_takes_them_and_its_memberships(storage: Storage) -> None:
    with_users(storage, "alice")
    with storage.transaction() as tx:
        tx.insert_group(group("ops"))
        tx.insert_group(group("dev"))
        tx.put_group_policy(ACCOUNT, "ops", "z", policy("z"))
        tx.put_group_policy(ACCOUNT, "ops", "a", policy("a"))
        tx.put_group_policy(ACCOUNT, "ops", "a", policy("a2"))
        tx.put_group_policy(ACCOUNT, "dev", "a", policy("dev"))
        tx.add_user_to_group(ACCOUNT, "alice", "ops")
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_group_policy(ACCOUNT, "nogroup", "a", policy("x"))
    with storage.read() as tx:
        assert tx.list_group_policies(ACCOUNT, "ops") == {"a": policy("a2"), "z": policy("z")}
        assert list(tx.list_group_policies(ACCOUNT, "ops")) == ["a", "z"]
        assert tx.list_group_policies(ACCOUNT, "nogroup") == {}
    with storage.transaction() as tx:
        assert tx.delete_group_policy(ACCOUNT, "ops", "z") is True
        assert tx.delete_group_policy(ACCOUNT, "ops", "z") is False
        assert tx.delete_group(ACCOUNT, "ops") is True
    with storage.transaction() as tx:  # a new group of the same name starts empty
        tx.insert_group(group("ops", suffix="2"))
    with storage.read() as tx:
        assert tx.list_group_policies(ACCOUNT, "ops") == {}
        assert tx.list_group_members(ACCOUNT, "ops") == []
        assert tx.list_groups_for_user(ACCOUNT, "alice") == []
        assert tx.list_group_policies(ACCOUNT, "dev") == {"a": policy("dev")}


# --------------------------------------------------------------------------------------- principal tags


def test_user_tags(storage: Storage) -> None:
    with_users(storage, "alice", "bob")
    with storage.transaction() as tx:
        tx.put_user_tags(ACCOUNT, "alice", {"team": "a", "Env": "prod", "empty": "", "long": "v" * 256})
        tx.put_user_tags(ACCOUNT, "bob", {"team": "b"})
    with storage.transaction() as tx:
        tx.put_user_tags(ACCOUNT, "alice", {"team": "blue"})
        tx.delete_user_tags(ACCOUNT, "alice", ["long", "never-there"])
    with storage.read() as tx:
        tags = tx.list_user_tags(ACCOUNT, "alice")
        assert tags == {"Env": "prod", "empty": "", "team": "blue"}
        assert list(tags) == ["Env", "empty", "team"]
        assert tx.list_user_tags(ACCOUNT, "bob") == {"team": "b"}
        assert tx.list_user_tags(ACCOUNT, "nobody") == {}
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_user_tags(ACCOUNT, "nobody", {"a": "b"})


def test_delete_user_takes_policies_tags_memberships_and_keys(storage: Storage) -> None:
    with_users(storage, "alice", "bob")
    with storage.transaction() as tx:
        tx.insert_group(group("ops"))
        tx.add_user_to_group(ACCOUNT, "alice", "ops")
        tx.add_user_to_group(ACCOUNT, "bob", "ops")
        tx.put_user_policy(ACCOUNT, "alice", "p", policy("p"))
        tx.put_user_tags(ACCOUNT, "alice", {"team": "a"})
    with storage.transaction() as tx:
        tx.delete_user(ACCOUNT, "alice")
    with storage.transaction() as tx:  # a new alice inherits nothing from the old one
        tx.insert_user(dataclasses.replace(user("alice"), user_id="AIDANEWALICE"))
    with storage.read() as tx:
        assert tx.list_user_policies(ACCOUNT, "alice") == {}
        assert tx.list_user_tags(ACCOUNT, "alice") == {}
        assert tx.list_groups_for_user(ACCOUNT, "alice") == []
        assert tx.list_group_members(ACCOUNT, "ops") == ["bob"]
        auth = tx.principal_authorization(ACCOUNT, "alice")
    assert auth == PrincipalAuthorization(dataclasses.replace(user("alice"), user_id="AIDANEWALICE"), {}, (), ())


# ------------------------------------------------------------------------------ principal_authorization


def test_principal_authorization_gathers_user_then_group_policies(storage: Storage) -> None:
    with_users(storage, "alice", "bob")
    with storage.transaction() as tx:
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        tx.insert_user(dataclasses.replace(user("alice", account=OTHER_ACCOUNT), user_id="AIDAOTHERALICE"))
        tx.put_user_policy(OTHER_ACCOUNT, "alice", "elsewhere", policy("elsewhere"))
        for name in ("zeta", "alpha", "empty"):
            tx.insert_group(group(name))
            tx.add_user_to_group(ACCOUNT, "alice", name)
        tx.insert_group(group("bobs"))
        tx.add_user_to_group(ACCOUNT, "bob", "bobs")
        tx.put_group_policy(ACCOUNT, "bobs", "b", policy("bobs"))
        tx.put_user_policy(ACCOUNT, "alice", "u2", policy("u2"))
        tx.put_user_policy(ACCOUNT, "alice", "u1", policy("u1"))
        tx.put_group_policy(ACCOUNT, "zeta", "z1", policy("z1"))
        tx.put_group_policy(ACCOUNT, "alpha", "a2", policy("a2"))
        tx.put_group_policy(ACCOUNT, "alpha", "a1", policy("a1"))
        tx.put_user_tags(ACCOUNT, "alice", {"team": "blue", "Env": "prod"})
    with storage.read() as tx:
        auth = tx.principal_authorization(ACCOUNT, "alice")
        assert tx.principal_authorization(ACCOUNT, "nobody") is None
        assert tx.principal_authorization("999999999999", "alice") is None
        bob = tx.principal_authorization(ACCOUNT, "bob")
        other = tx.principal_authorization(OTHER_ACCOUNT, "alice")
    assert auth == PrincipalAuthorization(
        user=user("alice"),
        tags={"Env": "prod", "team": "blue"},
        group_names=("alpha", "empty", "zeta"),  # a group without policies still counts (aws:... conditions)
        policies=(policy("u1"), policy("u2"), policy("a1"), policy("a2"), policy("z1")),
    )
    assert bob == PrincipalAuthorization(user("bob"), {}, ("bobs",), (policy("bobs"),))
    assert other is not None
    assert other.policies == (policy("elsewhere"),)
    assert other.group_names == ()


def test_principal_authorization_takes_at_most_two_queries(storage: Storage) -> None:
    with_users(storage, "alice")
    with storage.transaction() as tx:
        for i in range(5):
            tx.insert_group(group(f"g{i}"))
            tx.add_user_to_group(ACCOUNT, "alice", f"g{i}")
            tx.put_group_policy(ACCOUNT, f"g{i}", "p", policy(f"g{i}"))
            tx.put_user_policy(ACCOUNT, "alice", f"p{i}", policy(f"p{i}"))
        tx.put_user_tags(ACCOUNT, "alice", {f"t{i}": str(i) for i in range(10)})
    with storage.read() as tx:
        cursor = counting(tx)
        auth = tx.principal_authorization(ACCOUNT, "alice")
        assert len(cursor.statements) == 2, cursor.statements
        assert auth is not None and len(auth.policies) == 10 and len(auth.tags) == 10
        cursor.statements.clear()
        assert tx.principal_authorization(ACCOUNT, "nobody") is None
        assert len(cursor.statements) == 1  # no such user: the policies are not even asked for


# --------------------------------------------------------------------------------------------- grants

GRANT_A = "a" * 64
GRANT_B = "b" * 64
GRANT_C = "c" * 64


def test_grant_round_trip_with_every_field(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    full = grant(
        "k1",
        GRANT_A,
        name="app-grant",
        retiring_principal=BOB,
        operations=("GenerateDataKey", "Decrypt", "RetireGrant"),
        constraints='{"EncryptionContextSubset":{"dept":"h\u00e9llo \u2603"}}',
        grant_token="tok-" + "x" * 600,
    )
    sparse = grant("k1", GRANT_B, operations=("Sign",))
    with storage.transaction() as tx:
        tx.insert_grant(full)
        tx.insert_grant(sparse)
    with storage.read() as tx:
        assert tx.get_grant("k1", GRANT_A) == full
        assert tx.get_grant("k1", GRANT_B) == sparse
        assert tx.get_grant("k1", GRANT_C) is None
        assert tx.get_grant("k2", GRANT_A) is None
        assert tx.get_grant_by_token(full.grant_token) == full
        assert tx.get_grant_by_token("no-such-token") is None
        assert tx.find_grant_by_name("k1", "app-grant") == [full]
        assert tx.find_grant_by_name("k1", "other") == []
        assert tx.count_grants("k1") == 2
        assert tx.count_grants("ghost") == 0
        got = tx.get_grant("k1", GRANT_A)
    assert got is not None
    assert isinstance(got.operations, tuple)
    assert got.operations == ("GenerateDataKey", "Decrypt", "RetireGrant")  # order kept as given


def test_grant_ids_and_tokens_are_unique_and_the_key_must_exist(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_grant(grant("k1", GRANT_A))
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_grant(grant("k1", GRANT_A, grant_token="fresh"))
    with pytest.raises(DuplicateError), storage.transaction() as tx:  # grant ids are unique across keys
        tx.insert_grant(grant("k2", GRANT_A, grant_token="fresh"))
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_grant(grant("k2", GRANT_B, grant_token=grant("k1", GRANT_A).grant_token))
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.insert_grant(grant("ghost", GRANT_C))
    with storage.read() as tx:
        assert tx.count_grants("k2") == 0


def test_several_grants_may_share_a_name(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_grant(grant("k1", GRANT_B, name="same"))
        tx.insert_grant(grant("k1", GRANT_A, name="same", grantee=BOB))
        tx.insert_grant(grant("k2", GRANT_C, name="same"))
    with storage.read() as tx:
        assert [g.grant_id for g in tx.find_grant_by_name("k1", "same")] == [GRANT_A, GRANT_B]
        assert [g.grant_id for g in tx.find_grant_by_name("k2", "same")] == [GRANT_C]


def test_list_grants_filters_orders_and_pages(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    ids = [f"{i:064x}" for i in (7, 3, 11, 1, 5, 9)]
    with storage.transaction() as tx:
        for n, grant_id in enumerate(ids):
            tx.insert_grant(grant("k1", grant_id, grantee=ALICE if n % 2 == 0 else BOB))
        tx.insert_grant(grant("k2", "f" * 64))
    everything = sorted(ids)
    alices = sorted(ids[0::2])

    def listed(after: str | None, limit: int, **filters: Any) -> list[str]:
        with storage.read() as tx:
            return [g.grant_id for g in tx.list_grants("k1", after, limit, **filters)]

    assert listed(None, 100) == everything
    assert listed(None, 2) == everything[:2]
    assert listed(everything[1], 2) == everything[2:4]
    assert listed(everything[-1], 2) == []
    assert listed(None, 100, grantee_principal=ALICE) == alices
    assert listed(alices[0], 100, grantee_principal=ALICE) == alices[1:]
    assert listed(None, 100, grant_id=ids[2]) == [ids[2]]
    assert listed(None, 100, grant_id="f" * 64) == []  # another key's grant
    assert listed(None, 100, grant_id=ids[2], grantee_principal=ALICE) == [ids[2]]
    assert listed(None, 100, grant_id=ids[1], grantee_principal=ALICE) == []
    assert listed(ids[2], 100, grant_id=ids[2]) == []
    assert listed(ids[1], 100, grant_id=ids[2], grantee_principal=ALICE) == [ids[2]]
    with storage.read() as tx:
        assert tx.list_grants("ghost", None, 100) == []


def test_list_retirable_grants_spans_keys_and_pages(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_grant(grant("k1", f"{3:064x}", retiring_principal=BOB))
        tx.insert_grant(grant("k2", f"{1:064x}", retiring_principal=BOB))
        tx.insert_grant(grant("k2", f"{2:064x}", retiring_principal=ALICE))
        tx.insert_grant(grant("k1", f"{4:064x}"))
        tx.insert_grant(grant("k1", f"{5:064x}", retiring_principal=BOB))
    with storage.read() as tx:
        page = tx.list_retirable_grants(BOB, None, 2)
        assert [(g.key_id, g.grant_id[-1]) for g in page] == [("k2", "1"), ("k1", "3")]
        rest = tx.list_retirable_grants(BOB, page[-1].grant_id, 2)
        assert [(g.key_id, g.grant_id[-1]) for g in rest] == [("k1", "5")]
        assert tx.list_retirable_grants(BOB, rest[-1].grant_id, 2) == []
        assert [g.grant_id[-1] for g in tx.list_retirable_grants(ALICE, None, 10)] == ["2"]
        assert tx.list_retirable_grants("arn:aws:iam::111122223333:user/nobody", None, 10) == []


def test_grants_for_a_grantee_and_delete_grant(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_grant(grant("k1", GRANT_B))
        tx.insert_grant(grant("k1", GRANT_A, operations=("Encrypt",)))
        tx.insert_grant(grant("k1", GRANT_C, grantee=BOB))
        tx.insert_grant(grant("k2", "d" * 64))
    with storage.read() as tx:
        cursor = counting(tx)
        mine = tx.grants_for("k1", ALICE)
        assert len(cursor.statements) == 1
        assert [g.grant_id for g in mine] == [GRANT_A, GRANT_B]
        assert mine[0].operations == ("Encrypt",)
        assert [g.grant_id for g in tx.grants_for("k1", BOB)] == [GRANT_C]
        assert [g.grant_id for g in tx.grants_for("k2", ALICE)] == ["d" * 64]
        assert tx.grants_for("k1", "arn:aws:iam::111122223333:user/nobody") == []
    with storage.transaction() as tx:
        assert tx.delete_grant("k1", GRANT_A) is True
        assert tx.delete_grant("k1", GRANT_A) is False
        assert tx.delete_grant("k2", GRANT_B) is False  # the grant exists, but on another key
    with storage.read() as tx:
        assert [g.grant_id for g in tx.grants_for("k1", ALICE)] == [GRANT_B]
        assert tx.count_grants("k1") == 2


def test_delete_key_takes_its_grants(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.insert_grant(grant("k1", GRANT_A, name="n", retiring_principal=BOB))
        tx.insert_grant(grant("k2", GRANT_B, retiring_principal=BOB))
    with storage.transaction() as tx:
        tx.delete_key("k1")
    with storage.read() as tx:
        assert tx.get_grant("k1", GRANT_A) is None
        assert tx.get_grant_by_token(grant("k1", GRANT_A).grant_token) is None
        assert tx.count_grants("k1") == 0
        assert [g.grant_id for g in tx.list_retirable_grants(BOB, None, 10)] == [GRANT_B]
    add_key_with_version(storage, "k1")  # a recreated key id has no grants
    with storage.read() as tx:
        assert tx.list_grants("k1", None, 10) == []


def test_access_control_writes_roll_back_with_the_transaction(storage: Storage) -> None:
    with_users(storage, "alice")
    add_key_with_version(storage, "k1")

    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), storage.transaction() as tx:
        tx.insert_group(group("ops"))
        tx.add_user_to_group(ACCOUNT, "alice", "ops")
        tx.put_user_policy(ACCOUNT, "alice", "p", policy("p"))
        tx.put_user_tags(ACCOUNT, "alice", {"a": "b"})
        tx.insert_grant(grant("k1", GRANT_A))
        raise BoomError
    with storage.read() as tx:
        assert tx.principal_authorization(ACCOUNT, "alice") == PrincipalAuthorization(user("alice"), {}, (), ())
        assert tx.list_groups(None) == []
        assert tx.count_grants("k1") == 0
