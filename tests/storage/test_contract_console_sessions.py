"""The storage contract for console sessions, on every engine: a session lives and dies with its access key."""

from __future__ import annotations

import pytest

from openkms.storage.ports import DuplicateError, Storage
from openkms.storage.records import ConsoleSessionRecord
from tests.storage.support import ACCOUNT, access_key, user


def _signed_in(storage: Storage, *sessions: tuple[str, str, float]) -> None:
    with storage.transaction() as tx:
        tx.insert_account(ACCOUNT, 1.0)
        tx.insert_user(user("alice"))
        tx.insert_user(user("bob"))
        tx.insert_access_key(access_key("AKIAALICE00000000001", "alice"))
        tx.insert_access_key(access_key("AKIAALICE00000000002", "alice"))
        tx.insert_access_key(access_key("AKIABOB0000000000001", "bob"))
        for digest, access_key_id, expires_at in sessions:
            tx.insert_console_session(ConsoleSessionRecord(digest, access_key_id, 10.0, expires_at))


def _digests(storage: Storage, *digests: str) -> list[str]:
    with storage.read() as tx:
        return [d for d in digests if tx.get_console_session(d) is not None]


def test_a_session_round_trips_and_a_second_with_the_same_digest_is_refused(storage: Storage) -> None:
    _signed_in(storage, ("d1", "AKIAALICE00000000001", 100.0))
    with storage.read() as tx:
        assert tx.get_console_session("d1") == ConsoleSessionRecord("d1", "AKIAALICE00000000001", 10.0, 100.0)
        assert tx.get_console_session("missing") is None
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_console_session(ConsoleSessionRecord("d1", "AKIABOB0000000000001", 10.0, 100.0))


def test_sign_out_and_expiry_remove_only_their_sessions(storage: Storage) -> None:
    _signed_in(
        storage,
        ("old", "AKIAALICE00000000001", 50.0),
        ("edge", "AKIAALICE00000000001", 60.0),
        ("new", "AKIAALICE00000000001", 500.0),
        ("bob", "AKIABOB0000000000001", 500.0),
    )
    with storage.transaction() as tx:
        assert tx.delete_expired_console_sessions(60.0) == 2  # expired at or before now
        tx.delete_console_session("bob")
    assert _digests(storage, "old", "edge", "new", "bob") == ["new"]


def test_deleting_an_access_key_or_its_user_ends_its_sessions(storage: Storage) -> None:
    _signed_in(
        storage,
        ("a1", "AKIAALICE00000000001", 500.0),
        ("a2", "AKIAALICE00000000002", 500.0),
        ("b1", "AKIABOB0000000000001", 500.0),
    )
    with storage.transaction() as tx:
        tx.delete_access_key("AKIAALICE00000000001")
    assert _digests(storage, "a1", "a2", "b1") == ["a2", "b1"]
    with storage.transaction() as tx:
        tx.delete_user(ACCOUNT, "alice")
    assert _digests(storage, "a1", "a2", "b1") == ["b1"]
