"""J-1 in process: the strict JSON corpus against ``loads_strict``, and ``dumps``.

Every rejected body carries a marker string; no error message may contain it (bodies may carry plaintext).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.errors import SerializationException
from openkms.server.jsonio import MAX_DEPTH, dumps, loads_strict

SECRET = "TOP-SECRET-PLAINTEXT"


def _rejects(body: bytes) -> SerializationException:
    with pytest.raises(SerializationException) as caught:
        loads_strict(body)
    assert SECRET not in caught.value.message
    # No chained exception either: UnicodeDecodeError.object and JSONDecodeError.doc hold the whole body.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return caught.value


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


# -- the accepted side --------------------------------------------------------------------------------------


def test_parses_an_ordinary_request() -> None:
    body = b'{"KeyId":"alias/x","Plaintext":"QUJD","EncryptionContext":{"a":"b"},"GrantTokens":["t"],"DryRun":false}'
    assert loads_strict(body) == {
        "KeyId": "alias/x",
        "Plaintext": "QUJD",
        "EncryptionContext": {"a": "b"},
        "GrantTokens": ["t"],
        "DryRun": False,
    }


def test_empty_body_is_an_empty_object() -> None:
    assert loads_strict(b"") == {}


def test_non_ascii_and_surrogate_pairs_are_fine() -> None:
    escaped = b'{"k\\u00e9":"\\ud83d\\ude00","raw":"\xc3\xa9\xf0\x9f\x98\x80"}'
    assert loads_strict(escaped) == {"k\u00e9": "\U0001f600", "raw": "\u00e9\U0001f600"}


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    deep_text = "[" * 500 + '"{\\' * 100  # escaped quotes and backslashes must not end the string early
    assert loads_strict(json.dumps({"Policy": deep_text, "x": [[1]]}).encode()) == {"Policy": deep_text, "x": [[1]]}


def test_nesting_up_to_the_limit_is_accepted() -> None:
    body = '{"a":' + "[" * (MAX_DEPTH - 1) + "7" + "]" * (MAX_DEPTH - 1) + "}"
    value: Any = loads_strict(body.encode())["a"]
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == 7
    assert loads_strict(b'{"a":[1,[2],{"b":[3]}],"c":{}}') == {"a": [1, [2], {"b": [3]}], "c": {}}


def test_many_shallow_containers_are_fine() -> None:
    body = json.dumps({"Tags": [{"TagKey": str(i), "TagValue": "v"} for i in range(200)]}).encode()
    assert len(loads_strict(body)["Tags"]) == 200


@pytest.mark.parametrize("number", ["12345678901234567890", "-12345678901234567890", "0", "-1"])
def test_integers_up_to_twenty_digits(number: str) -> None:
    assert loads_strict(f'{{"n":{number}}}'.encode()) == {"n": int(number)}


@pytest.mark.parametrize("number", ["1.5", "1700000000.123456", "1e3", "-2.5E-7"])
def test_reasonable_floats(number: str) -> None:
    assert loads_strict(f'{{"n":{number}}}'.encode()) == {"n": float(number)}


# -- J-1 corpus: rejected -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '{"KeyId":"a","KeyId":"b","x":"TOP-SECRET-PLAINTEXT"}',
        '{"KeyId":"a","Nested":{"x":1,"x":2},"p":"TOP-SECRET-PLAINTEXT"}',
        '{"KeyId":"a","EncryptionContext":{"tenant":"a","tenant":"b"},"p":"TOP-SECRET-PLAINTEXT"}',
        '{"Tags":[{"TagKey":"a","TagKey":"b"}],"p":"TOP-SECRET-PLAINTEXT"}',
        '{"a":1,"\\u0061":2,"p":"TOP-SECRET-PLAINTEXT"}',  # the same key, once escaped
    ],
    ids=["top-level", "nested", "encryption-context", "in-list", "escaped-spelling"],
)
def test_duplicate_keys(body: str) -> None:
    assert "duplicate" in _rejects(body.encode()).message


def test_duplicate_keys_in_a_key_policy_document() -> None:
    """Key policies arrive as a JSON string; the policy parser must use ``loads_strict`` on it too."""
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Sid":"TOP-SECRET-PLAINTEXT"}]}'
    assert loads_strict(json.dumps({"Policy": policy}).encode())["Policy"] == policy
    _rejects(policy.encode())


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "[NaN]", '{"x":Infinity}', "[1,-Infinity]"])
def test_nan_and_infinity(literal: str) -> None:
    _rejects(f'{{"p":"TOP-SECRET-PLAINTEXT","v":{literal}}}'.encode())


@pytest.mark.parametrize(
    "body",
    [
        b'{"v":"\\ud800","p":"TOP-SECRET-PLAINTEXT"}',  # lone high surrogate in a value
        b'{"v":"\\udfff","p":"TOP-SECRET-PLAINTEXT"}',  # lone low surrogate
        b'{"v":"ab\\udc00\\ud800cd","p":"TOP-SECRET-PLAINTEXT"}',  # a pair in the wrong order
        b'{"v":"\\ud83d x","p":"TOP-SECRET-PLAINTEXT"}',  # high surrogate not followed by a low one
        b'{"\\ud800":"v","p":"TOP-SECRET-PLAINTEXT"}',  # in a key
        b'{"EncryptionContext":{"k\\udbff":"v"},"p":"TOP-SECRET-PLAINTEXT"}',  # in a nested key
        b'{"GrantTokens":["ok","\\ud800"],"p":"TOP-SECRET-PLAINTEXT"}',  # in a list
    ],
)
def test_lone_surrogate_escapes(body: bytes) -> None:
    assert "surrogate" in _rejects(body).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"v":"\xed\xa0\x80","p":"TOP-SECRET-PLAINTEXT"}',  # U+D800 encoded as raw UTF-8 bytes
        b'{"\xed\xbf\xbf":"v","p":"TOP-SECRET-PLAINTEXT"}',  # U+DFFF as raw bytes, in a key
        b'{"v":"\xed\xa0\xbd\xed\xb8\x80"}',  # CESU-8 surrogate pair
    ],
)
def test_raw_surrogate_bytes_are_invalid_utf8(body: bytes) -> None:
    assert "UTF-8" in _rejects(body).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"v":"\xff","p":"TOP-SECRET-PLAINTEXT"}',
        b'{"v":"\xc0\xaf","p":"TOP-SECRET-PLAINTEXT"}',  # overlong "/"
        b'{"v":"\xe2\x82","p":"TOP-SECRET-PLAINTEXT"}',  # truncated sequence
        b'{"v":"\xf4\x90\x80\x80","p":"TOP-SECRET-PLAINTEXT"}',  # above U+10FFFF
        '{"p":"TOP-SECRET-PLAINTEXT"}'.encode("utf-16"),  # json.loads(bytes) would accept UTF-16
        '{"p":"TOP-SECRET-PLAINTEXT"}'.encode("utf-32-le"),
    ],
)
def test_invalid_utf8(body: bytes) -> None:
    _rejects(body)


def test_utf8_bom_is_rejected() -> None:
    _rejects(b'\xef\xbb\xbf{"p":"TOP-SECRET-PLAINTEXT"}')


@pytest.mark.parametrize(
    "opener,closer", [("[", "]"), ('{"a":', "}"), ('[{"a":', "}]")], ids=["arrays", "objects", "mixed"]
)
def test_ten_thousand_deep_nesting(opener: str, closer: str) -> None:
    body = '{"p":"TOP-SECRET-PLAINTEXT","v":' + opener * 10_000 + "1" + closer * 10_000 + "}"
    assert "deeper" in _rejects(body.encode()).message


def test_unclosed_deep_nesting() -> None:
    _rejects(b'{"p":"TOP-SECRET-PLAINTEXT","v":' + b"[" * 100_000)


def test_one_level_too_deep() -> None:
    _rejects(('{"p":"TOP-SECRET-PLAINTEXT","a":' + _nested(MAX_DEPTH) + "}").encode())


def test_deep_nesting_after_an_unterminated_string() -> None:
    _rejects(b'{"p":"TOP-SECRET-PLAINTEXT' + b"[" * 10_000)


def test_recursion_error_never_escapes() -> None:
    """The parser's own recursion limit (it runs before the depth walk) surfaces as a SerializationException."""
    _rejects(('{"p":"TOP-SECRET-PLAINTEXT","v":' + _nested(100_000) + "}").encode())


@pytest.mark.parametrize(
    "number",
    [
        "1" * 5000,
        "-" + "9" * 5000,
        "123456789012345678901",  # 21 digits
        "1" * 5000 + ".5",
        "1e999",
        "-1e999",
        "0." + "0" * 100 + "1",
        "1" + "0" * 400 + ".0",
    ],
    ids=[
        "5000-digits",
        "5000-digits-negative",
        "21-digits",
        "long-float",
        "overflow",
        "neg-overflow",
        "long-fraction",
        "huge-float",
    ],
)
def test_huge_numbers(number: str) -> None:
    _rejects(f'{{"p":"TOP-SECRET-PLAINTEXT","n":{number}}}'.encode())


@pytest.mark.parametrize(
    "body",
    [
        b'["TOP-SECRET-PLAINTEXT"]',
        b'"TOP-SECRET-PLAINTEXT"',
        b"1",
        b"null",
        b"true",
        b"[]",
    ],
)
def test_top_level_must_be_an_object(body: bytes) -> None:
    assert "object" in _rejects(body).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"p":"TOP-SECRET-PLAINTEXT"',
        b'{"p":"TOP-SECRET-PLAINTEXT"} {}',
        b'{"p":"TOP-SECRET-PLAINTEXT",}',
        b"{'p':'TOP-SECRET-PLAINTEXT'}",
        b'{"p":"TOP-SECRET-\x01PLAINTEXT"}',  # raw control character in a string
        b'{"p":"TOP-SECRET-PLAINTEXT","n":01}',
        b'{"p":"TOP-SECRET-PLAINTEXT","v":"\\x41"}',
        b" ",
        b"\x00",
    ],
)
def test_malformed_json(body: bytes) -> None:
    _rejects(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_an_object_or_a_serialization_error(body: bytes) -> None:
    try:
        assert isinstance(loads_strict(body), dict)
    except SerializationException:
        pass


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**19), 10**19)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), _json_values, max_size=6))
def test_round_trip(value: dict[str, Any]) -> None:
    assert loads_strict(dumps(value)) == value
    assert loads_strict(json.dumps(value).encode()) == value  # ASCII-escaped form, as botocore sends it


# -- dumps --------------------------------------------------------------------------------------------------


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"a": [1, 2], "b": "\u00e9"}) == '{"a":[1,2],"b":"\u00e9"}'.encode()


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError):
        dumps({"a": math.nan})


def _unterminated_escapes(count: int) -> bytes:
    """Issue 15 item 1: more than MAX_DEPTH brackets, then a string of escaped quotes that never closes."""
    return b"[" * (MAX_DEPTH + 1) + b'"' + b'\\"' * count


def _parse_seconds(body: bytes) -> float:
    started = time.perf_counter()
    with pytest.raises(SerializationException):
        loads_strict(body)
    return time.perf_counter() - started


def test_an_unterminated_string_of_escaped_quotes_costs_linear_time() -> None:
    """The old regex pre-scan took ~12 s for 80 KiB of this (quadratic); ten times the input must cost at most
    about ten times as much, and the whole body must be refused quickly."""
    small = min(_parse_seconds(_unterminated_escapes(4_000)) for _ in range(3))
    large = min(_parse_seconds(_unterminated_escapes(40_000)) for _ in range(3))
    assert large < 0.05
    assert large < max(small, 1e-4) * 40


def test_a_wide_flat_body_within_the_depth_limit_parses() -> None:
    """Many brackets at a shallow depth are fine: depth, not the bracket count, is the limit."""
    body = b'{"a":[' + b"[]," * 20_000 + b"[]]}"
    assert len(loads_strict(body)["a"]) == 20_001
