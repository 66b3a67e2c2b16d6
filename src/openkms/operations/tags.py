"""TagResource, UntagResource, ListResourceTags; tags are per key and name environments and data classes."""

from __future__ import annotations

from typing import Any

from openkms.context import RequestContext
from openkms.errors import LimitExceededException, TagException
from openkms.operations import keyrefs, keystates, paging
from openkms.operations.registry import Params, Result, operation
from openkms.operations.services import Services

# AWS: at most 50 tags per KMS key; keys beginning with "aws:" are reserved for AWS.
MAX_TAGS_PER_KEY = 50
RESERVED_PREFIX = "aws:"


# AWS's own words (recorded responses, issue 18 item 8): no trailing period on any of them.
RESERVED_MESSAGE = "Tags beginning with aws: are reserved"
DUPLICATE_MESSAGE = "Duplicate tag keys"
TOO_MANY_MESSAGE = "Too many tags"


def validate_new_tags(tags: list[dict[str, Any]]) -> dict[str, str]:
    """Turn the wire list into a dict, refusing reserved and duplicate keys and more than 50 tags in one request
    (CreateKey and TagResource alike), each with AWS's TagException."""
    result: dict[str, str] = {}
    for tag in tags:
        tag_key: str = tag["TagKey"]
        if tag_key.lower().startswith(RESERVED_PREFIX):
            raise TagException(RESERVED_MESSAGE)
        if tag_key in result:
            raise TagException(DUPLICATE_MESSAGE)
        result[tag_key] = tag["TagValue"]
    if len(result) > MAX_TAGS_PER_KEY:
        raise TagException(TOO_MANY_MESSAGE)
    return result


@operation("TagResource")
def tag_resource(svc: Services, ctx: RequestContext, params: Params) -> Result:
    new_tags = validate_new_tags(params["Tags"])
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        keystates.require_not_pending_deletion(key)
        existing = {t.tag_key for t in tx.list_tags(key.key_id, None, MAX_TAGS_PER_KEY + 1)}
        if len(existing | set(new_tags)) > MAX_TAGS_PER_KEY:
            raise LimitExceededException(f"A KMS key can have at most {MAX_TAGS_PER_KEY} tags.")
        tx.put_tags(key.key_id, new_tags)
    return {}


@operation("UntagResource")
def untag_resource(svc: Services, ctx: RequestContext, params: Params) -> Result:
    tag_keys: list[str] = params["TagKeys"]
    if any(k.lower().startswith(RESERVED_PREFIX) for k in tag_keys):
        raise TagException(RESERVED_MESSAGE)
    with svc.storage.transaction() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        keyrefs.require_customer_managed(key, ctx)
        keystates.require_not_pending_deletion(key)
        tx.delete_tags(key.key_id, tag_keys)
    return {}


@operation("ListResourceTags")
def list_resource_tags(svc: Services, ctx: RequestContext, params: Params) -> Result:
    limit = min(int(params.get("Limit", 50)), 50)
    after = paging.decode_marker("tags", params.get("Marker"))
    with svc.storage.read() as tx:
        key = keyrefs.resolve_key(tx, ctx, params["KeyId"], allow_alias=False)
        found = tx.list_tags(key.key_id, after, limit + 1)
    page, page_fields = paging.page_result(found, limit, "tags", lambda t: t.tag_key)
    return {"Tags": [{"TagKey": t.tag_key, "TagValue": t.tag_value} for t in page], **page_fields}
