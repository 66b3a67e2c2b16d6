"""Tags over HTTP with boto3: TagResource, UntagResource and ListResourceTags, on every storage engine.

AWS is the reference (KMS API Reference, TagResource / UntagResource / ListResourceTags): KeyId is a key id or
key ARN; tagging an existing tag key replaces its value; the value may be empty; tag keys beginning with
``aws:`` are reserved (TagException); a key has at most 50 tags (more than 50 in one request: TagException 'Too
many tags', as AWS answers; more with the key's own: LimitExceededException); UntagResource of a tag
key the key does not have "doesn't throw an exception"; ListResourceTags Limit is 1-50 and defaults to 50. Key
state table (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html): TagResource and
UntagResource fail on a PendingDeletion key with KMSInvalidStateException; ListResourceTags always works.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kmsapi import (
    GARBAGE_KEY_ID,
    alias_arn,
    expect_error,
    key_arn,
    raw_client,
    unique_alias,
    unknown_key_id,
    walk_pages,
)
from tests.e2e.principals import ADMINISTRATOR, allow, make_user, put_policy
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def raw(server: ServerProcess) -> Any:
    return raw_client(server)


def _tags(kms: Any, key_ref: str) -> dict[str, str]:
    page = kms.list_resource_tags(KeyId=key_ref)
    assert page["Truncated"] is False
    return {t["TagKey"]: t["TagValue"] for t in page["Tags"]}


def _tag_list(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"TagKey": f"{prefix}{n:02d}", "TagValue": f"v{n}"} for n in range(count)]


def test_tag_list_overwrite_and_untag(kms: Any, key_id: str) -> None:
    assert _tags(kms, key_id) == {}
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "empty", "TagValue": ""}])
    assert _tags(kms, key_id) == {"env": "prod", "empty": ""}
    kms.tag_resource(KeyId=key_arn(key_id), Tags=[{"TagKey": "env", "TagValue": "staging"}])
    assert _tags(kms, key_arn(key_id)) == {"env": "staging", "empty": ""}, "tagging an existing key replaces its value"
    kms.untag_resource(KeyId=key_id, TagKeys=["empty"])
    assert _tags(kms, key_id) == {"env": "staging"}
    kms.untag_resource(KeyId=key_arn(key_id), TagKeys=["env"])
    assert _tags(kms, key_id) == {}


def test_tag_keys_and_values_are_case_sensitive(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "Env", "TagValue": "A"}, {"TagKey": "env", "TagValue": "a"}])
    assert _tags(kms, key_id) == {"Env": "A", "env": "a"}
    kms.untag_resource(KeyId=key_id, TagKeys=["ENV"])
    assert _tags(kms, key_id) == {"Env": "A", "env": "a"}


def test_untag_of_a_missing_tag_key_is_fine(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "keep", "TagValue": "1"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["never-set", "also-missing"])
    assert _tags(kms, key_id) == {"keep": "1"}


@pytest.mark.parametrize("reserved", ["aws:owner", "AWS:owner", "Aws:x"])
def test_reserved_tag_keys_are_refused(kms: Any, key_id: str, reserved: str) -> None:
    expect_error(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": reserved, "TagValue": "x"}]),
        "TagException",
    )
    assert _tags(kms, key_id) == {}


def test_a_key_has_at_most_fifty_tags(kms: Any, key_id: str) -> None:
    # 51 tags in one request is refused as AWS does (recorded responses): TagException 'Too many tags'.
    exc = expect_error(lambda: kms.tag_resource(KeyId=key_id, Tags=_tag_list(51)), "TagException")
    assert exc.response["Error"]["Message"] == "Too many tags"
    assert _tags(kms, key_id) == {}, "a refused request must not tag partially"
    kms.tag_resource(KeyId=key_id, Tags=_tag_list(50))
    assert len(_tags(kms, key_id)) == 50
    expect_error(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "one-more", "TagValue": "x"}]),
        "LimitExceededException",
    )
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k00", "TagValue": "replaced"}])
    assert _tags(kms, key_id)["k00"] == "replaced", "replacing a value adds no tag"
    kms.untag_resource(KeyId=key_id, TagKeys=["k01"])
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "one-more", "TagValue": "x"}])
    assert len(_tags(kms, key_id)) == 50


def test_tag_length_limits(kms: Any, key_id: str) -> None:
    """TagKey is 1-128 characters, TagValue 0-256."""
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k" * 128, "TagValue": "v" * 256}])
    assert _tags(kms, key_id) == {"k" * 128: "v" * 256}
    for tag in ({"TagKey": "k" * 129, "TagValue": "v"}, {"TagKey": "k", "TagValue": "v" * 257}):
        expect_error(kms.tag_resource, "ValidationException", KeyId=key_id, Tags=[tag])


def test_list_resource_tags_pagination(kms: Any, raw: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=_tag_list(5))
    pages = walk_pages(kms.list_resource_tags, "Tags", 2, KeyId=key_id)
    assert [len(p["Tags"]) for p in pages] == [2, 2, 1]
    seen = [t["TagKey"] for page in pages for t in page["Tags"]]
    assert sorted(seen) == [f"k{n:02d}" for n in range(5)]
    exact = kms.list_resource_tags(KeyId=key_id, Limit=5)
    assert len(exact["Tags"]) == 5 and exact["Truncated"] is False
    expect_error(lambda: kms.list_resource_tags(KeyId=key_id, Marker="not-a-marker"), "InvalidMarkerException")
    expect_error(lambda: raw.list_resource_tags(KeyId=key_id, Limit=0), "ValidationException")


def test_list_resource_tags_default_limit_is_fifty(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=_tag_list(50))
    page = kms.list_resource_tags(KeyId=key_id)
    assert len(page["Tags"]) == 50
    assert page["Truncated"] is False


def test_tags_on_a_key_pending_deletion(kms: Any, key_id: str) -> None:
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "before", "TagValue": "1"}])
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    expect_error(
        lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "after", "TagValue": "2"}]),
        "KMSInvalidStateException",
    )
    expect_error(lambda: kms.untag_resource(KeyId=key_id, TagKeys=["before"]), "KMSInvalidStateException")
    assert _tags(kms, key_id) == {"before": "1"}


def test_tags_on_a_disabled_key(kms: Any, key_id: str) -> None:
    kms.disable_key(KeyId=key_id)
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "state", "TagValue": "disabled"}])
    assert _tags(kms, key_id) == {"state": "disabled"}
    kms.untag_resource(KeyId=key_id, TagKeys=["state"])
    assert _tags(kms, key_id) == {}


def test_tag_operations_take_a_key_id_or_key_arn_only(kms: Any, key_id: str) -> None:
    """An alias name or alias ARN is InvalidArnException (as AWS answers), an unknown key or garbage
    NotFoundException."""
    alias = unique_alias("tags")
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    missing = unknown_key_id()
    tag = [{"TagKey": "t", "TagValue": "v"}]
    for ref in (alias, alias_arn(alias), missing, key_arn(missing), GARBAGE_KEY_ID):
        error = "InvalidArnException" if "alias/" in ref else "NotFoundException"
        expect_error(kms.tag_resource, error, KeyId=ref, Tags=tag)
        expect_error(kms.untag_resource, error, KeyId=ref, TagKeys=["t"])
        expect_error(kms.list_resource_tags, error, KeyId=ref)
    assert _tags(kms, key_id) == {}


# -- tag keys that differ only in case, under aws:ResourceTag (issue 15, item 12) --------------------------------

_ENV_IS_DEV = {"StringEquals": {"aws:ResourceTag/env": "dev"}}
_ENV_IS_PROD = {"StringEquals": {"aws:ResourceTag/env": "prod"}}


def deny(actions: str, **extra: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": actions, "Resource": "*", **extra}]}


def _key_tagged(kms: Any, *tags: tuple[str, str]) -> str:
    """A key given ``tags`` one TagResource call at a time, in this order."""
    key: str = kms.create_key(Description="case collision")["KeyMetadata"]["KeyId"]
    for tag_key, tag_value in tags:
        kms.tag_resource(KeyId=key, Tags=[{"TagKey": tag_key, "TagValue": tag_value}])
    return key


@pytest.mark.parametrize("tags", [(("env", "prod"), ("Env", "dev")), (("Env", "dev"), ("env", "prod"))])
def test_a_tag_key_in_two_cases_never_allows_and_always_denies(
    server: ServerProcess, kms: Any, tags: tuple[tuple[str, str], ...]
) -> None:
    """``aws:ResourceTag/env`` names both ``env`` and ``Env`` (condition key names are case-insensitive, KMS tag
    keys are not). Neither value is picked, whatever the order the tags were added in: an Allow on the key
    fails and a Deny on it holds (docs/policies.md)."""
    collided = _key_tagged(kms, *tags)
    plain_dev = _key_tagged(kms, ("env", "dev"))
    plain_prod = _key_tagged(kms, ("env", "prod"))
    allowed_on_dev = make_user(server, "dev-only", policy=allow("kms:Encrypt", Condition=_ENV_IS_DEV))
    allowed_on_dev.kms.encrypt(KeyId=key_arn(plain_dev), Plaintext=b"p")
    expect_error(allowed_on_dev.kms.encrypt, "AccessDeniedException", KeyId=key_arn(collided), Plaintext=b"p")
    denied_on_prod = make_user(server, "not-prod", policy=ADMINISTRATOR)
    put_policy(server, denied_on_prod.name, deny("kms:Encrypt", Condition=_ENV_IS_PROD), name="deny")
    denied_on_prod.kms.encrypt(KeyId=key_arn(plain_dev), Plaintext=b"p")
    expect_error(denied_on_prod.kms.encrypt, "AccessDeniedException", KeyId=key_arn(plain_prod), Plaintext=b"p")
    expect_error(denied_on_prod.kms.encrypt, "AccessDeniedException", KeyId=key_arn(collided), Plaintext=b"p")
    kms.untag_resource(KeyId=collided, TagKeys=["Env"])  # one spelling left: the tag decides again
    assert _tags(kms, collided) == {"env": "prod"}
    expect_error(allowed_on_dev.kms.encrypt, "AccessDeniedException", KeyId=key_arn(collided), Plaintext=b"p")
    kms.tag_resource(KeyId=collided, Tags=[{"TagKey": "env", "TagValue": "dev"}])
    allowed_on_dev.kms.encrypt(KeyId=key_arn(collided), Plaintext=b"p")
