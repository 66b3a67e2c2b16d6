"""Parse and validate a policy document (key policy or IAM identity policy) into frozen dataclasses.

Every refusal is a ``MalformedPolicyDocumentException`` whose message says what is wrong; where AWS's own
wording is known (IAM's "Policy statement must contain resources.", KMS's "Policy contains a statement with
one or more invalid principals.") it is used.

Sources: IAM JSON policy element reference; KMS developer guide, "Creating a key policy" (key policies:
at most 32,768 bytes; Effect, Principal, Action and Resource required; printable ASCII and Latin-1 plus tab,
line feed and carriage return only); IAM quotas (identity policies are counted in non-whitespace characters:
6,144 for a managed policy; the *aggregate* of a user's, group's or role's inline policies 2,048, 5,120 and
10,240; the aggregate is the caller's to sum, with :func:`policy_size`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, NoReturn

from openkms import ids
from openkms.errors import MalformedPolicyDocumentException
from openkms.policy import conditions
from openkms.policy.conditions import Condition

PolicyKind = Literal["key", "identity"]

KEY_POLICY_MAX_BYTES = 32_768
MANAGED_POLICY_MAX_CHARS = 6_144
USER_INLINE_POLICIES_MAX_CHARS = 2_048
GROUP_INLINE_POLICIES_MAX_CHARS = 5_120
ROLE_INLINE_POLICIES_MAX_CHARS = 10_240

CURRENT_VERSION = "2012-10-17"
LEGACY_VERSION = "2008-10-17"

_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_NAME = r"[^*?\s]+"  # no wildcards in a principal's ARN: "*" alone is the only wildcard principal
_SEGMENT = r"[^*?\s/]+"  # one path segment: "role/x/y" split two ways would backtrack quadratically
_PRINCIPAL_ARN_RE = re.compile(
    rf"arn:aws:iam::[0-9]{{12}}:(root|user/{_NAME}|role/{_NAME})"
    rf"|arn:aws:sts::[0-9]{{12}}:(assumed-role/{_SEGMENT}/{_SEGMENT}|federated-user/{_NAME})"
)
_UNIQUE_ID_RE = re.compile(r"A(IDA|ROA|IPA|GPA)[A-Z0-9]{12,}")  # what AWS shows for a deleted principal
_SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9.-]*")
_ACTION_RE = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_SID_IDENTITY_RE = re.compile(r"[A-Za-z0-9]*")


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class Principals:
    """A ``Principal`` or ``NotPrincipal`` element.

    ``aws`` holds ARNs; a bare account id is stored as its root ARN (``arn:aws:iam::<id>:root``), which is
    what it means. ``everyone`` is ``"*"`` or ``{"AWS": "*"}``.
    """

    everyone: bool = False
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    canonical_users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement. Exactly one of each pair (``principal``/``not_principal``...) is set, or neither."""

    effect: Effect
    sid: str | None = None
    principal: Principals | None = None
    not_principal: Principals | None = None
    actions: tuple[str, ...] | None = None  # lower-cased patterns: actions match case-insensitively
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    kind: PolicyKind
    statements: tuple[Statement, ...]
    version: str | None = None
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Policy variables are substituted only in ``2012-10-17`` documents (older ones: literal text)."""
        return self.version == CURRENT_VERSION


def _refuse(message: str) -> NoReturn:
    raise MalformedPolicyDocumentException(message)


# ---- size, characters, JSON ----------------------------------------------------------------------------


def policy_size(text: str, kind: PolicyKind) -> int:
    """Size as AWS counts it: UTF-8 bytes for a key policy, non-whitespace characters for IAM."""
    if kind == "key":
        return len(text.encode("utf-8"))
    return sum(1 for char in text if not char.isspace())


def _check_size(text: str, kind: PolicyKind, max_size: int | None) -> None:
    limit = max_size if max_size is not None else KEY_POLICY_MAX_BYTES if kind == "key" else MANAGED_POLICY_MAX_CHARS
    if policy_size(text, kind) > limit:
        unit = "bytes" if kind == "key" else "non-whitespace characters"
        _refuse(f"The policy document exceeds the maximum size of {limit} {unit}.")


def _allowed_char(code: int, kind: PolicyKind) -> bool:
    if code in (0x09, 0x0A, 0x0D):
        return True
    if kind == "key":  # printable ASCII and printable Latin-1 Supplement
        return 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF
    return 0x20 <= code <= 0xFF


def _check_characters(text: str, kind: PolicyKind) -> None:
    for char in text:
        if not _allowed_char(ord(char), kind):
            _refuse(f"The policy document contains a character that is not allowed: U+{ord(char):04X}.")


class _DuplicateElement(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A repeated element is ambiguous (which Effect wins?): refuse it, as AWS does."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _DuplicateElement(name)
        result[name] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _load_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateElement as exc:
        _refuse(f"Syntax errors in policy: the element {exc} appears more than once in one object.")
    except (ValueError, RecursionError):
        _refuse("Syntax errors in policy: the document is not valid JSON.")


# ---- elements -----------------------------------------------------------------------------------------


def _strings(value: object, element: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if not value:
            _refuse(f"Syntax errors in policy: {element} is an empty list.")
        return tuple(value)
    _refuse(f"Syntax errors in policy: {element} must be a string or a list of strings.")


def _aws_principal(value: str) -> str | None:
    """The stored form of one ``{"AWS": ...}`` value, or None for ``"*"``."""
    if value == "*":
        return None
    if _ACCOUNT_RE.fullmatch(value):
        return ids.root_arn(value)
    if _PRINCIPAL_ARN_RE.fullmatch(value) or _UNIQUE_ID_RE.fullmatch(value):
        return value
    _refuse(_INVALID_PRINCIPALS)


def _principals(value: object) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        _refuse(_INVALID_PRINCIPALS)
    unknown = set(value) - set(_PRINCIPAL_TYPES)
    if unknown:
        _refuse(_INVALID_PRINCIPALS)
    parsed = {name: _strings(value[name], f"Principal {name}") for name in _PRINCIPAL_TYPES if name in value}
    aws = [_aws_principal(item) for item in parsed.get("AWS", ())]
    services = parsed.get("Service", ())
    if not all(_SERVICE_RE.fullmatch(item) for item in services):
        _refuse(_INVALID_PRINCIPALS)
    others = parsed.get("Federated", ()) + parsed.get("CanonicalUser", ())
    if not all(item.strip() for item in others):
        _refuse(_INVALID_PRINCIPALS)
    return Principals(
        everyone=any(item is None for item in aws),
        aws=tuple(item for item in aws if item is not None),
        services=services,
        federated=parsed.get("Federated", ()),
        canonical_users=parsed.get("CanonicalUser", ()),
    )


def _actions(value: object, element: str, kind: PolicyKind) -> tuple[str, ...]:
    actions = _strings(value, element)
    for action in actions:
        if action == "*":
            continue
        if ":" not in action:
            _refuse(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Found: {action}")
        if action.count(":") > 1:
            _refuse(f"Actions/Condition can contain only one colon. Found: {action}")
        if not _ACTION_RE.fullmatch(action):
            _refuse(f"Policy contains an invalid action: {action}")
        if kind == "key" and action.split(":", 1)[0].lower() != "kms":
            _refuse(f"A key policy can allow or deny only KMS actions (kms:...), not {action}.")
    return tuple(action.lower() for action in actions)


def _resources(value: object, element: str) -> tuple[str, ...]:
    resources = _strings(value, element)
    for resource in resources:
        if resource != "*" and not (resource.startswith("arn:") and resource.count(":") >= 5):
            _refuse(f'Resource {resource} must be in ARN format or "*".')
    return resources


def _condition_value(value: object, op: str, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    _refuse(f"Syntax errors in policy: the values of condition {op} on key {key} must be strings.")


def _condition(value: object) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        _refuse("Syntax errors in policy: Condition must be an object of operators.")
    parsed: list[Condition] = []
    for op_name, block in value.items():
        try:
            op = conditions.parse_operator(op_name)
        except ValueError as exc:
            _refuse(str(exc))
        if not isinstance(block, dict) or not block:
            _refuse(f"Syntax errors in policy: condition {op_name} must map condition keys to values.")
        for key, raw in block.items():
            if ":" not in key or not key.split(":", 1)[0] or not key.split(":", 1)[1]:
                _refuse(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. Found: {key}")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                _refuse(f"Syntax errors in policy: condition {op_name} on key {key} has an empty list of values.")
            values = tuple(_condition_value(item, op_name, key) for item in items)
            try:
                conditions.validate_values(op, key, values)
            except ValueError as exc:
                _refuse(str(exc))
            parsed.append(Condition(op, key.lower(), values))
    return tuple(parsed)


def _one_of(raw: dict[str, Any], name: str, negated: str) -> None:
    if name in raw and negated in raw:
        _refuse(f"Syntax errors in policy: a statement cannot contain both {name} and {negated}.")


def _statement(raw: object, kind: PolicyKind) -> Statement:
    if not isinstance(raw, dict):
        _refuse("Syntax errors in policy: each statement must be a JSON object.")
    unknown = sorted(set(raw) - _STATEMENT_ELEMENTS)
    if unknown:
        _refuse(f"Syntax errors in policy: unknown statement element {unknown[0]}.")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        _refuse("Syntax errors in policy: Sid must be a string.")
    if kind == "identity" and sid is not None and not _SID_IDENTITY_RE.fullmatch(sid):
        _refuse("Statement IDs (SID) must be alpha-numeric.")
    if "Effect" not in raw:
        _refuse("Missing required field Effect.")
    if raw["Effect"] not in ("Allow", "Deny"):
        _refuse(f"Invalid effect: {raw['Effect']}. Use Allow or Deny.")
    for name, negated in (("Principal", "NotPrincipal"), ("Action", "NotAction"), ("Resource", "NotResource")):
        _one_of(raw, name, negated)
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind == "identity" and has_principal:
        _refuse("Policy document should not specify a principal.")
    if kind == "key" and not has_principal:
        _refuse("Missing required field Principal.")
    if "Action" not in raw and "NotAction" not in raw:
        _refuse("Policy statement must contain actions.")
    if "Resource" not in raw and "NotResource" not in raw:
        _refuse("Policy statement must contain resources.")
    return Statement(
        effect=Effect(raw["Effect"]),
        sid=sid,
        principal=_principals(raw["Principal"]) if "Principal" in raw else None,
        not_principal=_principals(raw["NotPrincipal"]) if "NotPrincipal" in raw else None,
        actions=_actions(raw["Action"], "Action", kind) if "Action" in raw else None,
        not_actions=_actions(raw["NotAction"], "NotAction", kind) if "NotAction" in raw else None,
        resources=_resources(raw["Resource"], "Resource") if "Resource" in raw else None,
        not_resources=_resources(raw["NotResource"], "NotResource") if "NotResource" in raw else None,
        conditions=_condition(raw["Condition"]) if "Condition" in raw else (),
    )


def parse_policy(text: str, kind: PolicyKind = "key", *, max_size: int | None = None) -> PolicyDocument:
    """Parse ``text`` as a key policy (``kind="key"``) or an IAM identity policy (``kind="identity"``).

    ``max_size`` overrides the default limit: 32,768 UTF-8 bytes for a key policy, 6,144 non-whitespace
    characters (a managed policy) for an identity policy. Raises ``MalformedPolicyDocumentException``.
    """
    _check_size(text, kind, max_size)
    _check_characters(text, kind)
    document = _load_json(text)
    if not isinstance(document, dict):
        _refuse("Syntax errors in policy: the document must be a JSON object.")
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        _refuse(f"Syntax errors in policy: unknown element {unknown[0]}.")
    version = document.get("Version")
    if version is not None and version not in (CURRENT_VERSION, LEGACY_VERSION):
        _refuse(f"The policy version {version} is not supported. Use {CURRENT_VERSION}.")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        _refuse("Syntax errors in policy: Id must be a string.")
    if "Statement" not in document:
        _refuse("Missing required field Statement.")
    raw_statements = document["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        _refuse("Syntax errors in policy: Statement must be a statement object or a non-empty list of them.")
    statements = tuple(_statement(raw, kind) for raw in raw_statements)
    if kind == "identity":
        sids = [s.sid for s in statements if s.sid]
        if len(sids) != len(set(sids)):
            _refuse("Statement IDs (SID) in a single policy must be unique.")
    return PolicyDocument(kind=kind, statements=statements, version=version, id=policy_id)
