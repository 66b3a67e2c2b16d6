"""Small builders shared by the policy tests: accounts, ARNs, requests, documents, fixtures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openkms import ids
from openkms.policy.document import PolicyDocument, parse_policy
from openkms.policy.request import AuthorizationRequest, ContextValue, principal_type_of

FIXTURES = Path(__file__).parent / "fixtures"

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
THIRD_ACCOUNT = "999988887777"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = ids.key_arn("us-west-2", ACCOUNT, KEY_ID)
OTHER_KEY_ARN = ids.key_arn("us-west-2", ACCOUNT, "0987dcba-09fe-87dc-65ba-ab0987654321")
ROOT = ids.root_arn(ACCOUNT)


def user(name: str, account: str = ACCOUNT) -> str:
    return ids.user_arn(account, name)


def request(
    principal: str,
    action: str = "kms:Encrypt",
    *,
    resource: str = KEY_ARN,
    context: Mapping[str, ContextValue] | None = None,
) -> AuthorizationRequest:
    """A request by ``principal`` (its account is read from the ARN) on a key of ``ACCOUNT``."""
    account = principal.split(":")[4]
    return AuthorizationRequest(
        principal_arn=principal,
        principal_account=account,
        principal_type=principal_type_of(principal),
        action=action,
        resource_arn=resource,
        resource_account=resource.split(":")[4],
        context=context or {},
    )


def statement(
    effect: Any = "Allow",
    principal: Any = None,
    action: Any = "kms:*",
    resource: Any = "*",
    **extra: Any,
) -> dict[str, Any]:
    """A statement dict; ``principal=None`` leaves the element out (identity policies)."""
    result: dict[str, Any] = {"Effect": effect}
    if principal is not None:
        result["Principal"] = principal
    if action is not None:
        result["Action"] = action
    if resource is not None:
        result["Resource"] = resource
    result.update(extra)
    return result


def document_text(*statements: dict[str, Any], version: str | None = "2012-10-17") -> str:
    body: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        body["Version"] = version
    return json.dumps(body)


def key_policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> PolicyDocument:
    return parse_policy(document_text(*statements, version=version), "key")


def identity_policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> PolicyDocument:
    return parse_policy(document_text(*statements, version=version), "identity")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text("utf-8")


def fixture_policy(name: str) -> PolicyDocument:
    return parse_policy(fixture(name), "key" if name.startswith("key_") else "identity")
