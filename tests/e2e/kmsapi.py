"""Helpers shared by the API end-to-end tests (``test_*_api.py``): error capture, an unvalidated client,
names that never collide between tests sharing one server, and a pagination walker.

Every expectation in those tests is AWS KMS's documented behaviour; the source of each one is named in the
test's docstring or comment.
"""

from __future__ import annotations

import datetime
import re
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.server import ACCESS_KEY_ID, ACCOUNT_ID, REGION, SECRET_ACCESS_KEY, ServerProcess

KEY_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GARBAGE_KEY_ID = "this-is-not-a-key"


def key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(alias_name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:kms:{region}:{account}:{alias_name}"


def unknown_key_id() -> str:
    """A well-formed key id that names no key."""
    return str(uuid.uuid4())


def unique_alias(label: str) -> str:
    return f"alias/e2e-{label}-{secrets.token_hex(6)}"


def new_key(kms: Any, description: str = "e2e", **params: Any) -> str:
    key_id: str = kms.create_key(Description=description, **params)["KeyMetadata"]["KeyId"]
    return key_id


def fails(call: Callable[..., Any], **params: Any) -> ClientError:
    """The ClientError ``call(**params)`` raises; the test fails if it succeeds."""
    with pytest.raises(ClientError) as caught:
        result = call(**params)
        pytest.fail(f"expected an error, got {result!r}")
    return caught.value


def code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def status(exc: ClientError) -> int:
    value: int = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return value


def message(exc: ClientError) -> str:
    return str(exc.response["Error"].get("Message", ""))


def expect_error(call: Callable[..., Any], error_code: str, http_status: int = 400, **params: Any) -> ClientError:
    """Assert ``call(**params)`` fails with AWS error ``error_code`` and HTTP ``http_status``; return the error.
    (Operation parameters are capitalised, so they never collide with ``http_status``.)"""
    exc = fails(call, **params)
    assert code(exc) == error_code, exc.response
    assert status(exc) == http_status, exc.response
    return exc


def raw_client(server: ServerProcess) -> Any:
    """A client without botocore's client-side checks (it refuses values under a model ``min`` itself), so the
    server's own validation is what answers."""
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            parameter_validation=False,
        ),
    )


def walk_pages(call: Callable[..., Any], items: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Follow ``NextMarker`` from the first page to the last with ``Limit=limit``, checking on every page that
    ``Truncated`` and ``NextMarker`` agree and that no page is longer than the limit; return all pages."""
    pages: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        extra = {"Marker": marker} if marker is not None else {}
        page: dict[str, Any] = call(Limit=limit, **params, **extra)
        pages.append(page)
        assert len(page[items]) <= limit, page
        if page["Truncated"]:
            assert page.get("NextMarker"), page
            marker = page["NextMarker"]
            assert len(pages) < 10_000, "pagination does not end"
        else:
            assert "NextMarker" not in page, page
            return pages


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def assert_close(when: datetime.datetime, expected: datetime.datetime, seconds: float = 300) -> None:
    assert abs((when - expected).total_seconds()) <= seconds, (when, expected)
