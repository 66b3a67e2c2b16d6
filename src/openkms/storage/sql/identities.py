"""The identities aggregate over SQL: accounts, users, access keys, groups, inline identity policies and
principal tags, and :meth:`principal_authorization`, which every request runs.

In write transactions ``get_user`` and ``get_group`` lock the row (the dialect's ``lock_clause``), so that a
check over a user's or group's children (the total size of its inline policies, its tag count) holds until
commit. Deleting a user or an access key also ends the console sessions opened with its keys.
"""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from openkms.storage.records import AccessKeyRecord, GroupRecord, PrincipalAuthorization, UserRecord
from openkms.storage.sql.core import Render, TransactionCore, columns, csv, marks, values

_USER_COLS = columns(UserRecord)
_ACCESS_KEY_COLS = columns(AccessKeyRecord)
_GROUP_COLS = columns(GroupRecord)
_USER_KEY = " WHERE account_id = ? AND user_name = ?"
_GROUP_KEY = " WHERE account_id = ? AND group_name = ?"


class IdentityQueries:
    """The statements of the identities aggregate, rendered for one dialect; ``lock`` is its row lock or ""."""

    def __init__(self, sql: Render, lock: str) -> None:
        u, ak, g = csv(_USER_COLS), csv(_ACCESS_KEY_COLS), csv(_GROUP_COLS)
        user_key, group_key = _USER_KEY, _GROUP_KEY
        ak_select = "SELECT " + ak + " FROM access_keys"
        ak_order = " ORDER BY account_id, user_name, access_key_id"
        # accounts
        self.insert_account = sql("INSERT INTO accounts (account_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
        self.account_exists = sql("SELECT 1 FROM accounts WHERE account_id = ?")
        self.list_accounts = sql("SELECT account_id FROM accounts ORDER BY account_id")
        # users
        self.insert_user = sql(f"INSERT INTO users ({u}) VALUES ({marks(len(_USER_COLS))}) ON CONFLICT DO NOTHING")
        self.get_user = sql(f"SELECT {u} FROM users WHERE account_id = ? AND user_name = ?{lock}")
        self.find_user_ignoring_case = sql(
            f"SELECT {u} FROM users WHERE account_id = ? AND lower(user_name) = lower(?)"
        )
        self.user_id_exists = sql("SELECT 1 FROM users WHERE user_id = ?")
        self.list_users = sql(f"SELECT {u} FROM users ORDER BY account_id, user_name")
        self.list_users_account = sql(f"SELECT {u} FROM users WHERE account_id = ? ORDER BY user_name")
        # delete_user: its console sessions, access keys, policies, tags and memberships, then the user
        self.delete_user_all = tuple(
            sql(statement)
            for statement in (
                "DELETE FROM console_sessions WHERE access_key_id IN"
                " (SELECT access_key_id FROM access_keys WHERE account_id = ? AND user_name = ?)",
                "DELETE FROM access_keys" + user_key,
                "DELETE FROM user_policies" + user_key,
                "DELETE FROM user_tags" + user_key,
                "DELETE FROM group_members" + user_key,
                "DELETE FROM users WHERE account_id = ? AND user_name = ?",
            )
        )
        # access keys
        self.insert_access_key = sql(
            f"INSERT INTO access_keys ({ak}) VALUES ({marks(len(_ACCESS_KEY_COLS))}) ON CONFLICT DO NOTHING"
        )
        self.get_access_key = sql(ak_select + " WHERE access_key_id = ?")
        self.list_access_keys = sql(ak_select + ak_order)
        self.list_access_keys_account = sql(ak_select + " WHERE account_id = ?" + ak_order)
        self.list_access_keys_user = sql(ak_select + " WHERE user_name = ?" + ak_order)
        self.list_access_keys_account_user = sql(ak_select + " WHERE account_id = ? AND user_name = ?" + ak_order)
        self.set_access_key_status = sql("UPDATE access_keys SET status = ? WHERE access_key_id = ?")
        self.delete_access_key_sessions = sql("DELETE FROM console_sessions WHERE access_key_id = ?")
        self.delete_access_key = sql("DELETE FROM access_keys WHERE access_key_id = ?")
        # inline policies
        self.put_user_policy = sql(
            "INSERT INTO user_policies (account_id, user_name, policy_name, document) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account_id, user_name, policy_name) DO UPDATE SET document = excluded.document"
        )
        self.delete_user_policy = sql("DELETE FROM user_policies" + user_key + " AND policy_name = ?")
        self.list_user_policies = sql(
            "SELECT policy_name, document FROM user_policies" + user_key + " ORDER BY policy_name"
        )
        self.put_group_policy = sql(
            "INSERT INTO group_policies (account_id, group_name, policy_name, document) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account_id, group_name, policy_name) DO UPDATE SET document = excluded.document"
        )
        self.delete_group_policy = sql("DELETE FROM group_policies" + group_key + " AND policy_name = ?")
        self.list_group_policies = sql(
            "SELECT policy_name, document FROM group_policies" + group_key + " ORDER BY policy_name"
        )
        # groups
        self.insert_group = sql(
            f"INSERT INTO iam_groups ({g}) VALUES ({marks(len(_GROUP_COLS))}) ON CONFLICT DO NOTHING"
        )
        self.get_group = sql(f"SELECT {g} FROM iam_groups" + group_key + lock)
        self.list_groups = sql(f"SELECT {g} FROM iam_groups ORDER BY account_id, group_name")
        self.list_groups_account = sql(f"SELECT {g} FROM iam_groups WHERE account_id = ? ORDER BY group_name")
        # delete_group: its policies and memberships; then the group itself
        self.delete_group_children = tuple(
            sql(f"DELETE FROM {table}" + group_key) for table in ("group_policies", "group_members")
        )
        self.delete_group = sql("DELETE FROM iam_groups" + group_key)
        self.add_user_to_group = sql(
            "INSERT INTO group_members (account_id, user_name, group_name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.remove_user_from_group = sql("DELETE FROM group_members" + user_key + " AND group_name = ?")
        self.list_groups_for_user = sql("SELECT group_name FROM group_members" + user_key + " ORDER BY group_name")
        self.list_group_members = sql("SELECT user_name FROM group_members" + group_key + " ORDER BY user_name")
        # principal tags
        self.put_user_tag = sql(
            "INSERT INTO user_tags (account_id, user_name, tag_key, tag_value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account_id, user_name, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
        )
        self.delete_user_tag = sql("DELETE FROM user_tags" + user_key + " AND tag_key = ?")
        self.list_user_tags = sql("SELECT tag_key, tag_value FROM user_tags" + user_key + " ORDER BY tag_key")
        # principal_authorization: (1) the user and its tags, one row per tag (one with NULLs if none)...
        self.authorization_user = sql(
            "SELECT " + ", ".join(f"u.{c}" for c in _USER_COLS) + ", t.tag_key, t.tag_value FROM users u"
            " LEFT JOIN user_tags t ON t.account_id = u.account_id AND t.user_name = u.user_name"
            " WHERE u.account_id = ? AND u.user_name = ? ORDER BY t.tag_key"
        )
        # ... (2) its own policies (branch 0), then per group its policies, or one row of NULLs (branch 1).
        self.authorization_policies = sql(
            "SELECT 0 AS branch, '' AS group_name, policy_name, document FROM user_policies"
            " WHERE account_id = ? AND user_name = ?"
            " UNION ALL"
            " SELECT 1, m.group_name, p.policy_name, p.document FROM group_members m"
            " LEFT JOIN group_policies p ON p.account_id = m.account_id AND p.group_name = m.group_name"
            " WHERE m.account_id = ? AND m.user_name = ?"
            " ORDER BY 1, 2, 3"
        )


class IdentitiesSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.identities.IdentityTransaction`."""

    __slots__ = ()
    _q: IdentityQueries

    # -- accounts

    def insert_account(self, account_id: str, created_at: float) -> None:
        self._write(self._q.insert_account, (account_id, created_at))

    def account_exists(self, account_id: str) -> bool:
        return self._one(self._q.account_exists, (account_id,)) is not None

    def list_accounts(self) -> list[str]:
        return [str(row[0]) for row in self._all(self._q.list_accounts, ())]

    # -- users

    def insert_user(self, user: UserRecord) -> None:
        """The account must exist (foreign key); a taken name or user id raises :class:`DuplicateError`."""
        self._insert(self._q.insert_user, values(user, _USER_COLS), "user")

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None:
        row = self._one(self._q.get_user, (account_id, user_name))
        return None if row is None else UserRecord(*row)

    def find_user_ignoring_case(self, account_id: str, user_name: str) -> UserRecord | None:
        row = self._one(self._q.find_user_ignoring_case, (account_id, user_name))
        return None if row is None else UserRecord(*row)

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]:
        """One indexed lookup per distinct id: few per call (a policy's principals, a page of grants)."""
        return {user_id for user_id in set(user_ids) if self._one(self._q.user_id_exists, (user_id,)) is not None}

    def list_users(self, account_id: str | None) -> list[UserRecord]:
        """Ordered by account id, then user name."""
        if account_id is None:
            rows = self._all(self._q.list_users, ())
        else:
            rows = self._all(self._q.list_users_account, (account_id,))
        return [UserRecord(*r) for r in rows]

    def delete_user(self, account_id: str, user_name: str) -> None:
        for sql in self._q.delete_user_all:
            self._write(sql, (account_id, user_name))

    # -- access keys

    def insert_access_key(self, key: AccessKeyRecord) -> None:
        """The user must exist (foreign key)."""
        self._insert(self._q.insert_access_key, values(key, _ACCESS_KEY_COLS), "access key")

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        row = self._one(self._q.get_access_key, (access_key_id,))
        return None if row is None else AccessKeyRecord(*row)

    def list_access_keys(self, account_id: str | None, user_name: str | None) -> list[AccessKeyRecord]:
        """Ordered by account id, user name, access key id; a ``None`` filter matches everything."""
        q = self._q
        if account_id is None:
            if user_name is None:
                rows = self._all(q.list_access_keys, ())
            else:
                rows = self._all(q.list_access_keys_user, (user_name,))
        elif user_name is None:
            rows = self._all(q.list_access_keys_account, (account_id,))
        else:
            rows = self._all(q.list_access_keys_account_user, (account_id, user_name))
        return [AccessKeyRecord(*r) for r in rows]

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        self._update(self._q.set_access_key_status, (status, access_key_id), "access key")

    def delete_access_key(self, access_key_id: str) -> None:
        self._write(self._q.delete_access_key_sessions, (access_key_id,))
        self._write(self._q.delete_access_key, (access_key_id,))

    # -- inline policies

    def put_user_policy(self, account_id: str, user_name: str, policy_name: str, document: str) -> None:
        self._write(self._q.put_user_policy, (account_id, user_name, policy_name, document))

    def delete_user_policy(self, account_id: str, user_name: str, policy_name: str) -> bool:
        return self._write(self._q.delete_user_policy, (account_id, user_name, policy_name)) > 0

    def list_user_policies(self, account_id: str, user_name: str) -> dict[str, str]:
        return {str(n): str(d) for n, d in self._all(self._q.list_user_policies, (account_id, user_name))}

    def put_group_policy(self, account_id: str, group_name: str, policy_name: str, document: str) -> None:
        self._write(self._q.put_group_policy, (account_id, group_name, policy_name, document))

    def delete_group_policy(self, account_id: str, group_name: str, policy_name: str) -> bool:
        return self._write(self._q.delete_group_policy, (account_id, group_name, policy_name)) > 0

    def list_group_policies(self, account_id: str, group_name: str) -> dict[str, str]:
        return {str(n): str(d) for n, d in self._all(self._q.list_group_policies, (account_id, group_name))}

    # -- groups

    def insert_group(self, group: GroupRecord) -> None:
        """The account must exist (foreign key); a taken name or group id raises :class:`DuplicateError`."""
        self._insert(self._q.insert_group, values(group, _GROUP_COLS), "group")

    def get_group(self, account_id: str, group_name: str) -> GroupRecord | None:
        row = self._one(self._q.get_group, (account_id, group_name))
        return None if row is None else GroupRecord(*row)

    def list_groups(self, account_id: str | None) -> list[GroupRecord]:
        if account_id is None:
            rows = self._all(self._q.list_groups, ())
        else:
            rows = self._all(self._q.list_groups_account, (account_id,))
        return [GroupRecord(*r) for r in rows]

    def delete_group(self, account_id: str, group_name: str) -> bool:
        for sql in self._q.delete_group_children:
            self._write(sql, (account_id, group_name))
        return self._write(self._q.delete_group, (account_id, group_name)) > 0

    def add_user_to_group(self, account_id: str, user_name: str, group_name: str) -> None:
        self._write(self._q.add_user_to_group, (account_id, user_name, group_name))

    def remove_user_from_group(self, account_id: str, user_name: str, group_name: str) -> bool:
        return self._write(self._q.remove_user_from_group, (account_id, user_name, group_name)) > 0

    def list_groups_for_user(self, account_id: str, user_name: str) -> list[str]:
        return [str(r[0]) for r in self._all(self._q.list_groups_for_user, (account_id, user_name))]

    def list_group_members(self, account_id: str, group_name: str) -> list[str]:
        return [str(r[0]) for r in self._all(self._q.list_group_members, (account_id, group_name))]

    # -- principal tags

    def put_user_tags(self, account_id: str, user_name: str, tags: Mapping[str, str]) -> None:
        for tag_key, tag_value in tags.items():
            self._write(self._q.put_user_tag, (account_id, user_name, tag_key, tag_value))

    def delete_user_tags(self, account_id: str, user_name: str, tag_keys: Sequence[str]) -> None:
        for tag_key in tag_keys:
            self._write(self._q.delete_user_tag, (account_id, user_name, tag_key))

    def list_user_tags(self, account_id: str, user_name: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._all(self._q.list_user_tags, (account_id, user_name))}

    def principal_authorization(self, account_id: str, user_name: str) -> PrincipalAuthorization | None:
        rows = self._all(self._q.authorization_user, (account_id, user_name))
        if not rows:
            return None
        width = len(_USER_COLS)
        user = UserRecord(*rows[0][:width])
        tags = {str(r[width]): str(r[width + 1]) for r in rows if r[width] is not None}
        groups: list[str] = []
        policies: list[str] = []
        params = (account_id, user_name, account_id, user_name)
        for branch, group_name, _policy_name, document in self._all(self._q.authorization_policies, params):
            if branch == 1 and (not groups or groups[-1] != group_name):
                groups.append(str(group_name))
            if document is not None:
                policies.append(str(document))
        return PrincipalAuthorization(user, tags, tuple(groups), tuple(policies))
