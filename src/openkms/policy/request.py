"""The question a policy answers: who asks to do what, on which key, in which context.

:class:`AuthorizationRequest` is plain data, filled by the caller (``operations/``) from the authenticated
principal, the operation and the resolved key. Condition keys are stored lower-cased, because AWS compares
condition key *names* case-insensitively (``kms:EncryptionContext:Dept`` and ``kms:encryptioncontext:dept``
are the same key); values keep their case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from openkms import ids


class Conflicting(list[str]):
    """The values of one condition key that the request holds under several spellings: tags (or encryption
    context pairs) whose keys differ only in case, such as ``Env`` and ``env``. Tag keys are case-sensitive,
    condition key names are not, so ``aws:ResourceTag/env`` names both and no value can be chosen. Such a key
    can only take access away: every condition on it fails in an ``Allow`` statement and holds in a ``Deny``
    (policy/conditions.py), whatever the order the tags were added in."""


ContextValue = str | list[str] | bool | int | None
"""A condition key's value: a string, a multivalued key's list, a bool or an int; ``None`` means absent."""


def folded_pairs(prefix: str, pairs: Iterable[tuple[str, str]]) -> dict[str, ContextValue]:
    """Condition keys ``<prefix><name>`` for ``pairs`` (tags, an encryption context), one per name compared
    case-insensitively: a name spelled once keeps its value; a name spelled several ways gets
    :class:`Conflicting` with every value, in the order of the spellings (so the result never depends on the
    order the pairs came in)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, value in pairs:
        groups.setdefault(name.lower(), []).append((name, value))
    keys: dict[str, ContextValue] = {}
    for group in groups.values():
        if len(group) == 1:
            name, value = group[0]
            keys[prefix + name] = value
        else:
            keys[prefix + min(name for name, _ in group)] = Conflicting(value for _, value in sorted(group))
    return keys


class PrincipalType(Enum):
    """The caller's kind; the value is what AWS puts in ``aws:PrincipalType``."""

    ROOT = "Account"
    USER = "User"
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"


def principal_type_of(arn: str) -> PrincipalType:
    """The kind of principal an IAM or STS ARN names (a user unless it says otherwise)."""
    resource = arn.split(":", 5)[-1]
    if resource == "root":
        return PrincipalType.ROOT
    if resource.startswith("assumed-role/"):
        return PrincipalType.ASSUMED_ROLE
    if resource.startswith("federated-user/"):
        return PrincipalType.FEDERATED_USER
    return PrincipalType.USER


def _normalised(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    result: dict[str, ContextValue] = {}
    for name, value in context.items():
        key = name.lower()
        copied: ContextValue = value
        if isinstance(value, list):  # a copy, of the same kind
            copied = Conflicting(value) if isinstance(value, Conflicting) else list(value)
        if key in result and result[key] != copied:
            # Two spellings of one key with different values cannot both be true; the caller must decide.
            raise ValueError(f"condition key {name!r} is given twice with different values")
        result[key] = copied
    return result


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One request to authorise.

    ``context`` holds the condition keys (``kms:EncryptionContext:<k>``, ``kms:ViaService``,
    ``aws:SourceIp``, ``aws:PrincipalTag/<k>``...). Keys are lower-cased on construction; two spellings of
    one key with different values raise ``ValueError``. The global keys that follow from the other fields
    (``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType``, ``kms:CallerAccount`` and, for
    an IAM user, ``aws:username``) are added unless the caller set them.
    """

    principal_arn: str
    principal_account: str
    principal_type: PrincipalType
    action: str  # e.g. "kms:Encrypt"
    resource_arn: str  # the key's ARN
    resource_account: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    # The caller's unique id (AIDA...): a key policy bound to unique ids names the user by it (policy/principals.py).
    principal_id: str = ""

    def __post_init__(self) -> None:
        context = _normalised(self.context)
        derived: dict[str, ContextValue] = {
            "aws:principalarn": self.principal_arn,
            "aws:principalaccount": self.principal_account,
            "aws:principaltype": self.principal_type.value,
            "kms:calleraccount": self.principal_account,
        }
        if self.principal_type is PrincipalType.USER:
            derived["aws:username"] = self.principal_arn.rsplit("/", 1)[-1]
        for key, value in derived.items():
            context.setdefault(key, value)
        object.__setattr__(self, "context", MappingProxyType(context))

    @property
    def is_root(self) -> bool:
        """The account's root user (``arn:aws:iam::<account>:root``)."""
        return self.principal_type is PrincipalType.ROOT or self.principal_arn == ids.root_arn(self.principal_account)

    @property
    def is_cross_account(self) -> bool:
        return self.principal_account != self.resource_account
