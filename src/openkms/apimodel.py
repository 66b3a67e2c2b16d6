"""The AWS KMS API model, loaded once from botocore's ``kms/2014-11-01/service-2.json``.

Operation names, shapes, limits, enums, ``sensitive`` flags and declared errors all come from here, so nothing
is retyped by hand (STYLE.md rule 7). Only botocore's bundled data is searched: a model dropped into
``~/.aws/models`` must not change what the server accepts. Returned mappings are shared; do not mutate them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from botocore.loaders import Loader

Shape = Mapping[str, Any]

# Errors any operation may answer although the model does not declare them per operation: AWS's "common
# errors" plus the ones our protocol layer raises before an operation runs (framing, auth, sealing, limits).
COMMON_ERRORS: frozenset[str] = frozenset(
    {
        "AccessDeniedException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "KMSInternalException",
        "MissingAuthenticationToken",
        "RequestEntityTooLargeException",
        "SerializationException",
        "ServiceUnavailableException",
        "ThrottlingException",
        "UnknownOperationException",
        "UnrecognizedClientException",
        "UnsupportedOperationException",
        "ValidationException",
    }
)


@functools.cache
def _service() -> Mapping[str, Any]:
    loader = Loader(extra_search_paths=[Loader.BUILTIN_DATA_PATH], include_default_search_paths=False)
    model: Mapping[str, Any] = loader.load_service_model("kms", "service-2")
    return model


def _operation(name: str) -> Mapping[str, Any]:
    operation: Mapping[str, Any] = _service()["operations"][name]
    return operation


@functools.cache
def operation_names() -> frozenset[str]:
    """Every operation in the model; ``X-Amz-Target`` names outside it are unknown operations."""
    return frozenset(_service()["operations"])


def input_shape(operation: str) -> str | None:
    """The name of ``operation``'s input structure (``KeyError`` for an unknown operation)."""
    ref = _operation(operation).get("input")
    return None if ref is None else str(ref["shape"])


def output_shape(operation: str) -> str | None:
    ref = _operation(operation).get("output")
    return None if ref is None else str(ref["shape"])


def shape(name: str) -> Shape:
    """The raw model shape (``type``, ``members``, ``min``, ``max``, ``enum``, ``pattern``, ``sensitive`` ...)."""
    found: Shape = _service()["shapes"][name]
    return found


def is_sensitive(shape_name: str) -> bool:
    """Whether values of this shape must never be logged, audited or echoed in an error message."""
    return bool(shape(shape_name).get("sensitive", False))


@functools.cache
def declared_errors(operation: str) -> frozenset[str]:
    """Error codes the model declares for ``operation``; KMS error shapes are named after their codes."""
    codes = set()
    for ref in _operation(operation).get("errors", ()):
        error_shape = shape(ref["shape"])
        codes.add(str(error_shape.get("error", {}).get("code", ref["shape"])))
    return frozenset(codes)
