"""AWS JSON 1.1 framing: ``X-Amz-Target`` -> operation, content types, response headers."""

from __future__ import annotations

from openkms import apimodel as model
from openkms.errors import SerializationException, UnknownOperationException

TARGET_PREFIX = "TrentService."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# boto3 and the CLI send x-amz-json-1.1; some hand-written clients send plain JSON, which AWS also takes.
ACCEPTED_CONTENT_TYPES = frozenset({JSON_CONTENT_TYPE, "application/json", "application/x-amz-json-1.0"})


def operation_from_target(target: str | None) -> str:
    """The operation a request names; the prefix and the name are case-sensitive, as at AWS."""
    if target is None or not target.startswith(TARGET_PREFIX):
        raise UnknownOperationException("")
    name = target[len(TARGET_PREFIX) :]
    if name not in model.operation_names():
        raise UnknownOperationException("")
    return name


def known_operation(target: str | None) -> str | None:
    """The operation ``target`` names if it is one of the model's, else None (for the audit record)."""
    try:
        return operation_from_target(target)
    except UnknownOperationException:
        return None


def check_content_type(content_type: str | None) -> None:
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        raise SerializationException(f"Content-Type {media_type[:64]} is not supported; use {JSON_CONTENT_TYPE}.")
