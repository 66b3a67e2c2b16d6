"""Key ids, alias names and ARNs: parsed once, formatted once.

AWS accepts four spellings of a KMS key wherever a ``KeyId`` is taken: the key id (a UUID), the key ARN,
an alias name (``alias/...``) and an alias ARN. :func:`parse_key_reference` turns any of them into a
:class:`KeyReference`; resolving it against storage is the job of ``operations/keyrefs.py``.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from enum import Enum

PARTITION = "aws"
SERVICE = "kms"

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ALIAS_NAME_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
MAX_REGION_LENGTH = 32
_REGION_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_LOWER_HEX = frozenset("0123456789abcdef")


class ReferenceKind(Enum):
    KEY_ID = "key-id"
    KEY_ARN = "key-arn"
    ALIAS_NAME = "alias-name"
    ALIAS_ARN = "alias-arn"


@dataclass(frozen=True, slots=True)
class KeyReference:
    """What a caller wrote in ``KeyId``; ``region``/``account`` are set only for ARNs."""

    kind: ReferenceKind
    raw: str
    key_id: str | None = None
    alias_name: str | None = None
    region: str | None = None
    account: str | None = None

    @property
    def is_alias(self) -> bool:
        return self.kind in (ReferenceKind.ALIAS_NAME, ReferenceKind.ALIAS_ARN)


def new_request_id(now: float) -> str:
    """A UUID (version 7) that carries ``now`` (the service clock), so the audit trail finds a request id
    through its time index (storage/sql/audit.py)."""
    millis = int(now * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def new_key_id() -> str:
    return str(uuid.uuid4())


def is_key_id(value: str) -> bool:
    """A UUID (either case: AWS answers an upper-case one as a key that does not exist, not as malformed), or a
    multi-Region key id: ``mrk-`` and 32 lower-case hex digits (an unknown one is NotFound)."""
    if value.startswith("mrk-"):
        return len(value) == 36 and _LOWER_HEX.issuperset(value[4:])
    return bool(_UUID_RE.match(value))


def is_valid_alias_name(value: str) -> bool:
    return bool(_ALIAS_NAME_RE.match(value)) and len(value) <= 256


def is_valid_account_id(value: str) -> bool:
    return bool(_ACCOUNT_RE.match(value))


def is_valid_region(value: str) -> bool:
    """Syntax only (regions.py decides which names are served): lower-case letters, digits and single hyphens,
    starting with a letter, at most 32 characters (AWS's model bound). No regex: the value is untrusted."""
    return (
        0 < len(value) <= MAX_REGION_LENGTH
        and "a" <= value[0] <= "z"
        and _REGION_CHARACTERS.issuperset(value)
        and not value.endswith("-")
        and "--" not in value
    )


def key_arn(region: str, account: str, key_id: str) -> str:
    return f"arn:{PARTITION}:{SERVICE}:{region}:{account}:key/{key_id}"


def alias_arn(region: str, account: str, alias_name: str) -> str:
    return f"arn:{PARTITION}:{SERVICE}:{region}:{account}:{alias_name}"


def user_arn(account: str, user_name: str, path: str = "/") -> str:
    return f"arn:{PARTITION}:iam::{account}:user{path}{user_name}"


def root_arn(account: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:root"


def parse_key_reference(raw: str) -> KeyReference | None:
    """Classify ``raw``; ``None`` means it cannot name any key (callers answer ``NotFoundException``)."""
    if raw.startswith("arn:"):
        return _parse_arn(raw)
    if raw.startswith("alias/"):
        return KeyReference(ReferenceKind.ALIAS_NAME, raw, alias_name=raw)
    if is_key_id(raw):
        return KeyReference(ReferenceKind.KEY_ID, raw, key_id=raw)
    return None


def _parse_arn(raw: str) -> KeyReference | None:
    parts = raw.split(":", 5)
    if len(parts) != 6 or parts[1] != PARTITION or parts[2] != SERVICE:
        return None
    region, account, resource = parts[3], parts[4], parts[5]
    if not region or not _ACCOUNT_RE.match(account):
        return None
    if resource.startswith("key/"):
        key_id = resource[len("key/") :]
        if not is_key_id(key_id):
            return None
        return KeyReference(ReferenceKind.KEY_ARN, raw, key_id=key_id, region=region, account=account)
    if resource.startswith("alias/"):
        return KeyReference(ReferenceKind.ALIAS_ARN, raw, alias_name=resource, region=region, account=account)
    return None
