"""One contract for the storage port, run against every engine (Vault's testBarrier idea).

Each test gets an empty, migrated database on each engine (``conftest.py``); records and constants come
from ``support.py``. Access control (groups, inline policies, principal tags, grants) has its own file,
``test_contract_access_control.py``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from openkms.storage import migrate
from openkms.storage.ports import DuplicateError, Storage, StorageError, iterate_all_keys
from openkms.storage.postgres import PostgresStorage
from openkms.storage.records import (
    SealRecord,
    TagRecord,
    UserRecord,
)
from openkms.storage.sqlite import SQLiteStorage
from tests.pg_helpers import postgres_admin_url
from tests.storage.support import (
    ACCOUNT,
    LATEST,
    OTHER_ACCOUNT,
    OTHER_REGION,
    REGION,
    Opener,
    access_key,
    add_key_with_version,
    alias,
    key,
    user,
    version,
)

# ------------------------------------------------------------------------------------------- schema


def test_unmigrated_database_is_version_zero(engine: Opener) -> None:
    assert engine().schema_version() == 0


def test_migrate_is_idempotent_and_records_each_version_once(storage: Storage, engine: Opener) -> None:
    assert storage.schema_version() == LATEST
    assert storage.migrate() == LATEST
    assert engine().migrate() == LATEST
    assert storage.schema_version() == len(migrate.load(storage.dialect)) == LATEST


def test_concurrent_migrations_from_two_processes_queue(engine: Opener) -> None:
    """Two nodes starting at once on an empty database: one migrates, the other finds nothing to do."""
    storages = [engine() for _ in range(4)]
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(storages))

    def run(s: Storage) -> None:
        barrier.wait()
        try:
            results.append(s.migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in storages]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert results == [LATEST] * 4
    assert storages[0].schema_version() == LATEST


def test_a_newer_schema_is_refused(storage: Storage) -> None:
    _raw_execute(storage, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
    with pytest.raises(StorageError, match="newer release"):
        storage.migrate()


# --------------------------------------------------------------------------------------------- keys


def test_key_round_trip_with_every_field(storage: Storage) -> None:
    full = key(
        "k-full",
        multi_region=True,
        deletion_date=1_700_600_000.5,
        pending_window_days=7,
        rotation_enabled=True,
        rotation_period_days=90,
        next_rotation_date=1_707_776_000.75,
        description="h\u00e9llo \u2603 '; DROP TABLE keys; --",
    )
    sparse = key("k-sparse", current_version_id=None, key_state="PendingImport", origin="EXTERNAL")
    with storage.transaction() as tx:
        tx.insert_key(full)
        tx.insert_key(sparse)
    with storage.read() as tx:
        got_full, got_sparse = tx.get_key("k-full"), tx.get_key("k-sparse")
        assert tx.get_key("nope") is None
    assert got_full == full
    assert got_sparse == sparse
    assert got_full is not None
    assert type(got_full.multi_region) is bool
    assert type(got_full.rotation_enabled) is bool
    assert type(got_full.creation_date) is float


def test_duplicate_key_id_is_refused(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_key(key("k1", description="other"))
    with storage.read() as tx:
        assert tx.get_key("k1") == key("k1")


def test_update_key_overwrites_mutable_columns(storage: Storage) -> None:
    original = add_key_with_version(storage, "k1")
    changed = dataclasses.replace(
        original,
        description="new",
        key_state="PendingDeletion",
        policy="{}",
        current_version_id="1" * 32,
        deletion_date=5.0,
        pending_window_days=30,
        rotation_enabled=True,
        rotation_period_days=365,
        next_rotation_date=6.0,
    )
    with storage.transaction() as tx:
        tx.update_key(changed)
    with storage.read() as tx:
        assert tx.get_key("k1") == changed
    with storage.transaction() as tx:
        tx.update_key(dataclasses.replace(changed, deletion_date=None, pending_window_days=None, key_state="Disabled"))
    with storage.read() as tx:
        assert tx.get_key("k1") == dataclasses.replace(
            changed, deletion_date=None, pending_window_days=None, key_state="Disabled"
        )


def test_update_of_a_missing_key_fails_loudly(storage: Storage) -> None:
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.update_key(key("ghost"))


def test_list_keys_orders_by_id_and_pages(storage: Storage) -> None:
    # Mixed case and punctuation: both engines must order by bytes, not by a locale.
    ids = ["b", "B", "a", "_x", "-y", "a-b", "aB", "Z9", "0"]
    with storage.transaction() as tx:
        for key_id in ids:
            tx.insert_key(key(key_id))
        tx.insert_key(key("other-account", account=OTHER_ACCOUNT))
        tx.insert_key(key("other-region", region=OTHER_REGION))
    expected = sorted(ids)
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        with storage.read() as tx:
            page = tx.list_keys(ACCOUNT, REGION, after, 4)
        pages.append([k.key_id for k in page])
        if len(page) < 4:
            break
        after = page[-1].key_id
    assert pages == [expected[0:4], expected[4:8], expected[8:]]
    assert [k.key_id for k in iterate_all_keys(storage, ACCOUNT, REGION, page=2)] == expected
    with storage.read() as tx:
        assert [k.key_id for k in tx.list_keys(OTHER_ACCOUNT, REGION, None, 10)] == ["other-account"]
        assert tx.list_keys(ACCOUNT, REGION, expected[-1], 10) == []
        assert tx.list_keys("000000000000", REGION, None, 10) == []
        assert tx.list_keys(ACCOUNT, REGION, None, 2)[0] == key(expected[0])


def test_count_keys_groups_by_account_region_and_state(storage: Storage) -> None:
    with storage.read() as tx:
        assert tx.count_keys() == []
    with storage.transaction() as tx:
        for key_id, state in [("a", "Enabled"), ("b", "Disabled"), ("c", "Enabled"), ("d", "PendingDeletion")]:
            tx.insert_key(key(key_id, key_state=state))
        tx.insert_key(key("e", account=OTHER_ACCOUNT))
        tx.insert_key(key("f", region=OTHER_REGION, key_state="PendingImport"))
    with storage.read() as tx:
        counts = tx.count_keys()
    assert [(c.account_id, c.region, c.key_state, c.count) for c in counts] == sorted(
        [
            (ACCOUNT, REGION, "Disabled", 1),
            (ACCOUNT, REGION, "Enabled", 2),
            (ACCOUNT, REGION, "PendingDeletion", 1),
            (ACCOUNT, OTHER_REGION, "PendingImport", 1),
            (OTHER_ACCOUNT, REGION, "Enabled", 1),
        ]
    )


def test_delete_key_takes_versions_aliases_and_tags(storage: Storage) -> None:
    add_key_with_version(storage, "doomed")
    add_key_with_version(storage, "kept")
    with storage.transaction() as tx:
        tx.insert_version(version("doomed", "1" * 32))
        tx.insert_alias(alias("alias/doomed", "doomed"))
        tx.insert_alias(alias("alias/doomed-2", "doomed"))
        tx.insert_alias(alias("alias/kept", "kept"))
        tx.put_tags("doomed", {"a": "1", "b": "2"})
        tx.put_tags("kept", {"a": "1"})
    with storage.transaction() as tx:
        tx.delete_key("doomed")
        tx.delete_key("never-existed")
    with storage.read() as tx:
        assert tx.get_key("doomed") is None
        assert tx.list_versions("doomed") == []
        assert tx.get_version("doomed", "0" * 32) is None
        assert tx.get_alias(ACCOUNT, REGION, "alias/doomed") is None
        assert tx.list_tags("doomed", None, 100) == []
        assert tx.count_tags("doomed") == 0
        assert tx.get_key("kept") == key("kept")
        assert len(tx.list_versions("kept")) == 1
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, None, None, 10)] == ["alias/kept"]
        assert tx.count_tags("kept") == 1


# ------------------------------------------------------------------------------------------ versions


def test_versions_round_trip_and_list_in_insertion_order(storage: Storage) -> None:
    add_key_with_version(storage, "k1", current_version_id="f" * 32)
    # Same timestamp, ids sorting the other way round: order must come from insertion, not from either.
    later = [version("k1", c * 32, created_at=1_700_000_000.0, rotation_type="ON_DEMAND") for c in "edcba"]
    with storage.transaction() as tx:
        for v in later[:2]:
            tx.insert_version(v)
    with storage.transaction() as tx:
        for v in later[2:]:
            tx.insert_version(v)
    with storage.read() as tx:
        listed = tx.list_versions("k1")
        assert tx.get_version("k1", "c" * 32) == later[2]
        assert tx.get_version("k1", "9" * 32) is None
        assert tx.get_version("other", "c" * 32) is None
    assert [v.version_id for v in listed] == ["f" * 32] + [v.version_id for v in later]
    assert listed[0] == version("k1", "f" * 32)
    assert listed[1:] == later


def test_duplicate_version_is_refused(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_version(version("k1", "0" * 32, wrapped_material=b"other"))
    with storage.read() as tx:
        assert [v.wrapped_material for v in tx.list_versions("k1")] == [version("k1", "0" * 32).wrapped_material]


def test_version_of_a_missing_key_is_a_storage_error_not_a_duplicate(storage: Storage) -> None:
    with pytest.raises(StorageError) as caught, storage.transaction() as tx:
        tx.insert_version(version("ghost", "0" * 32))
    assert not isinstance(caught.value, DuplicateError)
    assert isinstance(caught.value.__cause__, sqlite3.Error | psycopg.Error)


# ------------------------------------------------------------------------------------------- aliases


def test_alias_lifecycle(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    created = alias("alias/app", "k1")
    with storage.transaction() as tx:
        tx.insert_alias(created)
        tx.insert_alias(alias("alias/app", "k2", region=OTHER_REGION))  # same name, other region: fine
        tx.insert_alias(alias("alias/app", "k2", account=OTHER_ACCOUNT))  # same name, other account: fine
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_alias(alias("alias/app", "k2"))
    with storage.read() as tx:
        assert tx.get_alias(ACCOUNT, REGION, "alias/app") == created
        assert tx.get_alias(ACCOUNT, REGION, "alias/none") is None
    retargeted = dataclasses.replace(created, target_key_id="k2", last_updated_date=1_800_000_000.0)
    with storage.transaction() as tx:
        tx.update_alias(dataclasses.replace(retargeted, creation_date=0.0))  # creation date is immutable
    with storage.read() as tx:
        assert tx.get_alias(ACCOUNT, REGION, "alias/app") == retargeted
    with storage.transaction() as tx:
        tx.delete_alias(ACCOUNT, REGION, "alias/app")
        tx.delete_alias(ACCOUNT, REGION, "alias/app")  # deleting twice is harmless
    with storage.read() as tx:
        assert tx.get_alias(ACCOUNT, REGION, "alias/app") is None
        assert tx.get_alias(ACCOUNT, OTHER_REGION, "alias/app") is not None
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.update_alias(retargeted)


def test_alias_to_a_missing_key_is_refused(storage: Storage) -> None:
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.insert_alias(alias("alias/x", "ghost"))


def test_list_aliases_filters_orders_and_pages(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    names_k1 = ["alias/b", "alias/B", "alias/a-1", "alias/a_1"]
    names_k2 = ["alias/c", "alias/A"]
    with storage.transaction() as tx:
        for n in names_k1:
            tx.insert_alias(alias(n, "k1"))
        for n in names_k2:
            tx.insert_alias(alias(n, "k2"))
        tx.insert_alias(alias("alias/elsewhere", "k1", region=OTHER_REGION))
    everything = sorted(names_k1 + names_k2)
    with storage.read() as tx:
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, None, None, 100)] == everything
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, None, None, 2)] == everything[:2]
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, None, everything[1], 3)] == everything[2:5]
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, "k1", None, 100)] == sorted(names_k1)
        k1_sorted = sorted(names_k1)
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, "k1", k1_sorted[0], 2)] == k1_sorted[1:3]
        assert tx.list_aliases(ACCOUNT, REGION, "ghost", None, 100) == []
        assert [a.target_key_id for a in tx.list_aliases(ACCOUNT, OTHER_REGION, None, None, 100)] == ["k1"]


# ---------------------------------------------------------------------------------------------- tags


def test_tags_put_overwrite_delete_list_count(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    add_key_with_version(storage, "k2")
    with storage.transaction() as tx:
        tx.put_tags("k1", {"b": "1", "a": "2", "C": "3", "long": "v" * 256})
        tx.put_tags("k2", {"a": "other"})
    with storage.transaction() as tx:
        tx.put_tags("k1", {"a": "overwritten", "d": ""})
        tx.delete_tags("k1", ["b", "never-there"])
    with storage.read() as tx:
        tags = tx.list_tags("k1", None, 100)
        assert tx.count_tags("k1") == 4
        assert tx.count_tags("ghost") == 0
        assert tx.list_tags("k1", None, 2) == tags[:2]
        assert tx.list_tags("k1", tags[1].tag_key, 2) == tags[2:4]
        assert tx.list_tags("k1", tags[-1].tag_key, 2) == []
    assert tags == [
        TagRecord("k1", "C", "3"),
        TagRecord("k1", "a", "overwritten"),
        TagRecord("k1", "d", ""),
        TagRecord("k1", "long", "v" * 256),
    ]


def test_tags_of_a_missing_key_are_refused(storage: Storage) -> None:
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_tags("ghost", {"a": "b"})


# ---------------------------------------------------------------------------------------- identities


def test_accounts_are_idempotent(storage: Storage) -> None:
    with storage.transaction() as tx:
        assert not tx.account_exists(ACCOUNT)
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(ACCOUNT, 2.0)
    with storage.read() as tx:
        assert tx.account_exists(ACCOUNT)
        assert not tx.account_exists(OTHER_ACCOUNT)


def test_users(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        for name in ("bob", "alice", "Carol"):
            tx.insert_user(user(name))
        tx.insert_user(_user_with_id("bob", OTHER_ACCOUNT, "X"))  # same name, other account: fine
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_user(_user_with_id("bob", ACCOUNT, "Y"))
    with pytest.raises(DuplicateError), storage.transaction() as tx:  # user ids are unique everywhere
        tx.insert_user(dataclasses.replace(user("alice"), user_name="dave"))
    with pytest.raises(StorageError), storage.transaction() as tx:  # the account must exist
        tx.insert_user(user("eve", account="999999999999"))
    with storage.read() as tx:
        assert tx.get_user(ACCOUNT, "bob") == user("bob")
        assert tx.get_user(ACCOUNT, "nobody") is None
        assert [u.user_name for u in tx.list_users(ACCOUNT)] == ["Carol", "alice", "bob"]
        assert [(u.account_id, u.user_name) for u in tx.list_users(None)] == [
            (ACCOUNT, "Carol"),
            (ACCOUNT, "alice"),
            (ACCOUNT, "bob"),
            (OTHER_ACCOUNT, "bob"),
        ]


def _user_with_id(name: str, account: str, suffix: str) -> UserRecord:
    return dataclasses.replace(user(name, account=account), user_id=f"AIDA{suffix}{name.upper()}")


def test_access_keys(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_account(OTHER_ACCOUNT, 1.0)
        tx.insert_user(user("alice"))
        tx.insert_user(user("bob"))
        tx.insert_user(_user_with_id("alice", OTHER_ACCOUNT, "Z"))
        tx.insert_access_key(access_key("AKIA3", "alice"))
        tx.insert_access_key(access_key("AKIA1", "alice"))
        tx.insert_access_key(access_key("AKIA2", "bob"))
        tx.insert_access_key(access_key("AKIA9", "alice", account=OTHER_ACCOUNT))
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_access_key(access_key("AKIA1", "bob"))
    with pytest.raises(StorageError), storage.transaction() as tx:  # the user must exist
        tx.insert_access_key(access_key("AKIA7", "nobody"))

    def ids(account: str | None, name: str | None) -> list[str]:
        with storage.read() as tx:
            return [k.access_key_id for k in tx.list_access_keys(account, name)]

    assert ids(None, None) == ["AKIA1", "AKIA3", "AKIA2", "AKIA9"]
    assert ids(ACCOUNT, None) == ["AKIA1", "AKIA3", "AKIA2"]
    assert ids(ACCOUNT, "alice") == ["AKIA1", "AKIA3"]
    assert ids(None, "alice") == ["AKIA1", "AKIA3", "AKIA9"]
    with storage.transaction() as tx:
        assert tx.get_access_key("AKIA1") == access_key("AKIA1", "alice")
        assert tx.get_access_key("AKIA0") is None
        tx.set_access_key_status("AKIA1", "Inactive")
        tx.delete_access_key("AKIA3")
        tx.delete_access_key("AKIA3")
    with storage.read() as tx:
        assert tx.get_access_key("AKIA1") == dataclasses.replace(access_key("AKIA1", "alice"), status="Inactive")
        assert tx.get_access_key("AKIA3") is None
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.set_access_key_status("AKIA0", "Inactive")
    with storage.transaction() as tx:
        tx.delete_user(ACCOUNT, "alice")
    with storage.read() as tx:
        assert tx.get_user(ACCOUNT, "alice") is None
        assert tx.get_access_key("AKIA1") is None
        assert tx.get_access_key("AKIA9") is not None  # the other account's alice keeps hers
    assert ids(None, None) == ["AKIA2", "AKIA9"]


# ---------------------------------------------------------------------------------------------- seal


def test_seal_is_written_once(storage: Storage) -> None:
    seal = SealRecord("passphrase", '{"kdf": "argon2id", "salt": "AA=="}', b"\x00\x01root\xff", 1_700_000_000.125)
    with storage.read() as tx:
        assert tx.get_seal() is None
    with storage.transaction() as tx:
        tx.put_seal(seal)
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.put_seal(dataclasses.replace(seal, kind="keyfile"))
    with storage.read() as tx:
        assert tx.get_seal() == seal


# -------------------------------------------------------------------------------------- transactions


class BoomError(Exception):
    pass


def test_an_exception_rolls_everything_back(storage: Storage) -> None:
    with pytest.raises(BoomError), storage.transaction() as tx:
        tx.insert_key(key("k1"))
        tx.insert_version(version("k1", "0" * 32))
        tx.insert_alias(alias("alias/k1", "k1"))
        tx.put_tags("k1", {"a": "b"})
        tx.insert_account(ACCOUNT, 1.0)
        raise BoomError
    with storage.read() as tx:
        assert tx.get_key("k1") is None
        assert tx.list_versions("k1") == []
        assert tx.get_alias(ACCOUNT, REGION, "alias/k1") is None
        assert tx.count_tags("k1") == 0
        assert not tx.account_exists(ACCOUNT)
    add_key_with_version(storage, "k1")  # and the connection is fine afterwards


def test_a_failed_statement_rolls_back_the_whole_transaction(storage: Storage) -> None:
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.insert_key(key("k1"))
        tx.put_tags("ghost", {"a": "b"})  # foreign key violation
    with storage.read() as tx:
        assert tx.get_key("k1") is None


def test_a_caught_duplicate_leaves_the_transaction_usable(storage: Storage) -> None:
    add_key_with_version(storage, "k1")
    with storage.transaction() as tx:
        tx.insert_alias(alias("alias/a", "k1"))
        with pytest.raises(DuplicateError):
            tx.insert_alias(alias("alias/a", "k1"))
        tx.insert_alias(alias("alias/b", "k1"))
    with storage.read() as tx:
        assert [a.alias_name for a in tx.list_aliases(ACCOUNT, REGION, None, None, 10)] == ["alias/a", "alias/b"]


def test_read_transactions_refuse_writes(storage: Storage) -> None:
    with pytest.raises(RuntimeError, match="read-only"), storage.read() as tx:
        tx.insert_key(key("k1"))
    with storage.read() as tx:
        assert tx.get_key("k1") is None


def test_nested_transactions_on_one_thread_are_refused(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_key(key("k1"))
        with pytest.raises(RuntimeError, match="already open"), storage.read():
            pass
    with storage.read() as tx:
        assert tx.get_key("k1") == key("k1")


def test_a_transaction_cannot_be_used_after_its_block(storage: Storage) -> None:
    with storage.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="ended"):
        tx.insert_key(key("k1"))
    with pytest.raises(RuntimeError, match="ended"):
        tx.get_key("k1")


def test_reads_see_one_snapshot(storage: Storage) -> None:
    """get_key then get_version must not straddle a concurrent commit."""
    add_key_with_version(storage, "k1")
    with storage.read() as tx:
        assert tx.get_key("k1") == key("k1")
        _in_thread(lambda: _write_description(storage, "k1", "changed"))
        assert tx.get_key("k1") == key("k1")
    with storage.read() as tx:
        got = tx.get_key("k1")
    assert got is not None
    assert got.description == "changed"


def test_a_second_storage_on_the_same_database_sees_committed_writes(storage: Storage, engine: Opener) -> None:
    other = engine()
    with storage.transaction() as tx:
        tx.insert_key(key("k1"))
        with other.read() as other_tx:  # another connection: uncommitted rows are invisible
            assert other_tx.get_key("k1") is None
    with other.read() as other_tx:
        assert other_tx.get_key("k1") == key("k1")
    with other.transaction() as other_tx:
        other_tx.put_tags("k1", {"from": "other"})
    with storage.read() as tx:
        assert tx.list_tags("k1", None, 10) == [TagRecord("k1", "from", "other")]


@pytest.mark.timeout(120)
def test_concurrent_writers_queue_instead_of_failing(storage: Storage) -> None:
    """Two writer threads plus a reader: no 'database is locked', no deadlock, nothing lost."""
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        try:
            for i in range(60):
                with storage.transaction() as tx:
                    tx.insert_key(key(f"{prefix}-{i:03d}"))
                    tx.insert_version(version(f"{prefix}-{i:03d}", "0" * 32))
                    tx.put_tags(f"{prefix}-{i:03d}", {"n": str(i)})
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(200):
                with storage.read() as tx:
                    for k in tx.list_keys(ACCOUNT, REGION, None, 5):
                        assert tx.get_version(k.key_id, "0" * 32) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f, args=a) for f, a in ((writer, ("a",)), (writer, ("b",)), (reader, ()))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert errors == []
    assert len(list(iterate_all_keys(storage, ACCOUNT, REGION))) == 120


@pytest.mark.timeout(120)
def test_read_modify_write_loses_no_update(storage: Storage) -> None:
    """update_key overwrites every mutable column, so get_key in a write transaction must lock the row."""
    add_key_with_version(storage, "k1", description="0")
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(25):
                with storage.transaction() as tx:
                    current = tx.get_key("k1")
                    assert current is not None
                    time.sleep(0.0005)  # widen the window a lost update would need
                    tx.update_key(dataclasses.replace(current, description=str(int(current.description) + 1)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert errors == []
    with storage.read() as tx:
        final = tx.get_key("k1")
    assert final is not None
    assert final.description == "100"


def test_connections_of_finished_threads_are_closed(storage: Storage) -> None:
    for _ in range(5):
        _in_thread(lambda: _read_key(storage, "k1"))
    _read_key(storage, "k1")
    registry = storage._registry  # type: ignore[attr-defined]
    assert len(registry) <= 2  # this thread's and at most the last finished one's


def test_a_closed_storage_refuses_work(engine: Opener) -> None:
    s = engine()
    s.migrate()
    s.close()
    with pytest.raises(StorageError, match="closed"), s.read():
        pass


# ----------------------------------------------------------------------------------- engine specific


@pytest.mark.postgres
def test_postgres_survives_a_lost_connection(pg_storage: PostgresStorage) -> None:
    """A node must outlive a PostgreSQL restart: idle connections that died are replaced transparently."""
    storage = pg_storage
    add_key_with_version(storage, "k1")
    killed = _terminate_backend(storage)
    with storage.read() as tx:  # BEGIN hits the dead socket, reconnects, starts again
        assert tx.get_key("k1") == key("k1")
        assert storage._state().conn.info.backend_pid != killed
    with storage.transaction() as tx:
        tx.put_tags("k1", {"a": "b"})
    # Dying mid-transaction fails that transaction only.
    with pytest.raises(StorageError), storage.transaction() as tx:
        tx.put_tags("k1", {"c": "d"})
        _terminate_backend(storage)
        tx.put_tags("k1", {"e": "f"})
    with storage.read() as tx:
        assert [t.tag_key for t in tx.list_tags("k1", None, 10)] == ["a"]


@pytest.mark.postgres
def test_postgres_session_settings(pg_storage: PostgresStorage) -> None:
    storage = pg_storage
    with storage.read():
        conn = storage._state().conn
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
    with storage.transaction():
        conn = storage._state().conn
        assert conn.execute("SHOW transaction_isolation").fetchone() == ("read committed",)
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("off",)


# ------------------------------------------------------------------------------------------- helpers


def _in_thread(fn: Callable[[], object]) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert errors == []


def _write_description(storage: Storage, key_id: str, description: str) -> None:
    with storage.transaction() as tx:
        current = tx.get_key(key_id)
        assert current is not None
        tx.update_key(dataclasses.replace(current, description=description))


def _read_key(storage: Storage, key_id: str) -> None:
    with storage.read() as tx:
        tx.get_key(key_id)


def _raw_execute(storage: Storage, statement: str) -> None:
    if isinstance(storage, SQLiteStorage):
        with sqlite3.connect(storage.path) as conn:
            conn.execute(statement)
        conn.close()
    elif isinstance(storage, PostgresStorage):
        with psycopg.connect(storage._url, autocommit=True) as pg:
            pg.execute(statement)


def _terminate_backend(storage: PostgresStorage) -> int:
    pid = storage._state().conn.info.backend_pid
    with psycopg.connect(postgres_admin_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # pg_terminate_backend only signals; wait until the session is really gone.
        for _ in range(200):
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None:
                return pid
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not go away")
