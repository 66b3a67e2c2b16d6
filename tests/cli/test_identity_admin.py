"""``openkms.identity``, the back end of ``openkms iam``, init and the dev server: what holds across
processes and engines rather than through one command (the administrator policy, concurrent writers
against the inline-policy limit)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms import identity
from openkms.clock import FrozenClock
from openkms.storage.ports import Storage
from openkms.storage.postgres import PostgresStorage
from openkms.storage.sqlite import SQLiteStorage
from tests.pg_helpers import create_temp_database, drop_database

ACCOUNT = "111122223333"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A migrated database with one account and the user alice."""
    url = None
    if request.param == "sqlite":
        s: Storage = SQLiteStorage(tmp_path / "openkms.db")
    else:
        url = create_temp_database()
        s = PostgresStorage(url)
    try:
        s.migrate()
        clock = FrozenClock(1_700_000_000.0)
        identity.ensure_account(s, ACCOUNT, clock)
        identity.create_user(s, ACCOUNT, "alice", clock)
        yield s
    finally:
        s.close()
        if url is not None:
            drop_database(url)


def test_ensure_administrator_policy_is_idempotent_and_repairs(storage: Storage) -> None:
    assert identity.ensure_administrator_policy(storage, ACCOUNT, "alice") is True
    assert identity.ensure_administrator_policy(storage, ACCOUNT, "alice") is False  # nothing written
    assert identity.list_user_policies(storage, ACCOUNT, "alice") == {
        identity.ADMINISTRATOR_POLICY_NAME: identity.ADMINISTRATOR_POLICY
    }
    narrowed = json.dumps({"Statement": {"Effect": "Allow", "Action": "kms:Describe*", "Resource": "*"}})
    identity.put_user_policy(storage, ACCOUNT, "alice", identity.ADMINISTRATOR_POLICY_NAME, narrowed)
    assert identity.ensure_administrator_policy(storage, ACCOUNT, "alice") is True
    assert identity.get_user_policy(storage, ACCOUNT, "alice", identity.ADMINISTRATOR_POLICY_NAME) == (
        identity.ADMINISTRATOR_POLICY
    )
    with pytest.raises(identity.IdentityError, match="no user nobody"):
        identity.ensure_administrator_policy(storage, ACCOUNT, "nobody")


def _policy(size: int, sid: str) -> str:
    base = {"Statement": [{"Sid": sid, "Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}
    pad = size - identity.policy_size(json.dumps(base))
    base["Statement"][0]["Sid"] = sid + "a" * pad
    text = json.dumps(base)
    assert identity.policy_size(text) == size
    return text


def _put_racing(storage: Storage, name: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
    barrier.wait()
    try:
        identity.put_user_policy(storage, ACCOUNT, "alice", name, _policy(1100, name))
        outcomes.append("ok")
    except identity.IdentityError as exc:
        outcomes.append("refused" if "limit is 2048" in str(exc) else str(exc))


@pytest.mark.timeout(120)
def test_concurrent_puts_cannot_both_pass_the_aggregate_limit(storage: Storage) -> None:
    """Two writers each adding 1,100 characters to an empty user: only one fits under 2,048. The user's row is
    locked before the sizes are read, so the second writer sees the first one's policy."""
    for round_ in range(5):
        identity.delete_user(storage, ACCOUNT, "alice")
        identity.create_user(storage, ACCOUNT, "alice", FrozenClock(1.0))
        barrier = threading.Barrier(2)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=_put_racing, args=(storage, f"P{round_}x{i}", barrier, outcomes)) for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == ["ok", "refused"]
        assert len(identity.list_user_policies(storage, ACCOUNT, "alice")) == 1


def test_identity_names_follow_iam(storage: Storage) -> None:
    clock = FrozenClock(1.0)
    for good in ("a", "A-z_0.9+=,@", "x" * 64):
        identity.validate_user_name(good)
        identity.validate_group_name(good)
    for bad in ("", "x" * 65, "caf\u00e9", "sp ace", "sl/ash", "star*"):
        with pytest.raises(identity.IdentityError, match="user name"):
            identity.create_user(storage, ACCOUNT, bad, clock)
        with pytest.raises(identity.IdentityError, match="group name"):
            identity.create_group(storage, ACCOUNT, bad, clock)
    identity.validate_policy_name("p" * 128)
    for bad in ("", "p" * 129, "sp ace", "caf\u00e9", "a/b"):
        with pytest.raises(identity.IdentityError, match="policy name"):
            identity.validate_policy_name(bad)
