"""The identities aggregate of the storage port: accounts, users, access keys, groups, inline identity policies
and principal tags, and what every request reads of them (:meth:`principal_authorization`). Composed into
:class:`~openkms.storage.ports.Transaction`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from openkms.storage.records import AccessKeyRecord, GroupRecord, PrincipalAuthorization, UserRecord


class IdentityTransaction(Protocol):
    # accounts
    def insert_account(self, account_id: str, created_at: float) -> None:
        """Idempotent: an existing account is left alone."""
        ...

    def account_exists(self, account_id: str) -> bool: ...
    def list_accounts(self) -> list[str]: ...

    # users
    def insert_user(self, user: UserRecord) -> None:
        """Raises :class:`DuplicateError` if the name is taken in the account, also in another case."""
        ...

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None:
        """In a write transaction the row is locked until commit, so that read-check-write sequences on the
        user's children (the aggregate size of its inline policies, say) cannot interleave."""
        ...

    def find_user_ignoring_case(self, account_id: str, user_name: str) -> UserRecord | None:
        """The account's user whose name equals ``user_name`` ignoring case (IAM user names are unique so)."""
        ...

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` that some user has now (a deleted user's unique id is never reused)."""
        ...

    def list_users(self, account_id: str | None) -> list[UserRecord]: ...
    def delete_user(self, account_id: str, user_name: str) -> None:
        """Also deletes the user's access keys, inline policies, tags and group memberships."""
        ...

    # access keys
    def insert_access_key(self, key: AccessKeyRecord) -> None: ...
    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...
    def list_access_keys(self, account_id: str | None, user_name: str | None) -> list[AccessKeyRecord]: ...
    def set_access_key_status(self, access_key_id: str, status: str) -> None: ...
    def delete_access_key(self, access_key_id: str) -> None: ...

    # inline identity policies (documents are JSON text, stored as given; names ordered bytewise)
    def put_user_policy(self, account_id: str, user_name: str, policy_name: str, document: str) -> None:
        """Insert or replace; the user must exist (:class:`StorageError` otherwise)."""
        ...

    def delete_user_policy(self, account_id: str, user_name: str, policy_name: str) -> bool:
        """Whether a policy was deleted."""
        ...

    def list_user_policies(self, account_id: str, user_name: str) -> dict[str, str]:
        """Policy name -> document, ordered by name."""
        ...

    # groups
    def insert_group(self, group: GroupRecord) -> None:
        """Raises :class:`DuplicateError` if the name is taken in the account (or the group id anywhere)."""
        ...

    def get_group(self, account_id: str, group_name: str) -> GroupRecord | None:
        """In a write transaction the row is locked until commit (see :meth:`get_user`)."""
        ...

    def list_groups(self, account_id: str | None) -> list[GroupRecord]:
        """Ordered by account id, then group name; every account's if ``account_id`` is None."""
        ...

    def delete_group(self, account_id: str, group_name: str) -> bool:
        """Also deletes the group's inline policies and memberships; whether the group existed."""
        ...

    def add_user_to_group(self, account_id: str, user_name: str, group_name: str) -> None:
        """Idempotent; the user and the group must exist (:class:`StorageError` otherwise)."""
        ...

    def remove_user_from_group(self, account_id: str, user_name: str, group_name: str) -> bool:
        """Whether the user was a member."""
        ...

    def list_groups_for_user(self, account_id: str, user_name: str) -> list[str]:
        """Group names, ordered."""
        ...

    def list_group_members(self, account_id: str, group_name: str) -> list[str]:
        """User names, ordered."""
        ...

    def put_group_policy(self, account_id: str, group_name: str, policy_name: str, document: str) -> None:
        """Insert or replace; the group must exist (:class:`StorageError` otherwise)."""
        ...

    def delete_group_policy(self, account_id: str, group_name: str, policy_name: str) -> bool: ...
    def list_group_policies(self, account_id: str, group_name: str) -> dict[str, str]:
        """Policy name -> document, ordered by name."""
        ...

    # principal tags (aws:PrincipalTag/...)
    def put_user_tags(self, account_id: str, user_name: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite each tag; the user must exist. Keys compare exactly (case rules are the caller's)."""
        ...

    def delete_user_tags(self, account_id: str, user_name: str, tag_keys: Sequence[str]) -> None: ...
    def list_user_tags(self, account_id: str, user_name: str) -> dict[str, str]:
        """Tag key -> value, ordered by key."""
        ...

    def principal_authorization(self, account_id: str, user_name: str) -> PrincipalAuthorization | None:
        """The user, its tags, groups and every inline policy that applies to it; None if there is no such user.

        On the path of every API request: two queries, both on primary keys or indexes.
        """
        ...
