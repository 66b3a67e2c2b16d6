"""Pagination of List* operations: opaque markers that name where the next page starts, and the page fields."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from openkms.errors import InvalidMarkerException


def encode_marker(kind: str, last: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}\x00{last}".encode()).decode("ascii")


def decode_marker(kind: str, marker: str | None) -> str | None:
    """The position after which the next page starts; a marker from elsewhere is refused."""
    if marker is None:
        return None
    try:
        text = base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidMarkerException("Invalid marker") from None
    prefix, sep, last = text.partition("\x00")
    if prefix != kind or not sep or not last:
        raise InvalidMarkerException("Invalid marker")
    return last


def page_result(items: list[Any], limit: int, kind: str, last_of: Any) -> tuple[list[Any], dict[str, Any]]:
    """Split ``limit + 1`` fetched items into a page and its ``NextMarker``/``Truncated`` fields."""
    if len(items) > limit:
        page = items[:limit]
        return page, {"NextMarker": encode_marker(kind, last_of(page[-1])), "Truncated": True}
    return items, {"Truncated": False}
