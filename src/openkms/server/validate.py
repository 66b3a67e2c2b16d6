"""Model-driven input validation and wire conversion, with AWS's error texts.

Two kinds of failure, as at AWS's JSON protocol:

* a value of the wrong JSON type (a string for an integer, a list for a map, bad base64) cannot be
  deserialised at all -> ``SerializationException`` at the first one, naming the member;
* a well-typed value that breaks a model constraint -> one ``ValidationException`` listing every violation:
  ``2 validation errors detected: Value 'x' at 'keyId' failed to satisfy constraint: Member must ...; ...``.

Paths follow AWS: member names with the first letter lower-cased, joined by ``.``, list items as
``tags.1.member.tagKey`` (1-based). Values are quoted only when they are harmless to echo: the values of
``sensitive`` shapes (``Plaintext``), of blobs and of containers holding either are left out, as AWS does
("Value at 'plaintext' failed to satisfy constraint: ...").

Echoes are bounded, since the message goes back to the caller and into the audit record: a value is shown up
to ``MAX_ECHO`` characters, then ``...' (<n> characters)``; at most ``MAX_LISTED`` violations are listed,
then ``; and <n> more`` (the count stays exact). AWS documents no bound; a 64 KB alias breaking two rules
made a 131 KB record.

Checkers are compiled once per shape into closures, so a request pays only for the members it sends.
"""

from __future__ import annotations

import binascii
import datetime
import math
import re
from base64 import b64encode
from collections.abc import Callable, Mapping
from typing import Any

from openkms import apimodel as model
from openkms.errors import SerializationException, ValidationException

# (value, path, errors) -> converted value; appends constraint violations to errors, raises on type errors.
Checker = Callable[[Any, str, list[str]], Any]

_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
MAX_ECHO = 256  # characters of one echoed value
MAX_LISTED = 10  # violations spelled out in one message
_CACHE: dict[tuple[str, bool], Checker] = {}

# The order in which AWS lists an enum's values in "Member must satisfy enum value set: [...]" where it is not the
# model's (issue 18 item 10). Sources: responses recorded on AWS (LocalStack's test_kms.snapshot.json, 2023):
# MacAlgorithmSpec exactly (the iteration order of a Java HashSet of the names); KeySpec and KeyUsageType for the
# values they had then. EncryptionAlgorithmSpec: the order an AWS-checked emulator's suite (floci) pins as AWS's.
# Values the model has and a list lacks follow in the model's order (docs/aws-differences.md).
AWS_ENUM_ORDER: dict[str, tuple[str, ...]] = {
    "EncryptionAlgorithmSpec": ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE", "SYMMETRIC_DEFAULT"),
    "MacAlgorithmSpec": ("HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"),
    "KeySpec": (
        "RSA_2048",
        "ECC_NIST_P384",
        "ECC_NIST_P256",
        "ECC_NIST_P521",
        "HMAC_384",
        "RSA_3072",
        "ECC_SECG_P256K1",
        "RSA_4096",
        "SYMMETRIC_DEFAULT",
        "HMAC_256",
        "HMAC_224",
        "HMAC_512",
    ),
    "KeyUsageType": ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC"),
}


def enum_listing(shape_name: str, values: list[str]) -> list[str]:
    """``values`` (a model enum) in the order AWS prints them: AWS_ENUM_ORDER's first, then the rest as modelled."""
    first = [value for value in AWS_ENUM_ORDER.get(shape_name, ()) if value in values]
    return first + [value for value in values if value not in first]


def validate_input(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check ``params`` against the operation's input shape and return a new dict for the handler: blobs
    decoded to ``bytes``, timestamps as float epoch seconds, members unknown to the model and ``null``
    members dropped (AWS JSON services ignore the former and treat the latter as absent)."""
    shape_name = model.input_shape(operation)
    if shape_name is None:
        return {}
    errors: list[str] = []
    result: dict[str, Any] = _checker(shape_name, False)(params, "", errors)
    if errors:
        count = len(errors)
        plural = "error" if count == 1 else "errors"
        listed = "; ".join(errors[:MAX_LISTED])
        more = f"; and {count - MAX_LISTED} more" if count > MAX_LISTED else ""
        raise ValidationException(f"{count} validation {plural} detected: {listed}{more}")
    return result


def serialize_output(value: Any) -> Any:
    """An operation's result in wire form: ``bytes`` -> standard base64, ``datetime`` -> epoch seconds,
    ``None`` members dropped (AWS omits absent members rather than sending ``null``)."""
    kind = type(value)
    if kind is dict:
        return {key: serialize_output(item) for key, item in value.items() if item is not None}
    if kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is list or kind is tuple:
        return [serialize_output(item) for item in value]
    if kind is bytes or kind is bytearray or kind is memoryview:
        return b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:  # naive means UTC here; .timestamp() would assume local time
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    return value


# -- compiling checkers from the model ---------------------------------------------------------------------


def _checker(shape_name: str, sensitive: bool) -> Checker:
    """The checker for a shape; ``sensitive`` is inherited from an enclosing member or shape."""
    sensitive = sensitive or model.is_sensitive(shape_name)
    key = (shape_name, sensitive)
    found = _CACHE.get(key)
    if found is None:
        # A forwarding entry first, so a recursive shape refers to itself instead of compiling forever.
        cell: list[Checker] = []
        _CACHE[key] = lambda value, path, errors: cell[0](value, path, errors)
        found = _build(shape_name, sensitive)
        cell.append(found)
        _CACHE[key] = found
    return found


def _build(shape_name: str, sensitive: bool) -> Checker:
    shape = model.shape(shape_name)
    kind = shape["type"]
    if kind == "structure":
        return _structure(shape, sensitive)
    if kind == "list":
        return _list(shape, sensitive)
    if kind == "map":
        return _map(shape, sensitive)
    if kind == "string":
        return _string(shape_name, shape, sensitive)
    if kind == "blob":
        return _blob(shape)
    if kind in _INT_RANGES:
        return _integer(shape, kind)
    if kind == "boolean":
        return _boolean
    if kind == "timestamp":
        return _timestamp
    raise NotImplementedError(f"model shape type {kind!r} has no checker")


def _wire_name(member: str) -> str:
    return member[:1].lower() + member[1:]


def _type_error(path: str, expected: str) -> SerializationException:
    where = f" at '{path}'" if path else ""
    return SerializationException(f"Expected {expected}{where}.")


def _violation(value: str | None, path: str, constraint: str) -> str:
    """One AWS violation text; ``value`` is the already-rendered value, or None to leave it out."""
    shown = "" if value is None else f" {value}"
    return f"Value{shown} at '{path}' failed to satisfy constraint: Member must {constraint}"


def _structure(shape: Mapping[str, Any], sensitive: bool) -> Checker:
    required = frozenset(shape.get("required", ()))
    members = [
        (name, _wire_name(name), _checker(ref["shape"], sensitive or bool(ref.get("sensitive"))), name in required)
        for name, ref in shape["members"].items()
    ]

    def check(value: Any, path: str, errors: list[str]) -> dict[str, Any]:
        if type(value) is not dict:
            raise _type_error(path, "a JSON object")
        out: dict[str, Any] = {}
        prefix = f"{path}." if path else ""
        for name, wire, member_check, is_required in members:
            item = value.get(name)
            if item is None:
                if is_required:
                    errors.append(_violation("null", prefix + wire, "not be null"))
                continue
            out[name] = member_check(item, prefix + wire, errors)
        return out

    return check


def _length_checks(shape: Mapping[str, Any]) -> tuple[int | None, int | None]:
    return shape.get("min"), shape.get("max")


def _list(shape: Mapping[str, Any], sensitive: bool) -> Checker:
    ref = shape["member"]
    item_sensitive = sensitive or bool(ref.get("sensitive"))
    item_check = _checker(ref["shape"], item_sensitive)
    echo = not item_sensitive and model.shape(ref["shape"])["type"] in ("string", "integer", "long", "boolean")
    low, high = _length_checks(shape)

    def check(value: Any, path: str, errors: list[str]) -> list[Any]:
        if type(value) is not list:
            raise _type_error(path, "a JSON array")
        count = len(value)
        if (low is not None and count < low) or (high is not None and count > high):
            shown = _quote("[" + ", ".join(str(_java(v)) for v in value) + "]") if echo else None
            if low is not None and count < low:
                errors.append(_violation(shown, path, f"have length greater than or equal to {low}"))
            if high is not None and count > high:
                errors.append(_violation(shown, path, f"have length less than or equal to {high}"))
        out = []
        for index, item in enumerate(value, 1):
            item_path = f"{path}.{index}.member"
            if item is None:
                errors.append(_violation("null", item_path, "not be null"))
                continue
            out.append(item_check(item, item_path, errors))
        return out

    return check


def _map(shape: Mapping[str, Any], sensitive: bool) -> Checker:
    key_check = _checker(shape["key"]["shape"], sensitive)
    value_check = _checker(shape["value"]["shape"], sensitive)
    low, high = _length_checks(shape)

    def check(value: Any, path: str, errors: list[str]) -> dict[str, Any]:
        if type(value) is not dict:
            raise _type_error(path, "a JSON object")
        count = len(value)
        if low is not None and count < low:
            errors.append(_violation(None, path, f"have length greater than or equal to {low}"))
        if high is not None and count > high:
            errors.append(_violation(None, path, f"have length less than or equal to {high}"))
        out = {}
        for key, item in value.items():
            if item is None:
                errors.append(_violation("null", path, "not be null"))
                continue
            out[key_check(key, path, errors)] = value_check(item, path, errors)
        return out

    return check


def _string(shape_name: str, shape: Mapping[str, Any], sensitive: bool) -> Checker:
    low, high = _length_checks(shape)
    if low == 0:
        low = None
    enum = shape.get("enum")
    allowed = frozenset(enum) if enum else None
    enum_text = f"satisfy enum value set: [{', '.join(enum_listing(shape_name, enum))}]" if enum else ""
    pattern = shape.get("pattern")
    regex = _java_regex(pattern) if pattern is not None else None

    def check(value: Any, path: str, errors: list[str]) -> str:
        if type(value) is not str:
            raise _type_error(path, "a string")
        # Length in code points, as Smithy's @length defines it for strings (Java's String.length() would
        # count UTF-16 units; the two differ only for characters outside the Basic Multilingual Plane).
        count = len(value)
        if low is not None and count < low:
            errors.append(_violation(_shown(value, sensitive), path, f"have length greater than or equal to {low}"))
        if high is not None and count > high:
            errors.append(_violation(_shown(value, sensitive), path, f"have length less than or equal to {high}"))
        if regex is not None and regex.fullmatch(value) is None:
            errors.append(_violation(_shown(value, sensitive), path, f"satisfy regular expression pattern: {pattern}"))
        if allowed is not None and value not in allowed:
            errors.append(_violation(_shown(value, sensitive), path, enum_text))
        return value

    return check


def _blob(shape: Mapping[str, Any]) -> Checker:
    low, high = _length_checks(shape)

    def check(value: Any, path: str, errors: list[str]) -> bytes:
        if type(value) is not str:
            raise _type_error(path, "a base64-encoded string")
        try:
            # Standard alphabet, padding required, nothing else allowed (no whitespace, no URL-safe
            # characters): what every AWS SDK sends, and one spelling per byte string.
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text
            raise SerializationException(f"Invalid base64 data at '{path}'.") from None
        # Lengths are of the decoded bytes; the value itself is never echoed.
        if low is not None and len(data) < low:
            errors.append(_violation(None, path, f"have length greater than or equal to {low}"))
        if high is not None and len(data) > high:
            errors.append(_violation(None, path, f"have length less than or equal to {high}"))
        return data

    return check


def _integer(shape: Mapping[str, Any], kind: str) -> Checker:
    low, high = shape.get("min"), shape.get("max")
    floor, ceiling = _INT_RANGES[kind]

    def check(value: Any, path: str, errors: list[str]) -> int:
        if type(value) is not int:  # bool is a subclass of int; exact type excludes it
            raise _type_error(path, f"an {kind}")
        if not floor <= value <= ceiling:  # does not fit AWS's Java type: a deserialisation failure
            raise SerializationException(f"Number out of range at '{path}'.")
        if low is not None and value < low:
            errors.append(_violation(f"'{value}'", path, f"have value greater than or equal to {low}"))
        if high is not None and value > high:
            errors.append(_violation(f"'{value}'", path, f"have value less than or equal to {high}"))
        return value

    return check


def _boolean(value: Any, path: str, errors: list[str]) -> bool:
    if type(value) is not bool:
        raise _type_error(path, "a boolean")
    return value


def _timestamp(value: Any, path: str, errors: list[str]) -> float:
    """The JSON protocol sends timestamps as epoch seconds (boto3 and the CLI send numbers)."""
    if (type(value) is not int and type(value) is not float) or not math.isfinite(value):
        raise _type_error(path, "a timestamp in epoch seconds")
    return float(value)


# -- rendering values and patterns --------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A value as echoed: quoted, and cut to ``MAX_ECHO`` characters with its full length when longer."""
    if len(text) <= MAX_ECHO:
        return f"'{text}'"
    return f"'{text[:MAX_ECHO]}...' ({len(text)} characters)"


def _shown(value: str, sensitive: bool) -> str | None:
    return None if sensitive else _quote(value)


def _java(value: Any) -> Any:
    """Java's spelling of a scalar inside a list (AWS prints Java's ``List.toString``)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return value


def _java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a model pattern (Java syntax) for Python with Java's meaning, applied with ``fullmatch`` like
    Java's ``Matcher.matches()``.

    ``\\uXXXX`` escapes mean the same in both. ``re.ASCII`` gives ``\\w``, ``\\d`` and ``\\s`` Java's default
    ASCII classes. Java's ``.`` excludes every line terminator, not only ``\\n``, so it is spelled out.
    """
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        elif char == "." and not in_class:
            char = "[^\\n\\r\\u0085\\u2028\\u2029]"
        out.append(char)
        index += 1
    return re.compile("".join(out), re.ASCII)
