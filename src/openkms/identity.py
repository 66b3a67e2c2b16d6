"""Accounts, users, groups, access keys, inline identity policies and principal tags: administration of the
identities SigV4 authenticates and policy evaluation judges.

Secret access keys are stored wrapped under the root key with the access key id bound into the AAD, so a
row copied onto another access key does not open. Used by the ``openkms iam`` CLI, ``openkms init`` and the
dev server.

Names, policies and tags are checked as IAM checks them (IAM API reference, ``CreateUser``, ``CreateGroup``,
``PutUserPolicy``, ``TagUser``; IAM quotas):

- user and group names: 1-64 of ``[A-Za-z0-9+=,.@_-]``; policy names: 1-128 of ``[A-Za-z0-9_+=,.@-]``;
  user names are unique in an account ignoring case (``Dave`` cannot join ``dave``, IAM's
  EntityAlreadyExists), and the database's index on the lower-cased name holds the same rule;
- an inline policy is an identity policy (:func:`openkms.policy.document.parse_policy`), and a user's inline
  policies together hold at most 2,048 non-whitespace characters, a group's 5,120;
- at most 50 tags per user, keys 1-128 and values 0-256 characters of letters, digits, spaces and
  ``_.:/=+-@``; keys starting ``aws:`` are reserved. Tag keys of users are case-insensitive and keep the
  case last written: tagging ``department`` replaces ``Department``.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openkms import ids
from openkms.clock import Clock
from openkms.crypto import wrap
from openkms.errors import MalformedPolicyDocumentException
from openkms.policy import document as policy_document
from openkms.storage.ports import DuplicateError, Storage, Transaction
from openkms.storage.records import AccessKeyRecord, GroupRecord, UserRecord

ACTIVE = "Active"
INACTIVE = "Inactive"
_BASE32 = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
SECRET_BINDING = "access-key-secret"  # noqa: S105 (an AAD label, not a secret)

# The policy every administrator gets (init, the dev server) and migration 0002 gave every existing user.
# Byte for byte the text of migrations/0002_access_control.sql.
ADMINISTRATOR_POLICY_NAME = "AdministratorAccess"
ADMINISTRATOR_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'

USER_INLINE_POLICIES_MAX_CHARS = policy_document.USER_INLINE_POLICIES_MAX_CHARS
GROUP_INLINE_POLICIES_MAX_CHARS = policy_document.GROUP_INLINE_POLICIES_MAX_CHARS
MAX_USER_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256

_ENTITY_NAME_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_POLICY_NAME_RE = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


class IdentityError(Exception):
    """A user-facing admin error (unknown user, duplicate name...)."""


@dataclass(frozen=True, slots=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    user_name: str


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


def _new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_BASE32) for _ in range(16))


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_BASE32) for _ in range(17))


def _new_group_id() -> str:
    return "AGPA" + "".join(secrets.choice(_BASE32) for _ in range(17))


def group_arn(account_id: str, group_name: str) -> str:
    return f"arn:{ids.PARTITION}:iam::{account_id}:group/{group_name}"


# ---- validation --------------------------------------------------------------------------------------------


def validate_user_name(user_name: str) -> None:
    if not _ENTITY_NAME_RE.fullmatch(user_name):
        raise IdentityError("a user name is 1-64 characters: letters, digits and +=,.@_-")


def validate_group_name(group_name: str) -> None:
    if not _ENTITY_NAME_RE.fullmatch(group_name):
        raise IdentityError("a group name is 1-64 characters: letters, digits and +=,.@_-")


def validate_policy_name(policy_name: str) -> None:
    if not _POLICY_NAME_RE.fullmatch(policy_name):
        raise IdentityError("a policy name is 1-128 characters: letters, digits and _+=,.@-")


def policy_size(document: str) -> int:
    """What counts against the inline-policy limits: non-whitespace characters."""
    return policy_document.policy_size(document, "identity")


def validate_identity_policy(document: str, max_chars: int) -> None:
    """Parse ``document`` as an IAM identity policy of at most ``max_chars`` non-whitespace characters."""
    try:
        policy_document.parse_policy(document, "identity", max_size=max_chars)
    except MalformedPolicyDocumentException as exc:
        raise IdentityError(f"malformed policy document: {exc.message}") from None


def _valid_tag_text(text: str) -> bool:
    return all(
        c.isalnum() or c in _TAG_PUNCTUATION or unicodedata.category(c).startswith("Z")  # \p{L}\p{N}\p{Z}
        for c in text
    )


def validate_tag_key(key: str) -> None:
    if not 1 <= len(key) <= TAG_KEY_MAX or not _valid_tag_text(key):
        raise IdentityError(
            f"a tag key is 1-{TAG_KEY_MAX} characters: letters, digits, spaces and _.:/=+-@, not {key!r}"
        )


def validate_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_USER_TAGS:
        raise IdentityError(f"a user has at most {MAX_USER_TAGS} tags")
    folded: set[str] = set()
    for key, value in tags.items():
        validate_tag_key(key)
        if key.lower().startswith("aws:"):
            raise IdentityError(f"tag keys starting with aws: are reserved: {key!r}")
        if len(value) > TAG_VALUE_MAX or not _valid_tag_text(value):
            raise IdentityError(
                f"a tag value is 0-{TAG_VALUE_MAX} characters: letters, digits, spaces and _.:/=+-@ "
                f"(the value of {key!r})"
            )
        if key.lower() in folded:
            raise IdentityError(f"duplicate tag key {key!r} (tag keys of users are case-insensitive)")
        folded.add(key.lower())


def secret_binding(access_key_id: str) -> tuple[str, str]:
    return (SECRET_BINDING, access_key_id)


def ensure_account(storage: Storage, account_id: str, clock: Clock) -> None:
    if not ids.is_valid_account_id(account_id):
        raise IdentityError(f"an account id is 12 digits, not {account_id!r}")
    with storage.transaction() as tx:
        tx.insert_account(account_id, clock.now())


def create_user(storage: Storage, account_id: str, user_name: str, clock: Clock) -> UserRecord:
    validate_user_name(user_name)
    user = UserRecord(account_id, user_name, _new_user_id(), ids.user_arn(account_id, user_name), clock.now())
    taken = f"User with name {user_name} already exists."  # IAM's words
    with storage.transaction() as tx:
        if not tx.account_exists(account_id):
            raise IdentityError(f"no account {account_id}")
        if tx.find_user_ignoring_case(account_id, user_name) is not None:
            raise IdentityError(taken)
        try:
            tx.insert_user(user)
        except DuplicateError:
            raise IdentityError(taken) from None
    return user


def create_access_key(
    storage: Storage,
    root_key: bytes,
    account_id: str,
    user_name: str,
    clock: Clock,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> NewAccessKey:
    """Issue a key pair; a pinned id and secret (dev mode, CI) are taken as given."""
    key_id = access_key_id or _new_access_key_id()
    secret = secret_access_key or _new_secret()
    if not key_id or not secret:
        raise IdentityError("an access key id and secret must not be empty")
    record = AccessKeyRecord(
        key_id,
        account_id,
        user_name,
        wrap.wrap(root_key, secret.encode("utf-8"), secret_binding(key_id)),
        ACTIVE,
        clock.now(),
    )
    with storage.transaction() as tx:
        if tx.get_user(account_id, user_name) is None:
            raise IdentityError(f"no user {user_name} in account {account_id}")
        try:
            tx.insert_access_key(record)
        except DuplicateError:
            raise IdentityError(f"access key {key_id} already exists") from None
    return NewAccessKey(key_id, secret, account_id, user_name)


def reveal_secret(root_key: bytes, record: AccessKeyRecord) -> str:
    return wrap.unwrap(root_key, record.wrapped_secret, secret_binding(record.access_key_id)).decode("utf-8")


def set_access_key_status(storage: Storage, access_key_id: str, status: str) -> None:
    if status not in (ACTIVE, INACTIVE):
        raise IdentityError("status is Active or Inactive")
    with storage.transaction() as tx:
        if tx.get_access_key(access_key_id) is None:
            raise IdentityError(f"no access key {access_key_id}")
        tx.set_access_key_status(access_key_id, status)


def delete_access_key(storage: Storage, access_key_id: str) -> None:
    with storage.transaction() as tx:
        if tx.get_access_key(access_key_id) is None:
            raise IdentityError(f"no access key {access_key_id}")
        tx.delete_access_key(access_key_id)


def delete_user(storage: Storage, account_id: str, user_name: str) -> None:
    """Delete the user with its access keys, inline policies, tags and group memberships."""
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        tx.delete_user(account_id, user_name)


def _require_user(tx: Transaction, account_id: str, user_name: str) -> UserRecord:
    """The user (row-locked in a write transaction), or IdentityError."""
    user = tx.get_user(account_id, user_name)
    if user is None:
        raise IdentityError(f"no user {user_name} in account {account_id}")
    return user


def _require_group(tx: Transaction, account_id: str, group_name: str) -> GroupRecord:
    group = tx.get_group(account_id, group_name)
    if group is None:
        raise IdentityError(f"no group {group_name} in account {account_id}")
    return group


def _check_aggregate(policies: Mapping[str, str], policy_name: str, document: str, limit: int, owner: str) -> None:
    """IAM counts all of an identity's inline policies together, in non-whitespace characters."""
    size = policy_document.policy_size
    others = sum(size(text, "identity") for name, text in policies.items() if name != policy_name)
    total = others + size(document, "identity")
    if total > limit:
        raise IdentityError(
            f"the inline policies of {owner} would total {total} non-whitespace characters; the limit is {limit}"
        )


# ---- user inline policies ----------------------------------------------------------------------------------


def put_user_policy(storage: Storage, account_id: str, user_name: str, policy_name: str, document: str) -> None:
    """Create or replace an inline policy of the user."""
    validate_policy_name(policy_name)
    validate_identity_policy(document, USER_INLINE_POLICIES_MAX_CHARS)
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)  # locks the user: concurrent puts cannot both pass the limit
        policies = tx.list_user_policies(account_id, user_name)
        _check_aggregate(policies, policy_name, document, USER_INLINE_POLICIES_MAX_CHARS, f"user {user_name}")
        tx.put_user_policy(account_id, user_name, policy_name, document)


def get_user_policy(storage: Storage, account_id: str, user_name: str, policy_name: str) -> str:
    policies = list_user_policies(storage, account_id, user_name)
    if policy_name not in policies:
        raise IdentityError(f"no policy {policy_name} on user {user_name}")
    return policies[policy_name]


def list_user_policies(storage: Storage, account_id: str, user_name: str) -> dict[str, str]:
    with storage.read() as tx:
        _require_user(tx, account_id, user_name)
        return tx.list_user_policies(account_id, user_name)


def delete_user_policy(storage: Storage, account_id: str, user_name: str, policy_name: str) -> None:
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        if not tx.delete_user_policy(account_id, user_name, policy_name):
            raise IdentityError(f"no policy {policy_name} on user {user_name}")


def ensure_administrator_policy(storage: Storage, account_id: str, user_name: str) -> bool:
    """Give the user :data:`ADMINISTRATOR_POLICY` as ``AdministratorAccess`` unless it has exactly that already;
    whether anything was written. For the administrators of ``init`` and the dev server (no size check:
    bootstrapping an administrator must not fail on what else it holds)."""
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        if tx.list_user_policies(account_id, user_name).get(ADMINISTRATOR_POLICY_NAME) == ADMINISTRATOR_POLICY:
            return False
        tx.put_user_policy(account_id, user_name, ADMINISTRATOR_POLICY_NAME, ADMINISTRATOR_POLICY)
        return True


# ---- groups ------------------------------------------------------------------------------------------------


def create_group(storage: Storage, account_id: str, group_name: str, clock: Clock) -> GroupRecord:
    validate_group_name(group_name)
    group = GroupRecord(account_id, group_name, _new_group_id(), group_arn(account_id, group_name), clock.now())
    with storage.transaction() as tx:
        if not tx.account_exists(account_id):
            raise IdentityError(f"no account {account_id}")
        try:
            tx.insert_group(group)
        except DuplicateError:
            raise IdentityError(f"group {group_name} already exists in account {account_id}") from None
    return group


def get_group(storage: Storage, account_id: str, group_name: str) -> tuple[GroupRecord, list[str]]:
    """The group and the names of its members."""
    with storage.read() as tx:
        group = _require_group(tx, account_id, group_name)
        return group, tx.list_group_members(account_id, group_name)


def delete_group(storage: Storage, account_id: str, group_name: str) -> None:
    """Delete the group with its inline policies; its members lose the membership (and those policies)."""
    with storage.transaction() as tx:
        if not tx.delete_group(account_id, group_name):
            raise IdentityError(f"no group {group_name} in account {account_id}")


def add_user_to_group(storage: Storage, account_id: str, user_name: str, group_name: str) -> None:
    """Idempotent: adding a member again changes nothing."""
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        _require_group(tx, account_id, group_name)
        tx.add_user_to_group(account_id, user_name, group_name)


def remove_user_from_group(storage: Storage, account_id: str, user_name: str, group_name: str) -> None:
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        _require_group(tx, account_id, group_name)
        if not tx.remove_user_from_group(account_id, user_name, group_name):
            raise IdentityError(f"user {user_name} is not in group {group_name}")


def list_groups_for_user(storage: Storage, account_id: str, user_name: str) -> list[str]:
    with storage.read() as tx:
        _require_user(tx, account_id, user_name)
        return tx.list_groups_for_user(account_id, user_name)


def put_group_policy(storage: Storage, account_id: str, group_name: str, policy_name: str, document: str) -> None:
    """Create or replace an inline policy of the group."""
    validate_policy_name(policy_name)
    validate_identity_policy(document, GROUP_INLINE_POLICIES_MAX_CHARS)
    with storage.transaction() as tx:
        _require_group(tx, account_id, group_name)
        policies = tx.list_group_policies(account_id, group_name)
        _check_aggregate(policies, policy_name, document, GROUP_INLINE_POLICIES_MAX_CHARS, f"group {group_name}")
        tx.put_group_policy(account_id, group_name, policy_name, document)


def get_group_policy(storage: Storage, account_id: str, group_name: str, policy_name: str) -> str:
    policies = list_group_policies(storage, account_id, group_name)
    if policy_name not in policies:
        raise IdentityError(f"no policy {policy_name} on group {group_name}")
    return policies[policy_name]


def list_group_policies(storage: Storage, account_id: str, group_name: str) -> dict[str, str]:
    with storage.read() as tx:
        _require_group(tx, account_id, group_name)
        return tx.list_group_policies(account_id, group_name)


def delete_group_policy(storage: Storage, account_id: str, group_name: str, policy_name: str) -> None:
    with storage.transaction() as tx:
        _require_group(tx, account_id, group_name)
        if not tx.delete_group_policy(account_id, group_name, policy_name):
            raise IdentityError(f"no policy {policy_name} on group {group_name}")


# ---- principal tags ----------------------------------------------------------------------------------------


def tag_user(storage: Storage, account_id: str, user_name: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite tags; a key differing only in case from an existing one replaces it."""
    validate_tags(tags)
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        existing = tx.list_user_tags(account_id, user_name)
        new_folded = {key.lower() for key in tags}
        replaced = [key for key in existing if key.lower() in new_folded and key not in tags]
        total = len(existing) - len(replaced) + sum(1 for key in tags if key not in existing)
        if total > MAX_USER_TAGS:
            raise IdentityError(f"user {user_name} would have {total} tags; the limit is {MAX_USER_TAGS}")
        tx.delete_user_tags(account_id, user_name, replaced)
        tx.put_user_tags(account_id, user_name, tags)


def untag_user(storage: Storage, account_id: str, user_name: str, tag_keys: Sequence[str]) -> None:
    """Remove tags by key, ignoring case; keys the user does not have are ignored (as IAM does)."""
    for key in tag_keys:
        validate_tag_key(key)
    folded = {key.lower() for key in tag_keys}
    with storage.transaction() as tx:
        _require_user(tx, account_id, user_name)
        doomed = [key for key in tx.list_user_tags(account_id, user_name) if key.lower() in folded]
        tx.delete_user_tags(account_id, user_name, doomed)


def list_user_tags(storage: Storage, account_id: str, user_name: str) -> dict[str, str]:
    with storage.read() as tx:
        _require_user(tx, account_id, user_name)
        return tx.list_user_tags(account_id, user_name)
