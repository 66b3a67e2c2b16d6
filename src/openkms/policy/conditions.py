"""Condition operators: ``{"StringEquals": {"kms:CallerAccount": "111122223333"}}`` and the rest.

Evaluation follows the IAM reference ("Condition operators", "Conditions with multiple context keys or
values", "Single-valued vs. multivalued context keys"):

- all operators of a ``Condition`` block, and all keys under one operator, must hold (AND);
- several policy values for one key: any may match (OR); for a negated operator (``StringNotEquals``,
  ``NotIpAddress``, ``ArnNotLike``...) none may match (NOR);
- a key absent from the request: false, except true for negated operators, for ``...IfExists`` and for
  ``ForAllValues:``; ``ForAnyValue:`` on an absent (or empty) key is false unless ``...IfExists``;
- ``ForAllValues:``: every request value must satisfy the operator; ``ForAnyValue:``: at least one must;
- a multivalued request key under a plain operator behaves as ``ForAnyValue:`` for a positive operator and,
  for a negated one, as its exact negation (no request value may match any policy value). AWS advises a set
  operator there and documents no rule: this one keeps ``StringNotEquals`` equal to ``not StringEquals``;
- ``Null``: ``"true"`` holds when the key is absent (``None`` or an empty list), ``"false"`` when present;
- a key the request holds under several spellings (:class:`~openkms.policy.request.Conflicting`: tags
  ``Env`` and ``env``) fails every test in an ``Allow`` statement and passes every test in a ``Deny``, as key
  or as policy variable. AWS documents no rule; this one is deterministic and can only take access away.

A comparison that cannot be made (a request value that is not a number for ``NumericEquals``, an
unresolvable policy variable) never helps a condition become true, whether the operator is negated or not.

Policy values are checked when the document is parsed (:func:`validate_values`), so a malformed number,
date, CIDR, boolean or base64 value is refused up front instead of silently never matching.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache

from openkms.policy import patterns
from openkms.policy.request import Conflicting, ContextValue

Scalar = str | bool | int
# A positive comparison of one request value with one policy value; None when they cannot be compared.
Matcher = Callable[[Scalar, str, Mapping[str, ContextValue], bool], bool | None]


class SetQualifier(Enum):
    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


# ---- request values -------------------------------------------------------------------------------------


def _as_string(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=4096, typed=True)  # pure parsing of policy and request values, on every request
def _as_decimal(value: Scalar | str) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


_EPOCH_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@lru_cache(maxsize=4096, typed=True)  # pure parsing of policy and request values, on every request
def _as_datetime(value: Scalar | str) -> datetime | None:
    """ISO 8601 (``2024-05-01``, ``2024-05-01T12:00:00Z``, with an offset) or epoch seconds; naive is UTC."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int) or _EPOCH_RE.fullmatch(value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _as_bool(value: Scalar | str) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_bytes(value: Scalar | str) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


@lru_cache(maxsize=4096, typed=True)  # pure parsing of policy and request values, on every request
def _as_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096, typed=True)  # pure parsing of policy and request values, on every request
def _as_address(value: Scalar) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


# ---- positive matchers ----------------------------------------------------------------------------------


def _string_equals(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    if "$" not in policy:  # no variable and no escape: the policy value is the literal
        return policy == _as_string(value)
    tokens = patterns.tokenize(policy, context, variables=variables)
    return None if tokens is None else patterns.as_literal(tokens) == _as_string(value)


def _string_equals_ignore_case(
    value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool
) -> bool | None:
    tokens = patterns.tokenize(policy, context, variables=variables)
    return None if tokens is None else patterns.as_literal(tokens).casefold() == _as_string(value).casefold()


@lru_cache(maxsize=4096)
def _static_tokens(policy: str) -> patterns.Tokens | None:
    """Tokens of a policy value without variables (no ``$``): they never change, so they are cached."""
    return patterns.tokenize(policy, {}, variables=False)


def _tokens(policy: str, context: Mapping[str, ContextValue], variables: bool) -> patterns.Tokens | None:
    if "$" not in policy:
        return _static_tokens(policy)
    return patterns.tokenize(policy, context, variables=variables)


def _string_like(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    tokens = _tokens(policy, context, variables)
    return None if tokens is None else patterns.tokens_match(tokens, _as_string(value))


def _arn_like(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    tokens = _tokens(policy, context, variables)
    return None if tokens is None else patterns.arn_tokens_match(tokens, _as_string(value))


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Matcher:
    def match(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
        left, right = _as_decimal(value), _as_decimal(policy)
        return None if left is None or right is None else compare(left, right)

    return match


def _date(compare: Callable[[datetime, datetime], bool]) -> Matcher:
    def match(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
        left, right = _as_datetime(value), _as_datetime(policy)
        return None if left is None or right is None else compare(left, right)

    return match


def _bool(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    left, right = _as_bool(value), _as_bool(policy)
    return None if left is None or right is None else left == right


def _binary(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    left, right = _as_bytes(value), _as_bytes(policy)
    return None if left is None or right is None else left == right


def _ip(value: Scalar, policy: str, context: Mapping[str, ContextValue], variables: bool) -> bool | None:
    address, network = _as_address(value), _as_network(policy)
    if address is None or network is None:
        return None
    return address.version == network.version and address in network


# ---- the operator table ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Base:
    name: str
    match: Matcher
    negated: bool
    valid: Callable[[str], bool]  # is this policy value acceptable for the operator?


def _any_string(value: str) -> bool:
    return True


_NUMBER, _DATE = _numeric(operator.eq), _date(operator.eq)
_BASES: dict[str, _Base] = {
    base.name.lower(): base
    for base in (
        _Base("StringEquals", _string_equals, False, _any_string),
        _Base("StringNotEquals", _string_equals, True, _any_string),
        _Base("StringEqualsIgnoreCase", _string_equals_ignore_case, False, _any_string),
        _Base("StringNotEqualsIgnoreCase", _string_equals_ignore_case, True, _any_string),
        _Base("StringLike", _string_like, False, _any_string),
        _Base("StringNotLike", _string_like, True, _any_string),
        _Base("NumericEquals", _NUMBER, False, lambda v: _as_decimal(v) is not None),
        _Base("NumericNotEquals", _NUMBER, True, lambda v: _as_decimal(v) is not None),
        _Base("NumericLessThan", _numeric(operator.lt), False, lambda v: _as_decimal(v) is not None),
        _Base("NumericLessThanEquals", _numeric(operator.le), False, lambda v: _as_decimal(v) is not None),
        _Base("NumericGreaterThan", _numeric(operator.gt), False, lambda v: _as_decimal(v) is not None),
        _Base("NumericGreaterThanEquals", _numeric(operator.ge), False, lambda v: _as_decimal(v) is not None),
        _Base("DateEquals", _DATE, False, lambda v: _as_datetime(v) is not None),
        _Base("DateNotEquals", _DATE, True, lambda v: _as_datetime(v) is not None),
        _Base("DateLessThan", _date(operator.lt), False, lambda v: _as_datetime(v) is not None),
        _Base("DateLessThanEquals", _date(operator.le), False, lambda v: _as_datetime(v) is not None),
        _Base("DateGreaterThan", _date(operator.gt), False, lambda v: _as_datetime(v) is not None),
        _Base("DateGreaterThanEquals", _date(operator.ge), False, lambda v: _as_datetime(v) is not None),
        _Base("Bool", _bool, False, lambda v: _as_bool(v) is not None),
        _Base("BinaryEquals", _binary, False, lambda v: _as_bytes(v) is not None),
        _Base("IpAddress", _ip, False, lambda v: _as_network(v) is not None),
        _Base("NotIpAddress", _ip, True, lambda v: _as_network(v) is not None),
        _Base("ArnEquals", _arn_like, False, _any_string),
        _Base("ArnLike", _arn_like, False, _any_string),
        _Base("ArnNotEquals", _arn_like, True, _any_string),
        _Base("ArnNotLike", _arn_like, True, _any_string),
        _Base("Null", _bool, False, lambda v: _as_bool(v) is not None),
    )
}
_IF_EXISTS = "ifexists"


@dataclass(frozen=True, slots=True)
class ConditionOperator:
    """A parsed operator name: ``[ForAnyValue:|ForAllValues:]<base>[IfExists]``."""

    name: str  # as written in the policy
    base: str  # canonical spelling of the base operator, e.g. "StringNotEquals"
    qualifier: SetQualifier | None
    if_exists: bool

    @property
    def negated(self) -> bool:
        return _BASES[self.base.lower()].negated


def parse_operator(name: str) -> ConditionOperator:
    """Parse an operator name (matched case-insensitively); ``ValueError`` names an unknown one."""
    rest, qualifier = name, None
    prefix, sep, tail = name.partition(":")
    if sep:
        qualifier = next((q for q in SetQualifier if q.value.lower() == prefix.lower()), None)
        if qualifier is None:
            raise ValueError(f"Invalid Condition type: {name}.")
        rest = tail
    if_exists = rest.lower().endswith(_IF_EXISTS) and rest.lower() != _IF_EXISTS
    if if_exists:
        rest = rest[: -len(_IF_EXISTS)]
    base = _BASES.get(rest.lower())
    if base is None:
        raise ValueError(f"Invalid Condition type: {name}.")
    if base.name == "Null" and (if_exists or qualifier is not None):
        raise ValueError(f"Invalid Condition type: {name}. Null takes neither IfExists nor a set qualifier.")
    return ConditionOperator(name, base.name, qualifier, if_exists)


def validate_values(op: ConditionOperator, key: str, values: Iterable[str]) -> None:
    """``ValueError`` for a policy value the operator can never compare (a bad number, date, CIDR...)."""
    base = _BASES[op.base.lower()]
    for value in values:
        if not base.valid(value):
            raise ValueError(f"Invalid value {value!r} for condition {op.name} on key {key}.")


@dataclass(frozen=True, slots=True)
class Condition:
    """One key test of a ``Condition`` block: ``{operator: {key: values}}``."""

    operator: ConditionOperator
    key: str  # lower-cased: condition key names are case-insensitive
    values: tuple[str, ...]  # JSON numbers and booleans already turned into their text


def _one_value_holds(
    base: _Base, value: Scalar, cond: Condition, context: Mapping[str, ContextValue], variables: bool
) -> bool:
    results = [base.match(value, policy, context, variables) for policy in cond.values]
    if base.negated:
        return all(result is False for result in results)
    return any(result is True for result in results)


_VARIABLE_NAME_RE = re.compile(r"\$\{([^,}]*)")  # linear: one negated class, nothing after it


def _names_a_conflict(cond: Condition, context: Mapping[str, ContextValue], variables: bool) -> bool:
    """Whether ``cond`` tests a key the request holds under several spellings, as its key or as a policy
    variable in one of its values (see :class:`Conflicting`)."""
    if isinstance(context.get(cond.key), Conflicting):
        return True
    if not variables:
        return False
    return any(
        isinstance(context.get(name.strip().lower()), Conflicting)
        for value in cond.values
        if "$" in value
        for name in _VARIABLE_NAME_RE.findall(value)
    )


def condition_holds(
    cond: Condition, context: Mapping[str, ContextValue], *, variables: bool, deny: bool = False
) -> bool:
    """Evaluate one key test against the request context (keys lower-cased, see ``AuthorizationRequest``).

    ``deny`` says the statement is a ``Deny``: a test of a key held under several spellings (tags ``Env`` and
    ``env``) holds there and fails in an ``Allow``, so that such a collision can only take access away."""
    if _names_a_conflict(cond, context, variables):
        return deny
    raw = context.get(cond.key)
    values: list[Scalar] = [] if raw is None else list(raw) if isinstance(raw, list) else [raw]
    op = cond.operator
    if op.base == "Null":
        absent = not values
        return any(_as_bool(policy) == absent for policy in cond.values)
    base = _BASES[op.base.lower()]
    if not values:
        if op.qualifier is SetQualifier.FOR_ALL_VALUES:
            return True
        if op.qualifier is SetQualifier.FOR_ANY_VALUE:
            return op.if_exists
        return op.if_exists or base.negated
    holds = [_one_value_holds(base, value, cond, context, variables) for value in values]
    if op.qualifier is SetQualifier.FOR_ALL_VALUES:
        return all(holds)
    if op.qualifier is SetQualifier.FOR_ANY_VALUE:
        return any(holds)
    return all(holds) if base.negated else any(holds)


def conditions_hold(
    conditions: Iterable[Condition], context: Mapping[str, ContextValue], *, variables: bool, deny: bool = False
) -> bool:
    """All key tests of a statement's ``Condition`` block must hold (an empty block holds); ``deny`` for a
    ``Deny`` statement (see :func:`condition_holds`)."""
    return all(condition_holds(cond, context, variables=variables, deny=deny) for cond in conditions)
