"""Model-driven validation: AWS's message shapes against real operations, conversion, and S-4 in process.

Expected limits and enum lists are read from the model, not retyped (STYLE.md rule 7); the fixed strings below
are AWS's message shapes, checked against messages AWS has returned (for example the ``Value at 'plaintext'``
form without a value, recorded by moto's AWS-verified tests).
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from openkms import apimodel as model
from openkms.errors import SerializationException, ValidationException
from openkms.server.jsonio import loads_strict
from openkms.server.validate import (
    AWS_ENUM_ORDER,
    MAX_ECHO,
    MAX_LISTED,
    _java_regex,
    enum_listing,
    serialize_output,
    validate_input,
)

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _validation_error(operation: str, params: dict[str, Any]) -> str:
    with pytest.raises(ValidationException) as caught:
        validate_input(operation, params)
    return caught.value.message


def _serialization_error(operation: str, params: dict[str, Any]) -> str:
    with pytest.raises(SerializationException) as caught:
        validate_input(operation, params)
    return caught.value.message


# -- AWS message shapes -------------------------------------------------------------------------------------


def test_missing_required_member() -> None:
    assert _validation_error("Encrypt", {"Plaintext": _b64(b"x")}) == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    )


def test_explicit_null_counts_as_missing() -> None:
    message = _validation_error("Encrypt", {"KeyId": None, "Plaintext": _b64(b"x")})
    assert message.endswith("Value null at 'keyId' failed to satisfy constraint: Member must not be null")


def test_plaintext_too_long_is_reported_without_its_value() -> None:
    plaintext = b"SECRET-" * 586  # 4102 bytes
    maximum = model.shape("PlaintextType")["max"]
    assert len(plaintext) > maximum
    encoded = _b64(plaintext)
    message = _validation_error("Encrypt", {"KeyId": KEY_ARN, "Plaintext": encoded})
    assert message == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        f"Member must have length less than or equal to {maximum}"
    )
    assert "SECRET" not in message and encoded[:16] not in message


def test_plaintext_limit_is_on_decoded_bytes() -> None:
    maximum = model.shape("PlaintextType")["max"]
    result = validate_input("Encrypt", {"KeyId": KEY_ARN, "Plaintext": _b64(b"\x00" * maximum)})
    assert result["Plaintext"] == b"\x00" * maximum
    _validation_error("Encrypt", {"KeyId": KEY_ARN, "Plaintext": _b64(b"\x00" * (maximum + 1))})


def test_empty_plaintext_matches_aws() -> None:
    assert _validation_error("Encrypt", {"KeyId": KEY_ARN, "Plaintext": ""}) == (
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_non_sensitive_blobs_are_not_echoed_either() -> None:
    message = _validation_error("Decrypt", {"CiphertextBlob": ""})
    assert message.startswith("1 validation error detected: Value at 'ciphertextBlob' failed to satisfy")


def test_integer_below_minimum() -> None:
    low = model.shape("LimitType")["min"]
    assert _validation_error("ListKeys", {"Limit": low - 1}) == (
        f"1 validation error detected: Value '{low - 1}' at 'limit' failed to satisfy constraint: "
        f"Member must have value greater than or equal to {low}"
    )


def test_integer_above_maximum() -> None:
    high = model.shape("LimitType")["max"]
    assert _validation_error("ListKeys", {"Limit": high + 1}).endswith(
        f"Value '{high + 1}' at 'limit' failed to satisfy constraint: "
        f"Member must have value less than or equal to {high}"
    )


def test_bad_enum_value() -> None:
    """KeySpec in AWS's order (recorded, issue 18 item 10): the values AWS listed in 2023 first, the newer ones
    after them in the model's order."""
    recorded = AWS_ENUM_ORDER["KeySpec"]
    newer = [spec for spec in model.shape("KeySpec")["enum"] if spec not in recorded]
    assert newer and "ML_KEM_768" in newer
    assert _validation_error("CreateKey", {"KeySpec": "AES_512"}) == (
        "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join([*recorded, *newer])}]"
    )


def test_mac_algorithm_enum_is_listed_in_aws_order() -> None:
    """Recorded on AWS (GenerateMac and VerifyMac with MacAlgorithm INVALID): its own fixed order, not the model's."""
    expected = (
        "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: "
        "Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
    )
    params = {"KeyId": KEY_ARN, "Message": _b64(b"m"), "MacAlgorithm": "INVALID"}
    assert _validation_error("GenerateMac", params) == expected
    assert _validation_error("VerifyMac", {**params, "Mac": _b64(b"x" * 32)}) == expected


def test_key_usage_enum_is_listed_in_aws_order() -> None:
    """Recorded: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC] then the usages added since."""
    assert _validation_error("CreateKey", {"KeyUsage": "RANDOM"}).endswith(
        "Member must satisfy enum value set: "
        "[ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"
    )


def test_encryption_algorithm_enum_is_listed_in_aws_order() -> None:
    """As an AWS-checked emulator's suite (floci) pins it for Encrypt and Decrypt; the model starts with
    SYMMETRIC_DEFAULT."""
    assert _validation_error("Encrypt", {"KeyId": KEY_ARN, "Plaintext": _b64(b"p"), "EncryptionAlgorithm": "FOO"}) == (
        "1 validation error detected: Value 'FOO' at 'encryptionAlgorithm' failed to satisfy constraint: "
        "Member must satisfy enum value set: [RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE, SYMMETRIC_DEFAULT]"
    )


def test_enums_without_a_recorded_order_keep_the_model_order() -> None:
    assert _validation_error("GenerateDataKey", {"KeyId": KEY_ARN, "KeySpec": "AES_512"}).endswith(
        "Member must satisfy enum value set: [AES_256, AES_128]"
    )


def test_every_aws_enum_order_names_only_model_values() -> None:
    """A name the model lacks would be a typo, never listed; the listing is always a permutation of the model's."""
    for shape_name, order in AWS_ENUM_ORDER.items():
        values = model.shape(shape_name)["enum"]
        assert set(order) <= set(values), shape_name
        assert sorted(enum_listing(shape_name, values)) == sorted(values)


def test_pattern_failure() -> None:
    pattern = model.shape("AliasNameType")["pattern"]
    assert _validation_error("CreateAlias", {"AliasName": "alias/has space", "TargetKeyId": KEY_ARN}) == (
        "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {pattern}"
    )


def test_string_too_long() -> None:
    maximum = model.shape("KeyIdType")["max"]
    key_id = "k" * (maximum + 1)
    assert _validation_error("DescribeKey", {"KeyId": key_id}) == (
        f"1 validation error detected: Value '{'k' * MAX_ECHO}...' ({maximum + 1} characters) at 'keyId' failed to "
        f"satisfy constraint: Member must have length less than or equal to {maximum}"
    )


# -- bounded echoes (issue 15, item 16): the message goes to the caller and into the audit record -------------


def test_a_64_kib_alias_is_echoed_truncated_once_per_rule() -> None:
    alias = "alias/ " + "a" * 65536  # breaks the length and the pattern rule
    message = _validation_error("CreateAlias", {"AliasName": alias, "TargetKeyId": KEY_ARN})
    assert message.startswith("2 validation errors detected: ")
    shown = f"Value '{alias[:MAX_ECHO]}...' ({len(alias)} characters) at 'aliasName' failed to satisfy constraint"
    assert message.count(shown) == 2
    assert len(message) < 2 * MAX_ECHO + 600


def test_a_long_list_is_echoed_truncated() -> None:
    maximum = model.shape("GrantTokenList")["max"]
    tokens = ["t" * model.shape("GrantTokenType")["max"]] * (maximum + 1)
    message = _validation_error("DescribeKey", {"KeyId": "k", "GrantTokens": tokens})
    assert f"Value '[{'t' * (MAX_ECHO - 1)}...' (" in message
    assert len(message) < MAX_ECHO + 300


def test_many_violations_are_listed_up_to_a_bound_and_counted_exactly() -> None:
    tags = [{"TagKey": "k" * 129, "TagValue": "v"} for _ in range(1000)]
    message = _validation_error("CreateKey", {"Tags": tags})
    assert message.startswith("1000 validation errors detected: ")
    assert message.endswith(f"; and {1000 - MAX_LISTED} more")
    assert message.count("failed to satisfy constraint") == MAX_LISTED
    assert len(message) < MAX_LISTED * 300


def test_long_sensitive_values_are_never_echoed_even_in_part() -> None:
    secret = "S" * 65536
    params = {
        "CustomKeyStoreName": "store",
        "XksProxyAuthenticationCredential": {"AccessKeyId": "A" * 30, "RawSecretAccessKey": secret},
    }
    message = _validation_error("CreateCustomKeyStore", params)
    assert "SSSS" not in message and "characters)" not in message
    assert "Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to satisfy constraint" in message
    blob = _validation_error("Encrypt", {"KeyId": "k", "Plaintext": _b64(b"P" * 4097)})
    assert "Value at 'plaintext' failed to satisfy constraint" in blob and len(blob) < 200


def test_empty_string_matches_aws() -> None:
    # Recorded from AWS (stelligent/mu#382): "Value '' at 'keyId' failed to satisfy constraint: ... 1".
    assert _validation_error("DescribeKey", {"KeyId": ""}) == (
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_two_errors_are_counted_and_joined() -> None:
    low = model.shape("LimitType")["min"]
    pattern = model.shape("MarkerType")["pattern"]
    message = _validation_error("ListKeys", {"Limit": 0, "Marker": "\u0100"})
    assert message == (
        "2 validation errors detected: "
        f"Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to {low}; "
        f"Value '\u0100' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: "
        f"{pattern}"
    )


def test_nested_paths_use_one_based_list_indices() -> None:
    tags = [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "", "TagValue": "v"}, {"TagKey": "k"}]
    message = _validation_error("CreateKey", {"Tags": tags})
    assert message == (
        "2 validation errors detected: "
        "Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1; "
        "Value null at 'tags.3.member.tagValue' failed to satisfy constraint: Member must not be null"
    )


def test_list_length() -> None:
    maximum = model.shape("GrantTokenList")["max"]
    tokens = ["t"] * (maximum + 1)
    assert _validation_error("Decrypt", {"CiphertextBlob": _b64(b"c"), "GrantTokens": tokens}) == (
        f"1 validation error detected: Value '[{', '.join(tokens)}]' at 'grantTokens' failed to satisfy constraint: "
        f"Member must have length less than or equal to {maximum}"
    )


def test_enum_inside_a_list() -> None:
    message = _validation_error("CreateGrant", {"KeyId": KEY_ARN, "Operations": ["Encrypt", "Explode"]})
    assert message.startswith("1 validation error detected: Value 'Explode' at 'operations.2.member' failed")


def test_nested_structure_and_map_paths() -> None:
    message = _validation_error(
        "CreateGrant",
        {"KeyId": KEY_ARN, "Operations": ["Encrypt"], "Constraints": {"SourceArn": "arn:bad"}},
    )
    assert "at 'constraints.sourceArn' failed to satisfy constraint" in message


def test_sensitive_strings_are_never_echoed() -> None:
    secret = "sEcReT/value+with=chars"
    params = {
        "CustomKeyStoreName": "store",
        "KeyStorePassword": "pw",
        "XksProxyAuthenticationCredential": {"AccessKeyId": "lower-case-id", "RawSecretAccessKey": secret},
    }
    message = _validation_error("CreateCustomKeyStore", params)
    assert secret not in message and "lower-case-id" not in message and "'pw'" not in message
    assert "Value at 'keyStorePassword' failed to satisfy constraint" in message
    assert "Value at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to satisfy constraint" in message
    assert "Value at 'xksProxyAuthenticationCredential.accessKeyId' failed to satisfy constraint" in message


def test_errors_from_a_parsed_body() -> None:
    body = json.dumps({"KeyId": "", "Plaintext": _b64(b"TOP-SECRET"), "Limit": 0}).encode()
    message = _validation_error("Encrypt", loads_strict(body))
    assert message.startswith("1 validation error detected: Value '' at 'keyId'")


# -- type mismatches are serialisation errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "operation,params,member",
    [
        ("ListKeys", {"Limit": "10"}, "limit"),
        ("ListKeys", {"Limit": True}, "limit"),
        ("ListKeys", {"Limit": 10.0}, "limit"),
        ("ListKeys", {"Limit": [1]}, "limit"),
        ("Encrypt", {"KeyId": 5, "Plaintext": "QQ=="}, "keyId"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "EncryptionContext": [["a", "b"]]}, "encryptionContext"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "EncryptionContext": {"a": 1}}, "encryptionContext"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "GrantTokens": {"a": "b"}}, "grantTokens"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "GrantTokens": "t"}, "grantTokens"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "DryRun": "true"}, "dryRun"),
        ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "DryRun": 1}, "dryRun"),
        ("Encrypt", {"KeyId": "k", "Plaintext": [65]}, "plaintext"),
        ("CreateKey", {"Tags": [{"TagKey": {"k": "v"}, "TagValue": "v"}]}, "tags.1.member.tagKey"),
        ("CreateKey", {"Tags": ["k=v"]}, "tags.1.member"),
        ("CreateGrant", {"KeyId": "k", "Operations": ["Encrypt"], "Constraints": "x"}, "constraints"),
        (
            "ImportKeyMaterial",
            {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ==", "ValidTo": "2030-01-01T00:00:00Z"},
            "validTo",
        ),
        (
            "ImportKeyMaterial",
            {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ==", "ValidTo": False},
            "validTo",
        ),
    ],
)
def test_wrong_json_type(operation: str, params: dict[str, Any], member: str) -> None:
    assert f"'{member}'" in _serialization_error(operation, params)


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(SerializationException):
        validate_input("ListKeys", [])  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [2**31, -(2**31) - 1, 10**19])
def test_integers_outside_java_int_are_serialization_errors(limit: int) -> None:
    assert "'limit'" in _serialization_error("ListKeys", {"Limit": limit})


def test_integers_inside_java_int_but_outside_the_model_are_validation_errors() -> None:
    _validation_error("ListKeys", {"Limit": 2**31 - 1})
    _validation_error("ListKeys", {"Limit": -(2**31)})


@pytest.mark.parametrize(
    "encoded",
    [
        "QQ",  # padding missing
        "QQ=",  # padding short
        "QUJD\n",  # whitespace
        "QU JD",
        "-_-_",  # URL-safe alphabet
        "QQ==QQ==",  # data after padding
        "=QQ=",
        "\u00e9\u00e9\u00e9\u00e9",  # not ASCII
        "Q===",
    ],
)
def test_base64_is_strict(encoded: str) -> None:
    with pytest.raises(SerializationException) as caught:
        validate_input("Encrypt", {"KeyId": KEY_ARN, "Plaintext": encoded})
    assert "'plaintext'" in caught.value.message and encoded not in caught.value.message
    assert caught.value.__suppress_context__  # binascii's error must not ride along


# -- conversion ---------------------------------------------------------------------------------------------


def test_conversion_and_unknown_members() -> None:
    params: dict[str, Any] = {
        "KeyId": KEY_ARN,
        "Plaintext": _b64(b"hello"),
        "EncryptionContext": {"tenant": "t-42"},
        "GrantTokens": [],
        "EncryptionAlgorithm": None,
        "Unknown": {"anything": [1, 2]},
    }
    original = json.loads(json.dumps(params))
    assert validate_input("Encrypt", params) == {
        "KeyId": KEY_ARN,
        "Plaintext": b"hello",
        "EncryptionContext": {"tenant": "t-42"},
        "GrantTokens": [],
    }
    assert params == original  # the input is not modified


def test_timestamps_become_float_epoch_seconds() -> None:
    params = {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ==", "ValidTo": 1_900_000_000}
    result = validate_input("ImportKeyMaterial", params)
    assert result["ValidTo"] == 1_900_000_000.0 and type(result["ValidTo"]) is float
    assert validate_input("ImportKeyMaterial", {**params, "ValidTo": 1.5})["ValidTo"] == 1.5


def test_string_length_counts_code_points() -> None:
    # TagKeyType max is in characters; astral characters count once (Smithy @length), not twice (UTF-16).
    maximum = model.shape("TagKeyType")["max"]
    validate_input("TagResource", {"KeyId": "k", "Tags": [{"TagKey": "\U0001f511" * maximum, "TagValue": ""}]})


def test_every_input_shape_compiles() -> None:
    """Builds every operation's checker (each shape type in the model is supported) and checks ``required``."""
    for name in model.operation_names():
        required = model.shape(str(model.input_shape(name))).get("required")
        try:
            validate_input(name, {})
        except ValidationException as exc:
            assert required, name
            assert exc.message.count("Member must not be null") == len(required)
        else:
            assert not required, name


# -- Java regular expressions -------------------------------------------------------------------------------


def test_every_model_pattern_compiles_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in _all_shapes():
            if "pattern" in shape:
                _java_regex(shape["pattern"])


def test_java_regex_semantics() -> None:
    assert _java_regex("[\\u0020-\\u00FF]*").fullmatch("caf\u00e9 ~")
    assert not _java_regex("[\\u0020-\\u00FF]*").fullmatch("\u0100")
    assert not _java_regex("[\\w]+").fullmatch("\u00e9")  # Java's \w is ASCII by default
    assert not _java_regex("^[a-z]+$").fullmatch("abc\n")  # matches() must consume the whole input
    assert not _java_regex("a.b").fullmatch("a\rb")  # Java's . excludes every line terminator
    assert not _java_regex("a.b").fullmatch("a\u2028b")
    assert _java_regex("a.b").fullmatch("a-b")
    assert _java_regex("a[.]b").fullmatch("a.b") and not _java_regex("a[.]b").fullmatch("axb")
    assert _java_regex("a\\.b").fullmatch("a.b") and not _java_regex("a\\.b").fullmatch("axb")
    assert not _java_regex("[0-9]{12}").fullmatch("1234567890123")  # no unanchored partial match


def test_policy_pattern_allows_latin1_only() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": []}, indent=2)
    validate_input("PutKeyPolicy", {"KeyId": "k", "Policy": policy})
    message = _validation_error("PutKeyPolicy", {"KeyId": "k", "Policy": policy + "\u2603"})
    assert "at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern" in message


# -- serialize_output ---------------------------------------------------------------------------------------


def test_serialize_output() -> None:
    aware = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    result = serialize_output(
        {
            "CiphertextBlob": b"\x00\xff",
            "Pub": bytearray(b"ab"),
            "CreationDate": aware,
            "Naive": aware.replace(tzinfo=None),
            "Absent": None,
            "Nested": [{"Blob": b"x", "Gone": None, "N": 3, "F": 1.5, "B": False}],
            "Tuple": ("a",),
        }
    )
    assert result == {
        "CiphertextBlob": "AP8=",
        "Pub": "YWI=",
        "CreationDate": aware.timestamp(),
        "Naive": aware.timestamp(),
        "Nested": [{"Blob": "eA==", "N": 3, "F": 1.5, "B": False}],
        "Tuple": ["a"],
    }


# -- S-4 in process: every operation, random top-level members ----------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _all_shapes() -> list[Any]:
    return [model.shape(name) for name in _shape_names()]


def _shape_names() -> set[str]:
    seen: set[str] = set()
    pending = [str(model.input_shape(op)) for op in model.operation_names()]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = model.shape(name)
        refs = list(shape.get("members", {}).values())
        refs += [shape[k] for k in ("member", "key", "value") if k in shape]
        pending.extend(ref["shape"] for ref in refs)
    return seen


def _lengths(shape: Any) -> st.SearchStrategy[int]:
    low, high = shape.get("min", 0), shape.get("max", 64)
    return st.sampled_from(sorted({n for n in (low - 1, low, high, high + 1) if n >= 0}))


@functools.cache
def _shaped(name: str, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like the model: three in four well-formed, the rest at or just past a limit."""
    shape = model.shape(name)
    if depth > 3:
        return _json
    return st.one_of(_valid(shape, depth), _valid(shape, depth), _valid(shape, depth), _edge(shape, depth))


def _valid(shape: Any, depth: int) -> st.SearchStrategy[Any]:
    kind = shape["type"]
    low, high = shape.get("min", 0), shape.get("max", 16)
    if kind == "string":
        if "enum" in shape:
            return st.sampled_from(shape["enum"])
        if "pattern" in shape:
            regex = _java_regex(shape["pattern"])
            return st.from_regex(regex, fullmatch=True).filter(lambda text: low <= len(text) <= high)
        return st.text(alphabet="abcdef0123456789", min_size=low, max_size=min(high, low + 16))
    if kind == "blob":
        return st.binary(min_size=low, max_size=min(high, low + 16)).map(_b64)
    if kind == "integer":
        return st.integers(low, shape.get("max", 2**31 - 1))
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.integers(0, 2**33) | st.floats(0, 2**33)
    if kind == "list":
        return st.lists(_shaped(shape["member"]["shape"], depth + 1), min_size=low, max_size=min(high, 3))
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _shaped(shape["value"]["shape"], depth + 1), max_size=3)
    required = set(shape.get("required", ()))
    members = {m: _shaped(ref["shape"], depth + 1) for m, ref in shape["members"].items()}
    return st.fixed_dictionaries(
        {m: s for m, s in members.items() if m in required},
        optional={m: s for m, s in members.items() if m not in required},
    )


def _edge(shape: Any, depth: int) -> st.SearchStrategy[Any]:
    kind = shape["type"]
    if kind == "string":
        return st.text(max_size=20) | _lengths(shape).map(lambda n: "a" * n)
    if kind == "blob":
        return _lengths(shape).map(bytes).map(_b64) | st.text(max_size=8)
    if kind == "integer":
        return st.sampled_from([shape.get("min", 0) - 1, shape.get("max", 0) + 1]) | st.integers()
    if kind == "list":
        return st.lists(_json, max_size=shape.get("max", 3) + 1)
    return _json


@functools.cache
def _params(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    """Half model-shaped (required members present, values mostly well-formed), half any JSON type for any
    member plus members the model does not know."""
    shape = model.shape(str(model.input_shape(operation)))
    members = shape["members"]
    required = set(shape.get("required", ()))
    shaped = {m: _shaped(ref["shape"]) for m, ref in members.items()}
    model_shaped = st.fixed_dictionaries(
        {m: shaped[m] for m in required}, optional={m: shaped[m] for m in members if m not in required}
    )
    anything = st.fixed_dictionaries({}, optional={m: _json | shaped[m] for m in members} | {"Extra": _json})
    return model_shaped | anything


_MESSAGE = re.compile(r"(\d+) validation errors? detected: .+", re.DOTALL)


@pytest.mark.parametrize("operation", sorted(model.operation_names()))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_s4_any_top_level_members(operation: str, data: st.DataObject) -> None:
    shape_name = str(model.input_shape(operation))
    members = model.shape(shape_name)["members"]
    params = data.draw(_params(operation))
    try:
        result = validate_input(operation, params)
    except ValidationException as exc:
        event("ValidationException")
        match = _MESSAGE.fullmatch(exc.message)
        assert match is not None, exc.message
        listed = exc.message.count(" failed to satisfy constraint: ")
        _, _, tail = exc.message.rpartition("; and ")
        unlisted = int(tail.removesuffix(" more")) if listed == MAX_LISTED and tail.endswith(" more") else 0
        assert int(match.group(1)) == listed + unlisted  # beyond MAX_LISTED, the rest are only counted
        for member, ref in members.items():
            if model.is_sensitive(ref["shape"]) or model.shape(ref["shape"])["type"] == "blob":
                wire = member[0].lower() + member[1:]
                for shown in re.finditer(f"at '{wire}'", exc.message):
                    before = exc.message[: shown.start()]
                    assert before.endswith(("Value ", "Value null ")), exc.message  # the value never shows
    except SerializationException:
        event("SerializationException")
    else:
        event("accepted")
        assert set(result) <= set(members)
        assert set(model.shape(shape_name).get("required", ())) <= set(result)
        for member, value in result.items():
            if model.shape(members[member]["shape"])["type"] == "blob":
                assert type(value) is bytes
