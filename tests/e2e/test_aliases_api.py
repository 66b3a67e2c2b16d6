"""Aliases over HTTP with boto3: CreateAlias, UpdateAlias, DeleteAlias and ListAliases, on every storage engine.

AWS is the reference: an alias name begins with ``alias/``, has 1-256 characters from [a-zA-Z0-9/_-] and must
not begin with ``alias/aws/`` (reserved for AWS managed keys) - InvalidAliasNameException (a name without the
prefix: ValidationException, as AWS sends it); names are unique per
account and Region (AlreadyExistsException); TargetKeyId takes a key id or key ARN; a key has at most 50 aliases
(https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html, LimitExceededException); ListAliases
Limit is 1-100 and defaults to 50. Key state table
(https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html): CreateAlias on a PendingDeletion key is
KMSInvalidStateException; DeleteAlias always works; UpdateAlias fails only when the *new* target is pending
deletion.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kmsapi import (
    GARBAGE_KEY_ID,
    alias_arn,
    assert_close,
    expect_error,
    key_arn,
    new_key,
    raw_client,
    unique_alias,
    unknown_key_id,
    utcnow,
    walk_pages,
)
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def raw(server: ServerProcess) -> Any:
    return raw_client(server)


def _aliases_of(kms: Any, key_ref: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in kms.get_paginator("list_aliases").paginate(KeyId=key_ref):
        for entry in page["Aliases"]:
            assert entry["AliasName"] not in found, "alias listed twice"
            found[entry["AliasName"]] = entry
    return found


# -- CreateAlias ----------------------------------------------------------------------------------------------


def test_create_alias_and_list_it(kms: Any, key_id: str) -> None:
    """ListAliases entries carry AliasName, AliasArn, TargetKeyId (a key id), CreationDate and LastUpdatedDate."""
    now = utcnow()
    by_id = unique_alias("by-id")
    by_arn = unique_alias("by-arn")
    kms.create_alias(AliasName=by_id, TargetKeyId=key_id)
    kms.create_alias(AliasName=by_arn, TargetKeyId=key_arn(key_id))
    for ref in (key_id, key_arn(key_id)):
        listed = _aliases_of(kms, ref)
        assert set(listed) == {by_id, by_arn}
    for name, entry in _aliases_of(kms, key_id).items():
        assert entry["AliasArn"] == alias_arn(name)
        assert entry["TargetKeyId"] == key_id
        assert_close(entry["CreationDate"], now)
        assert_close(entry["LastUpdatedDate"], now)
    for name in (by_id, by_arn):
        assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == key_arn(key_id)


def test_create_alias_that_exists_is_already_exists(kms: Any, key_id: str) -> None:
    name = unique_alias("taken")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id), "AlreadyExistsException")
    other = new_key(kms, "other")
    expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=other), "AlreadyExistsException")
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key_id


@pytest.mark.parametrize(
    ("name", "error"),
    [
        # Without the alias/ prefix AWS sends ValidationException (recorded responses), not the documented
        # InvalidAliasNameException.
        ("no-prefix", "ValidationException"),
        ("aliasx/name", "ValidationException"),
        ("alias/aws/reserved", "InvalidAliasNameException"),
        ("alias/aws/", "InvalidAliasNameException"),
    ],
    ids=["no-prefix", "wrong-prefix", "aws-reserved", "aws-reserved-empty"],
)
def test_create_alias_with_an_invalid_name(kms: Any, key_id: str, name: str, error: str) -> None:
    expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id), error)
    assert _aliases_of(kms, key_id) == {}


def test_create_alias_name_longer_than_256_characters(kms: Any, key_id: str) -> None:
    name = "alias/" + "a" * 250
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.delete_alias(AliasName=name)
    expect_error(lambda: kms.create_alias(AliasName=name + "b", TargetKeyId=key_id), "ValidationException")


def test_create_alias_target_must_be_a_key_id_or_key_arn(kms: Any, key_id: str) -> None:
    """TargetKeyId takes a key id or key ARN; an alias name or alias ARN, an unknown key or garbage is
    NotFoundException."""
    existing = unique_alias("existing")
    kms.create_alias(AliasName=existing, TargetKeyId=key_id)
    missing = unknown_key_id()
    for target in (existing, alias_arn(existing), missing, key_arn(missing), GARBAGE_KEY_ID):
        name = unique_alias("bad-target")
        expect_error(kms.create_alias, "NotFoundException", AliasName=name, TargetKeyId=target)
        expect_error(kms.describe_key, "NotFoundException", KeyId=name)


def test_create_alias_on_a_key_pending_deletion(kms: Any, key_id: str) -> None:
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    name = unique_alias("pending")
    expect_error(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id), "KMSInvalidStateException")
    assert _aliases_of(kms, key_id) == {}


def test_create_alias_on_a_disabled_key(kms: Any, key_id: str) -> None:
    kms.disable_key(KeyId=key_id)
    name = unique_alias("disabled")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    expect_error(lambda: kms.encrypt(KeyId=name, Plaintext=b"x"), "DisabledException")


def test_a_key_has_at_most_fifty_aliases(kms: Any, key_id: str) -> None:
    """Resource quota "Aliases per KMS key: 50"; exceeding it is LimitExceededException."""
    prefix = unique_alias("fifty")
    names = [f"{prefix}-{n:02d}" for n in range(50)]
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    expect_error(lambda: kms.create_alias(AliasName=f"{prefix}-50", TargetKeyId=key_id), "LimitExceededException")
    page = kms.list_aliases(KeyId=key_id)
    assert sorted(a["AliasName"] for a in page["Aliases"]) == names, "default Limit is 50"
    assert page["Truncated"] is False
    # The account now has more than 50 aliases: an unfiltered ListAliases stops at the default limit of 50.
    kms.create_alias(AliasName=f"{prefix}-other", TargetKeyId=new_key(kms, "other"))
    unfiltered = kms.list_aliases()
    assert len(unfiltered["Aliases"]) <= 50
    assert unfiltered["Truncated"] is True
    kms.delete_alias(AliasName=names[0])
    kms.create_alias(AliasName=f"{prefix}-50", TargetKeyId=key_id)


# -- UpdateAlias ----------------------------------------------------------------------------------------------


def test_update_alias_points_it_at_another_key(kms: Any, key_id: str) -> None:
    name = unique_alias("moving")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    created = _aliases_of(kms, key_id)[name]
    target = new_key(kms, "new-target")
    blob = kms.encrypt(KeyId=name, Plaintext=b"old target")["CiphertextBlob"]
    kms.update_alias(AliasName=name, TargetKeyId=key_arn(target))
    assert name not in _aliases_of(kms, key_id)
    moved = _aliases_of(kms, target)[name]
    assert moved["TargetKeyId"] == target
    assert moved["CreationDate"] == created["CreationDate"]
    assert moved["LastUpdatedDate"] >= created["LastUpdatedDate"]
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == key_arn(target)
    assert kms.describe_key(KeyId=alias_arn(name))["KeyMetadata"]["KeyId"] == target
    expect_error(lambda: kms.decrypt(CiphertextBlob=blob, KeyId=name), "IncorrectKeyException")
    kms.update_alias(AliasName=name, TargetKeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob, KeyId=name)["Plaintext"] == b"old target"


def test_update_alias_errors(kms: Any, key_id: str) -> None:
    """UpdateAlias of a missing alias is NotFoundException; TargetKeyId takes a key id or key ARN only; a new
    target pending deletion is KMSInvalidStateException."""
    expect_error(lambda: kms.update_alias(AliasName=unique_alias("missing"), TargetKeyId=key_id), "NotFoundException")
    name = unique_alias("update-errors")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    other_alias = unique_alias("other")
    kms.create_alias(AliasName=other_alias, TargetKeyId=new_key(kms, "other"))
    missing = unknown_key_id()
    for target in (other_alias, alias_arn(other_alias), missing, key_arn(missing), GARBAGE_KEY_ID):
        expect_error(kms.update_alias, "NotFoundException", AliasName=name, TargetKeyId=target)
    doomed = new_key(kms, "doomed")
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    expect_error(lambda: kms.update_alias(AliasName=name, TargetKeyId=doomed), "KMSInvalidStateException")
    assert _aliases_of(kms, key_id)[name]["TargetKeyId"] == key_id


def test_update_alias_away_from_a_key_pending_deletion(kms: Any, key_id: str) -> None:
    """Key state table note: if the current target is pending deletion, UpdateAlias succeeds."""
    name = unique_alias("rescue")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    target = new_key(kms, "rescuer")
    kms.update_alias(AliasName=name, TargetKeyId=target)
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == key_arn(target)


# -- DeleteAlias ----------------------------------------------------------------------------------------------


def test_delete_alias(kms: Any, key_id: str) -> None:
    name = unique_alias("deleted")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.delete_alias(AliasName=name)
    assert name not in _aliases_of(kms, key_id)
    expect_error(lambda: kms.encrypt(KeyId=name, Plaintext=b"x"), "NotFoundException")
    expect_error(lambda: kms.delete_alias(AliasName=name), "NotFoundException")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    assert name in _aliases_of(kms, key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled", "the key is not affected"


def test_delete_alias_of_a_key_pending_deletion(kms: Any, key_id: str) -> None:
    name = unique_alias("pending-delete")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert set(_aliases_of(kms, key_id)) == {name}, "ListAliases works for a key pending deletion"
    kms.delete_alias(AliasName=name)
    assert _aliases_of(kms, key_id) == {}


# -- ListAliases ----------------------------------------------------------------------------------------------


def test_list_aliases_pagination_visits_every_alias_exactly_once(kms: Any, key_id: str) -> None:
    mine = {unique_alias(f"page{n}") for n in range(5)}
    for name in mine:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)

    filtered = walk_pages(kms.list_aliases, "Aliases", 2, KeyId=key_id)
    names = [a["AliasName"] for page in filtered for a in page["Aliases"]]
    assert sorted(names) == sorted(mine)
    assert len(filtered) == 3
    assert [p["Truncated"] for p in filtered] == [True, True, False]

    whole = kms.list_aliases(Limit=100)
    pages = walk_pages(kms.list_aliases, "Aliases", 2)
    seen = [a["AliasName"] for page in pages for a in page["Aliases"]]
    assert len(seen) == len(set(seen)), "an alias was listed twice"
    assert mine <= set(seen)
    if not whole["Truncated"]:
        assert set(seen) == {a["AliasName"] for a in whole["Aliases"]}
    for page in pages:
        for entry in page["Aliases"]:
            assert entry["AliasArn"] == alias_arn(entry["AliasName"]), entry


def test_list_aliases_errors(kms: Any, raw: Any) -> None:
    expect_error(lambda: kms.list_aliases(Marker="not-a-marker"), "InvalidMarkerException")
    tags_key = new_key(kms, "marker", Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    tags_marker = kms.list_resource_tags(KeyId=tags_key, Limit=1)["NextMarker"]
    expect_error(lambda: kms.list_aliases(Marker=tags_marker), "InvalidMarkerException")
    expect_error(lambda: raw.list_aliases(Limit=0), "ValidationException")
    missing = unknown_key_id()
    for ref in (missing, key_arn(missing), GARBAGE_KEY_ID):
        expect_error(kms.list_aliases, "NotFoundException", KeyId=ref)


def test_list_aliases_of_a_key_without_aliases(kms: Any, key_id: str) -> None:
    listed = kms.list_aliases(KeyId=key_id)
    assert listed["Aliases"] == []
    assert listed["Truncated"] is False
