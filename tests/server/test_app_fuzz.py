"""docs/tests.md S-4 through the whole request path: model-valid inputs for every implemented operation.

Inputs are drawn from botocore's shapes (lengths, ranges, enums) with ``KeyId``-like members drawn from
real keys and aliases, so the handlers themselves run, not only validation. Nothing may answer 5xx, and
every error code must be one the operation declares or a common one.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openkms import apimodel as model
from openkms.operations.registry import implemented_operations
from tests.inprocess import InProcessKMS

KEY_REF_MEMBERS = {"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"}
KEY_TYPES = [
    ("RSA_2048", "ENCRYPT_DECRYPT"),
    ("RSA_2048", "SIGN_VERIFY"),
    ("ECC_NIST_P256", "SIGN_VERIFY"),
    ("ECC_NIST_P384", "KEY_AGREEMENT"),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
    ("ML_DSA_44", "SIGN_VERIFY"),
    ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
    ("HMAC_256", "GENERATE_VERIFY_MAC"),
]


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessKMS]:
    instance = InProcessKMS(Path(tmp_path_factory.mktemp("fuzz")))
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def key_refs(kms: InProcessKMS) -> list[str]:
    status, body = kms.call("CreateKey", {"Description": "fuzz"})
    assert status == 200
    meta = body["KeyMetadata"]
    assert kms.call("CreateAlias", {"AliasName": "alias/fuzz", "TargetKeyId": meta["KeyId"]})[0] == 200
    refs = [meta["KeyId"], meta["Arn"], "alias/fuzz", f"arn:aws:kms:us-east-1:{meta['AWSAccountId']}:alias/fuzz"]
    for spec, usage in KEY_TYPES:  # so that Sign, GenerateMac, Decapsulate... reach their handlers' core
        status, body = kms.call("CreateKey", {"KeySpec": spec, "KeyUsage": usage})
        assert status == 200, body
        refs.append(body["KeyMetadata"]["KeyId"])
    return refs


def _string(shape: dict[str, Any]) -> st.SearchStrategy[str]:
    if "enum" in shape:
        return st.sampled_from(shape["enum"])
    low, high = shape.get("min", 0), min(shape.get("max", 64), 64)
    return st.text(alphabet=string.ascii_letters + string.digits + "/_-", min_size=low, max_size=max(low, high))


def _value(shape_name: str, depth: int = 0) -> st.SearchStrategy[Any]:
    shape = dict(model.shape(shape_name))
    kind = shape["type"]
    if kind == "string":
        return _string(shape)
    if kind == "blob":
        low, high = shape.get("min", 0), min(shape.get("max", 256), 256)
        return st.binary(min_size=low, max_size=max(low, high)).map(lambda b: base64.b64encode(b).decode())
    if kind in ("integer", "long"):
        return st.integers(shape.get("min", -5), min(shape.get("max", 5000), 5000))
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.floats(0, 2e9)
    if kind == "list":
        low = shape.get("min", 0)
        return st.lists(_value(shape["member"]["shape"], depth + 1), min_size=low, max_size=max(low, 3))
    if kind == "map":
        return st.dictionaries(_string(dict(model.shape(shape["key"]["shape"]))), _value(shape["value"]["shape"]),
                               max_size=3)  # fmt: skip
    if kind == "structure":
        return _structure(shape_name, depth + 1, [])
    return st.none()


def _structure(shape_name: str, depth: int, refs: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    shape = model.shape(shape_name)
    members: dict[str, st.SearchStrategy[Any]] = {}
    for name, member in shape["members"].items():
        if name in KEY_REF_MEMBERS and refs:
            members[name] = st.sampled_from(refs)
        elif depth < 3:
            members[name] = _value(member["shape"], depth)
    required = set(shape.get("required", []))
    return st.fixed_dictionaries(
        {k: v for k, v in members.items() if k in required},
        optional={k: v for k, v in members.items() if k not in required},
    )


OPERATIONS = sorted(implemented_operations())


@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_5xx_and_only_declared_errors(operation: str, kms: InProcessKMS, key_refs: list[str]) -> None:
    for ref in key_refs:  # undo what earlier operations did (DisableKey, ScheduleKeyDeletion), in any order
        kms.call("CancelKeyDeletion", {"KeyId": ref})
        kms.call("EnableKey", {"KeyId": ref})
    allowed = model.declared_errors(operation) | model.COMMON_ERRORS
    shape_name = model.input_shape(operation)
    assert shape_name is not None
    seen: dict[str, int] = {}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(params=_structure(shape_name, 0, key_refs))
    def run(params: dict[str, Any]) -> None:
        status, body = kms.call(operation, params)
        assert status < 500, (operation, status, body)
        if status != 200:
            code = body["__type"]
            assert code in allowed, (operation, code, body.get("message"))
            seen[code] = seen.get(code, 0) + 1
        else:
            seen["OK"] = seen.get("OK", 0) + 1

    run()
    print(operation, dict(sorted(seen.items())))
    assert sum(seen.values()) > 0
