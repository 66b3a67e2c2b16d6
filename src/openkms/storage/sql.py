"""The storage port over SQL, written once for both engines.

``sqlite.py`` and ``postgres.py`` differ only in how they connect, which statements open a transaction and
which driver exceptions mean what; they describe that in a :class:`Dialect` and inherit everything else
from :class:`SQLStorage`. Every query is written here with ``?`` placeholders and rewritten once per
dialect, so the two engines cannot drift apart.

Rules the engines share:

- Each thread has its own connection (DB-API connections are not meant to be shared mid-transaction);
  :class:`SQLStorage` keeps a registry so ``close()`` can close all of them and a dead thread's
  connection is closed when the next one is opened.
- Inserts that can collide use ``ON CONFLICT DO NOTHING`` and raise :class:`DuplicateError` when no row was
  written. No statement fails, so on PostgreSQL the transaction stays usable after a caught duplicate.
- In write transactions ``get_key`` and ``get_alias`` lock the row (PostgreSQL ``FOR NO KEY UPDATE``;
  SQLite already serialises writers with ``BEGIN IMMEDIATE``), because ``update_key`` overwrites every
  mutable column: without the lock, a concurrent read-modify-write (DescribeKey -> UpdateKeyDescription)
  could silently undo a DisableKey. ``get_user`` and ``get_group`` lock likewise, so that a check over a
  user's or group's children (the total size of its inline policies, its tag count) holds until commit.
- Grant ``operations`` are stored as a JSON list in a TEXT column (a tuple in :class:`GrantRecord`).
- Driver errors become :class:`StorageError` (the original kept as ``__cause__``) so the server maps them to
  ``KMSInternalException`` without leaking driver text to clients.
"""

# The queries below are assembled from column names taken from records.py and fixed fragments; values
# always travel as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

from openkms.storage import migrate as _migrate
from openkms.storage.audit_sql import AuditQueriesMixin
from openkms.storage.ports import DuplicateError, StorageError, Transaction
from openkms.storage.records import (
    AccessKeyRecord,
    AliasRecord,
    ConsoleSessionRecord,
    GrantRecord,
    GroupRecord,
    ImportedMaterialRecord,
    JobLeaseRecord,
    KeyCount,
    KeyRecord,
    KeyVersionRecord,
    PrincipalAuthorization,
    SealRecord,
    TagRecord,
    UserRecord,
)

# Runs inside every write transaction just before COMMIT (the audit record of a state change joins its
# transaction this way); what it returns, if anything, runs after the commit succeeded.
CommitHook = Callable[[Transaction], Callable[[], None] | None]


class Cursor(Protocol):
    """The slice of a DB-API cursor we use; both ``sqlite3`` and ``psycopg`` cursors fit."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> object: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between engines, as data."""

    name: str  # "sqlite" or "postgresql"; also Storage.dialect
    placeholder: str  # "?" or "%s"
    driver_error: type[Exception]  # base class of the driver's errors
    is_unique_violation: Callable[[Exception], bool]
    column_types: Mapping[str, str]  # migration tokens, see migrations/0001_initial.sql
    # Appended to get_key/get_alias/get_user/get_group in write transactions ("" where writers are serialised).
    lock_clause: str
    begin_write: tuple[str, ...]
    begin_read: tuple[str, ...]
    begin_migrate: tuple[str, ...]  # opens a transaction holding the migration lock
    table_exists: str  # one parameter: the table name; returns a row if it exists

    def wrap(self, exc: Exception) -> StorageError:
        """The port's error for a driver error; the caller chains the original with ``from``."""
        if self.is_unique_violation(exc):
            return DuplicateError(f"{self.name}: unique constraint violated")
        return StorageError(f"{self.name}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------- rows


def _columns(record_type: type[Any]) -> tuple[str, ...]:
    """Column names equal field names, so the SQL lists cannot drift from records.py."""
    return tuple(f.name for f in fields(record_type))


_KEY_COLS = _columns(KeyRecord)
_KEY_IMMUTABLE = frozenset(
    {"key_id", "account_id", "region", "arn", "key_usage", "key_spec", "origin", "key_manager", "creation_date"}
)
_KEY_MUTABLE = tuple(c for c in _KEY_COLS if c not in _KEY_IMMUTABLE and c != "multi_region")
_KEY_BOOLS = tuple(i for i, c in enumerate(_KEY_COLS) if c in ("multi_region", "rotation_enabled"))
_VERSION_COLS = _columns(KeyVersionRecord)
_ALIAS_COLS = _columns(AliasRecord)
_USER_COLS = _columns(UserRecord)
_ACCESS_KEY_COLS = _columns(AccessKeyRecord)
_SEAL_COLS = _columns(SealRecord)
_GROUP_COLS = _columns(GroupRecord)
_GRANT_COLS = _columns(GrantRecord)
_GRANT_OPERATIONS = _GRANT_COLS.index("operations")
_IMPORTED_COLS = _columns(ImportedMaterialRecord)
_SESSION_COLS = _columns(ConsoleSessionRecord)


def _grant_values(grant: GrantRecord) -> tuple[Any, ...]:
    values = list(_values(grant, _GRANT_COLS))
    values[_GRANT_OPERATIONS] = json.dumps(list(grant.operations), separators=(",", ":"))
    return tuple(values)


def _grant_from_row(row: Sequence[Any]) -> GrantRecord:
    values = list(row)
    values[_GRANT_OPERATIONS] = tuple(json.loads(values[_GRANT_OPERATIONS]))
    return GrantRecord(*values)


def _grant_list_query(select: str, after: bool, by_id: bool, by_grantee: bool) -> str:
    """One of the eight ``list_grants`` statements: a fixed WHERE per combination of filters, so each stays a
    plain indexed range scan (no ``? IS NULL OR ...`` that a generic plan could not use)."""
    where = " WHERE key_id = ?"
    where += " AND grant_id = ?" if by_id else ""
    where += " AND grantee_principal = ?" if by_grantee else ""
    where += " AND grant_id > ?" if after else ""
    return select + where + " ORDER BY grant_id LIMIT ?"


def _grant_list_name(after: bool, by_id: bool, by_grantee: bool) -> str:
    return "list_grants" + "_after" * after + "_id" * by_id + "_grantee" * by_grantee


def _key_from_row(row: Sequence[Any]) -> KeyRecord:
    values = list(row)
    for i in _KEY_BOOLS:  # SQLite has no boolean type and hands back 0/1
        values[i] = bool(values[i])
    return KeyRecord(*values)


def _values(record: object, cols: Iterable[str]) -> tuple[Any, ...]:
    return tuple(getattr(record, c) for c in cols)


def _csv(cols: Iterable[str]) -> str:
    return ", ".join(cols)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# -- key import


def _key_import_queries(lock: str) -> dict[str, str]:
    """The statements of the key import section (``?`` placeholders, rendered with the others)."""
    m = _csv(_IMPORTED_COLS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _IMPORTED_COLS if c != "key_id")
    return {
        "get_imported_material": f"SELECT {m} FROM imported_key_material WHERE key_id = ?{lock}",
        "put_imported_material": (
            f"INSERT INTO imported_key_material ({m}) VALUES ({_marks(len(_IMPORTED_COLS))})"
            f" ON CONFLICT (key_id) DO UPDATE SET {updates}"
        ),
        "delete_version": "DELETE FROM key_versions WHERE key_id = ? AND version_id = ?",
        "list_expired_imported_material": (
            "SELECT " + ", ".join(f"m.{c}" for c in _IMPORTED_COLS) + " FROM imported_key_material m"
            " JOIN key_versions v ON v.key_id = m.key_id AND v.version_id = m.version_id"
            " WHERE m.valid_to IS NOT NULL AND m.valid_to <= ? ORDER BY m.valid_to, m.key_id LIMIT ?"
        ),
    }


# -- rotation, deletion and job leases (key lifecycle, docs/lifecycle.md)

_LEASE_COLS = _columns(JobLeaseRecord)


def _lifecycle_queries(key_columns: str) -> dict[str, str]:
    lease = _csv(_LEASE_COLS)
    sessions = _csv(_SESSION_COLS)
    return {
        # -- rotation
        "keys_due_for_rotation": (
            f"SELECT {key_columns} FROM keys WHERE key_state = ? AND next_rotation_date IS NOT NULL"
            " AND next_rotation_date <= ? ORDER BY next_rotation_date, key_id LIMIT ?"
        ),
        "count_versions": "SELECT COUNT(*) FROM key_versions WHERE key_id = ? AND rotation_type = ?",
        # -- deletion
        "keys_due_for_deletion": (
            f"SELECT {key_columns} FROM keys WHERE deletion_date IS NOT NULL AND deletion_date <= ?"
            " ORDER BY deletion_date, key_id LIMIT ?"
        ),
        # -- console sessions
        "insert_console_session": (
            f"INSERT INTO console_sessions ({sessions}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
        ),
        "get_console_session": f"SELECT {sessions} FROM console_sessions WHERE token_digest = ?",
        "delete_console_session": "DELETE FROM console_sessions WHERE token_digest = ?",
        "delete_expired_console_sessions": "DELETE FROM console_sessions WHERE expires_at <= ?",
        "delete_access_key_sessions": "DELETE FROM console_sessions WHERE access_key_id = ?",
        "delete_user_sessions": (
            "DELETE FROM console_sessions WHERE access_key_id IN"
            " (SELECT access_key_id FROM access_keys WHERE account_id = ? AND user_name = ?)"
        ),
        # -- job leases
        "ensure_job_lease": (
            "INSERT INTO job_leases (job_name, holder, lease_until, next_run_at, runs, failures)"
            " VALUES (?, '', 0, 0, 0, 0) ON CONFLICT DO NOTHING"
        ),
        "get_job_lease": f"SELECT {lease} FROM job_leases WHERE job_name = ?",
        "acquire_job_lease": (
            "UPDATE job_leases SET holder = ?, lease_until = ?, last_started_at = ?"
            " WHERE job_name = ? AND lease_until <= ? AND next_run_at <= ?"
        ),
        "release_job_lease": (
            "UPDATE job_leases SET lease_until = ?, next_run_at = ?, last_finished_at = ?, runs = runs + 1,"
            " failures = failures + ? WHERE job_name = ? AND holder = ?"
        ),
    }


def _imported_from_row(row: Sequence[Any]) -> ImportedMaterialRecord:
    values = list(row)
    values[_IMPORTED_COLS.index("fingerprint")] = bytes(values[_IMPORTED_COLS.index("fingerprint")])
    return ImportedMaterialRecord(*values)


class _Queries:
    """Every statement, rendered for one dialect (placeholder style, row locking)."""

    def __init__(self, placeholder: str, lock: str) -> None:
        record_columns = (_KEY_COLS, _VERSION_COLS, _ALIAS_COLS, _USER_COLS, _ACCESS_KEY_COLS, _SEAL_COLS)
        k, v, a, u, ak, s = (_csv(c) for c in record_columns)
        g, gr = _csv(_GROUP_COLS), _csv(_GRANT_COLS)
        grant_select = "SELECT " + gr + " FROM grants"
        user_key = " WHERE account_id = ? AND user_name = ?"
        group_key = " WHERE account_id = ? AND group_name = ?"
        keys_where = "SELECT " + k + " FROM keys WHERE account_id = ? AND region = ?"
        alias_where = "SELECT " + a + " FROM aliases WHERE account_id = ? AND region = ?"
        ak_select = "SELECT " + ak + " FROM access_keys"
        ak_order = " ORDER BY account_id, user_name, access_key_id"
        raw = {
            "insert_key": f"INSERT INTO keys ({k}) VALUES ({_marks(len(_KEY_COLS))}) ON CONFLICT DO NOTHING",
            "get_key": f"SELECT {k} FROM keys WHERE key_id = ?{lock}",
            "update_key": "UPDATE keys SET " + ", ".join(f"{c} = ?" for c in _KEY_MUTABLE) + " WHERE key_id = ?",
            "list_keys": keys_where + " ORDER BY key_id LIMIT ?",
            "list_keys_after": keys_where + " AND key_id > ? ORDER BY key_id LIMIT ?",
            "count_keys": (
                "SELECT account_id, region, key_state, COUNT(*) FROM keys"
                " GROUP BY account_id, region, key_state ORDER BY account_id, region, key_state"
            ),
            "delete_key_tags": "DELETE FROM tags WHERE key_id = ?",
            "delete_key_aliases": "DELETE FROM aliases WHERE target_key_id = ?",
            "delete_key_versions": "DELETE FROM key_versions WHERE key_id = ?",
            "delete_key_grants": "DELETE FROM grants WHERE key_id = ?",
            "delete_key_imported_material": "DELETE FROM imported_key_material WHERE key_id = ?",
            "delete_key": "DELETE FROM keys WHERE key_id = ?",
            # version_number: the next slot of this key, so list_versions orders by insertion.
            "insert_version": (
                "INSERT INTO key_versions (key_id, version_id, version_number, created_at, wrapped_material,"
                " rotation_type) VALUES (?, ?, (SELECT COALESCE(MAX(version_number), 0) + 1 FROM key_versions"
                " WHERE key_id = ?), ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            "get_version": f"SELECT {v} FROM key_versions WHERE key_id = ? AND version_id = ?",
            "list_versions": f"SELECT {v} FROM key_versions WHERE key_id = ? ORDER BY version_number",
            "insert_alias": f"INSERT INTO aliases ({a}) VALUES ({_marks(len(_ALIAS_COLS))}) ON CONFLICT DO NOTHING",
            "get_alias": f"SELECT {a} FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?{lock}",
            "update_alias": (
                "UPDATE aliases SET target_key_id = ?, last_updated_date = ?"
                " WHERE account_id = ? AND region = ? AND alias_name = ?"
            ),
            "delete_alias": "DELETE FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
            "list_aliases": alias_where + " ORDER BY alias_name LIMIT ?",
            "list_aliases_after": alias_where + " AND alias_name > ? ORDER BY alias_name LIMIT ?",
            "list_aliases_key": alias_where + " AND target_key_id = ? ORDER BY alias_name LIMIT ?",
            "list_aliases_key_after": (
                alias_where + " AND target_key_id = ? AND alias_name > ? ORDER BY alias_name LIMIT ?"
            ),
            "put_tag": (
                "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)"
                " ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
            ),
            "delete_tag": "DELETE FROM tags WHERE key_id = ? AND tag_key = ?",
            "list_tags": "SELECT key_id, tag_key, tag_value FROM tags WHERE key_id = ? ORDER BY tag_key LIMIT ?",
            "list_tags_after": (
                "SELECT key_id, tag_key, tag_value FROM tags WHERE key_id = ? AND tag_key > ? ORDER BY tag_key LIMIT ?"
            ),
            "count_tags": "SELECT COUNT(*) FROM tags WHERE key_id = ?",
            "insert_account": "INSERT INTO accounts (account_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            "account_exists": "SELECT 1 FROM accounts WHERE account_id = ?",
            "list_accounts": "SELECT account_id FROM accounts ORDER BY account_id",
            "insert_user": f"INSERT INTO users ({u}) VALUES ({_marks(len(_USER_COLS))}) ON CONFLICT DO NOTHING",
            "get_user": f"SELECT {u} FROM users WHERE account_id = ? AND user_name = ?{lock}",
            "find_user_ignoring_case": f"SELECT {u} FROM users WHERE account_id = ? AND lower(user_name) = lower(?)",
            "user_id_exists": "SELECT 1 FROM users WHERE user_id = ?",
            "list_users": f"SELECT {u} FROM users ORDER BY account_id, user_name",
            "list_users_account": f"SELECT {u} FROM users WHERE account_id = ? ORDER BY user_name",
            "delete_user_access_keys": "DELETE FROM access_keys" + user_key,
            "delete_user_policies": "DELETE FROM user_policies" + user_key,
            "delete_user_all_tags": "DELETE FROM user_tags" + user_key,
            "delete_user_memberships": "DELETE FROM group_members" + user_key,
            "delete_user": "DELETE FROM users WHERE account_id = ? AND user_name = ?",
            "insert_access_key": (
                f"INSERT INTO access_keys ({ak}) VALUES ({_marks(len(_ACCESS_KEY_COLS))}) ON CONFLICT DO NOTHING"
            ),
            "get_access_key": ak_select + " WHERE access_key_id = ?",
            "list_access_keys": ak_select + ak_order,
            "list_access_keys_account": ak_select + " WHERE account_id = ?" + ak_order,
            "list_access_keys_user": ak_select + " WHERE user_name = ?" + ak_order,
            "list_access_keys_account_user": ak_select + " WHERE account_id = ? AND user_name = ?" + ak_order,
            "set_access_key_status": "UPDATE access_keys SET status = ? WHERE access_key_id = ?",
            "delete_access_key": "DELETE FROM access_keys WHERE access_key_id = ?",
            # inline policies
            "put_user_policy": (
                "INSERT INTO user_policies (account_id, user_name, policy_name, document) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account_id, user_name, policy_name) DO UPDATE SET document = excluded.document"
            ),
            "delete_user_policy": "DELETE FROM user_policies" + user_key + " AND policy_name = ?",
            "list_user_policies": (
                "SELECT policy_name, document FROM user_policies" + user_key + " ORDER BY policy_name"
            ),
            "put_group_policy": (
                "INSERT INTO group_policies (account_id, group_name, policy_name, document) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account_id, group_name, policy_name) DO UPDATE SET document = excluded.document"
            ),
            "delete_group_policy": "DELETE FROM group_policies" + group_key + " AND policy_name = ?",
            "list_group_policies": (
                "SELECT policy_name, document FROM group_policies" + group_key + " ORDER BY policy_name"
            ),
            # groups
            "insert_group": f"INSERT INTO iam_groups ({g}) VALUES ({_marks(len(_GROUP_COLS))}) ON CONFLICT DO NOTHING",
            "get_group": f"SELECT {g} FROM iam_groups" + group_key + lock,
            "list_groups": f"SELECT {g} FROM iam_groups ORDER BY account_id, group_name",
            "list_groups_account": f"SELECT {g} FROM iam_groups WHERE account_id = ? ORDER BY group_name",
            "delete_group_policies": "DELETE FROM group_policies" + group_key,
            "delete_group_members": "DELETE FROM group_members" + group_key,
            "delete_group": "DELETE FROM iam_groups" + group_key,
            "add_user_to_group": (
                "INSERT INTO group_members (account_id, user_name, group_name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            "remove_user_from_group": "DELETE FROM group_members" + user_key + " AND group_name = ?",
            "list_groups_for_user": "SELECT group_name FROM group_members" + user_key + " ORDER BY group_name",
            "list_group_members": "SELECT user_name FROM group_members" + group_key + " ORDER BY user_name",
            # principal tags
            "put_user_tag": (
                "INSERT INTO user_tags (account_id, user_name, tag_key, tag_value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account_id, user_name, tag_key) DO UPDATE SET tag_value = excluded.tag_value"
            ),
            "delete_user_tag": "DELETE FROM user_tags" + user_key + " AND tag_key = ?",
            "list_user_tags": "SELECT tag_key, tag_value FROM user_tags" + user_key + " ORDER BY tag_key",
            # principal_authorization: (1) the user and its tags, one row per tag (one with NULLs if none)...
            "authorization_user": (
                "SELECT " + ", ".join(f"u.{c}" for c in _USER_COLS) + ", t.tag_key, t.tag_value FROM users u"
                " LEFT JOIN user_tags t ON t.account_id = u.account_id AND t.user_name = u.user_name"
                " WHERE u.account_id = ? AND u.user_name = ? ORDER BY t.tag_key"
            ),
            # ... (2) its own policies (branch 0), then per group its policies, or one row of NULLs (branch 1).
            "authorization_policies": (
                "SELECT 0 AS branch, '' AS group_name, policy_name, document FROM user_policies"
                " WHERE account_id = ? AND user_name = ?"
                " UNION ALL"
                " SELECT 1, m.group_name, p.policy_name, p.document FROM group_members m"
                " LEFT JOIN group_policies p ON p.account_id = m.account_id AND p.group_name = m.group_name"
                " WHERE m.account_id = ? AND m.user_name = ?"
                " ORDER BY 1, 2, 3"
            ),
            # grants
            "insert_grant": f"INSERT INTO grants ({gr}) VALUES ({_marks(len(_GRANT_COLS))}) ON CONFLICT DO NOTHING",
            "get_grant": grant_select + " WHERE key_id = ? AND grant_id = ?",
            "get_grant_by_token": grant_select + " WHERE grant_token = ?",
            "find_grant_by_name": grant_select + " WHERE key_id = ? AND name = ? ORDER BY grant_id",
            "list_retirable_grants": grant_select + " WHERE retiring_principal = ? ORDER BY grant_id LIMIT ?",
            "list_retirable_grants_after": (
                grant_select + " WHERE retiring_principal = ? AND grant_id > ? ORDER BY grant_id LIMIT ?"
            ),
            "delete_grant": "DELETE FROM grants WHERE key_id = ? AND grant_id = ?",
            "grants_for": grant_select + " WHERE key_id = ? AND grantee_principal = ? ORDER BY grant_id",
            "count_grants": "SELECT COUNT(*) FROM grants WHERE key_id = ?",
            **{
                _grant_list_name(after, by_id, by_grantee): _grant_list_query(grant_select, after, by_id, by_grantee)
                for after in (False, True)
                for by_id in (False, True)
                for by_grantee in (False, True)
            },
            "get_seal": f"SELECT {s} FROM seal WHERE id = 1",
            "put_seal": f"INSERT INTO seal (id, {s}) VALUES (1, {_marks(len(_SEAL_COLS))}) ON CONFLICT DO NOTHING",
            **_key_import_queries(lock),
            **_lifecycle_queries(k),
        }
        for name, sql in raw.items():
            setattr(self, name, sql.replace("?", placeholder) if placeholder != "?" else sql)

    def __getattr__(self, name: str) -> str:  # only reached for a misspelt query name
        raise AttributeError(f"no query named {name!r}")


class _Ended:
    """Stands in for the cursor once a transaction is over, so a leaked Transaction cannot run SQL."""

    rowcount = -1

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object:
        raise RuntimeError("this transaction has ended; open a new one with storage.transaction()/read()")

    def fetchone(self) -> Any:
        return self.execute("")

    def fetchall(self) -> list[Any]:
        self.execute("")
        return []


_ENDED = _Ended()


# ---------------------------------------------------------------------------------------- transaction


class SQLTransaction(AuditQueriesMixin):
    """The :class:`~openkms.storage.ports.Transaction` port over one cursor inside an open transaction.

    An ``update_*`` that matches no row raises :class:`StorageError`: it means the caller lost track of the
    row, and silently dropping a state change (a DisableKey, say) would be worse than failing the call.
    """

    __slots__ = ("_cur", "_dialect", "_q", "_read_only")

    def __init__(self, cursor: Cursor, dialect: Dialect, queries: _Queries, *, read_only: bool) -> None:
        self._cur = cursor
        self._dialect = dialect
        self._q = queries
        self._read_only = read_only

    def _end(self) -> None:
        self._cur = _ENDED

    # -- plumbing

    def _run(self, sql: str, params: Sequence[Any]) -> int:
        try:
            self._cur.execute(sql, params)
            return self._cur.rowcount
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        try:
            self._cur.execute(sql, params)
            return self._cur.fetchone()
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            self._cur.execute(sql, params)
            return self._cur.fetchall()
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        if self._read_only:
            raise RuntimeError("write attempted in a read-only transaction; use storage.transaction()")
        return self._run(sql, params)

    def _insert(self, sql: str, params: Sequence[Any], what: str) -> None:
        if self._write(sql, params) == 0:
            raise DuplicateError(f"{what} already exists")

    def _update(self, sql: str, params: Sequence[Any], what: str) -> None:
        if self._write(sql, params) == 0:
            raise StorageError(f"{what} vanished before its update")

    # -- keys

    def insert_key(self, key: KeyRecord) -> None:
        self._insert(self._q.insert_key, _values(key, _KEY_COLS), "key")

    def get_key(self, key_id: str) -> KeyRecord | None:
        row = self._one(self._q.get_key, (key_id,))
        return None if row is None else _key_from_row(row)

    def update_key(self, key: KeyRecord) -> None:
        self._update(self._q.update_key, (*_values(key, _KEY_MUTABLE), key.key_id), "key")

    def list_keys(self, account_id: str, region: str, after_key_id: str | None, limit: int) -> list[KeyRecord]:
        if after_key_id is None:
            rows = self._all(self._q.list_keys, (account_id, region, limit))
        else:
            rows = self._all(self._q.list_keys_after, (account_id, region, after_key_id, limit))
        return [_key_from_row(r) for r in rows]

    def count_keys(self) -> list[KeyCount]:
        return [KeyCount(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in self._all(self._q.count_keys, ())]

    def delete_key(self, key_id: str) -> None:
        # Explicit child deletes rather than trusting ON DELETE CASCADE alone: a connection opened without
        # PRAGMA foreign_keys would otherwise leave wrapped material behind (crypto-shredding).
        q = self._q
        children = (q.delete_key_grants, q.delete_key_tags, q.delete_key_aliases, q.delete_key_imported_material)
        for sql in (*children, q.delete_key_versions):
            self._write(sql, (key_id,))
        self._write(self._q.delete_key, (key_id,))

    # -- key versions

    def insert_version(self, version: KeyVersionRecord) -> None:
        v = version
        params = (v.key_id, v.version_id, v.key_id, v.created_at, v.wrapped_material, v.rotation_type)
        self._insert(self._q.insert_version, params, "key version")

    def get_version(self, key_id: str, version_id: str) -> KeyVersionRecord | None:
        row = self._one(self._q.get_version, (key_id, version_id))
        return None if row is None else KeyVersionRecord(*row)

    def list_versions(self, key_id: str) -> list[KeyVersionRecord]:
        return [KeyVersionRecord(*r) for r in self._all(self._q.list_versions, (key_id,))]

    # -- aliases

    def insert_alias(self, alias: AliasRecord) -> None:
        self._insert(self._q.insert_alias, _values(alias, _ALIAS_COLS), "alias")

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        row = self._one(self._q.get_alias, (account_id, region, alias_name))
        return None if row is None else AliasRecord(*row)

    def update_alias(self, alias: AliasRecord) -> None:
        """Retarget the alias; ``creation_date`` is immutable and ignored."""
        a = alias
        params = (a.target_key_id, a.last_updated_date, a.account_id, a.region, a.alias_name)
        self._update(self._q.update_alias, params, "alias")

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._write(self._q.delete_alias, (account_id, region, alias_name))

    def list_aliases(
        self, account_id: str, region: str, key_id: str | None, after_alias_name: str | None, limit: int
    ) -> list[AliasRecord]:
        q = self._q
        if key_id is None:
            if after_alias_name is None:
                rows = self._all(q.list_aliases, (account_id, region, limit))
            else:
                rows = self._all(q.list_aliases_after, (account_id, region, after_alias_name, limit))
        elif after_alias_name is None:
            rows = self._all(q.list_aliases_key, (account_id, region, key_id, limit))
        else:
            rows = self._all(q.list_aliases_key_after, (account_id, region, key_id, after_alias_name, limit))
        return [AliasRecord(*r) for r in rows]

    # -- tags

    def put_tags(self, key_id: str, tags: Mapping[str, str]) -> None:
        for tag_key, tag_value in tags.items():
            self._write(self._q.put_tag, (key_id, tag_key, tag_value))

    def delete_tags(self, key_id: str, tag_keys: Sequence[str]) -> None:
        for tag_key in tag_keys:
            self._write(self._q.delete_tag, (key_id, tag_key))

    def list_tags(self, key_id: str, after_tag_key: str | None, limit: int) -> list[TagRecord]:
        if after_tag_key is None:
            rows = self._all(self._q.list_tags, (key_id, limit))
        else:
            rows = self._all(self._q.list_tags_after, (key_id, after_tag_key, limit))
        return [TagRecord(*r) for r in rows]

    def count_tags(self, key_id: str) -> int:
        return int(self._one(self._q.count_tags, (key_id,))[0])

    # -- identities

    def insert_account(self, account_id: str, created_at: float) -> None:
        self._write(self._q.insert_account, (account_id, created_at))

    def account_exists(self, account_id: str) -> bool:
        return self._one(self._q.account_exists, (account_id,)) is not None

    def list_accounts(self) -> list[str]:
        return [str(row[0]) for row in self._all(self._q.list_accounts, ())]

    def insert_user(self, user: UserRecord) -> None:
        """The account must exist (foreign key); a taken name or user id raises :class:`DuplicateError`."""
        self._insert(self._q.insert_user, _values(user, _USER_COLS), "user")

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
        q = self._q
        for sql in (
            q.delete_user_sessions,
            q.delete_user_access_keys,
            q.delete_user_policies,
            q.delete_user_all_tags,
            q.delete_user_memberships,
            q.delete_user,
        ):
            self._write(sql, (account_id, user_name))

    def insert_access_key(self, key: AccessKeyRecord) -> None:
        """The user must exist (foreign key)."""
        self._insert(self._q.insert_access_key, _values(key, _ACCESS_KEY_COLS), "access key")

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

    # -- console sessions

    def insert_console_session(self, session: ConsoleSessionRecord) -> None:
        self._insert(self._q.insert_console_session, _values(session, _SESSION_COLS), "console session")

    def get_console_session(self, token_digest: str) -> ConsoleSessionRecord | None:
        row = self._one(self._q.get_console_session, (token_digest,))
        return None if row is None else ConsoleSessionRecord(*row)

    def delete_console_session(self, token_digest: str) -> None:
        self._write(self._q.delete_console_session, (token_digest,))

    def delete_expired_console_sessions(self, now: float) -> int:
        return self._write(self._q.delete_expired_console_sessions, (now,))

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
        self._insert(self._q.insert_group, _values(group, _GROUP_COLS), "group")

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
        q = self._q
        for sql in (q.delete_group_policies, q.delete_group_members):
            self._write(sql, (account_id, group_name))
        return self._write(q.delete_group, (account_id, group_name)) > 0

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

    # -- grants

    def insert_grant(self, grant: GrantRecord) -> None:
        self._insert(self._q.insert_grant, _grant_values(grant), "grant")

    def get_grant(self, key_id: str, grant_id: str) -> GrantRecord | None:
        row = self._one(self._q.get_grant, (key_id, grant_id))
        return None if row is None else _grant_from_row(row)

    def get_grant_by_token(self, grant_token: str) -> GrantRecord | None:
        row = self._one(self._q.get_grant_by_token, (grant_token,))
        return None if row is None else _grant_from_row(row)

    def find_grant_by_name(self, key_id: str, name: str) -> list[GrantRecord]:
        return [_grant_from_row(r) for r in self._all(self._q.find_grant_by_name, (key_id, name))]

    def list_grants(
        self,
        key_id: str,
        after_grant_id: str | None,
        limit: int,
        *,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
    ) -> list[GrantRecord]:
        name = _grant_list_name(after_grant_id is not None, grant_id is not None, grantee_principal is not None)
        params = [key_id, grant_id, grantee_principal, after_grant_id]
        sql: str = getattr(self._q, name)
        rows = self._all(sql, [p for p in params if p is not None] + [limit])
        return [_grant_from_row(r) for r in rows]

    def list_retirable_grants(
        self, retiring_principal: str, after_grant_id: str | None, limit: int
    ) -> list[GrantRecord]:
        if after_grant_id is None:
            rows = self._all(self._q.list_retirable_grants, (retiring_principal, limit))
        else:
            rows = self._all(self._q.list_retirable_grants_after, (retiring_principal, after_grant_id, limit))
        return [_grant_from_row(r) for r in rows]

    def delete_grant(self, key_id: str, grant_id: str) -> bool:
        return self._write(self._q.delete_grant, (key_id, grant_id)) > 0

    def grants_for(self, key_id: str, grantee_principal: str) -> list[GrantRecord]:
        return [_grant_from_row(r) for r in self._all(self._q.grants_for, (key_id, grantee_principal))]

    def count_grants(self, key_id: str) -> int:
        return int(self._one(self._q.count_grants, (key_id,))[0])

    # -- seal

    def get_seal(self) -> SealRecord | None:
        row = self._one(self._q.get_seal, ())
        return None if row is None else SealRecord(*row)

    def put_seal(self, seal: SealRecord) -> None:
        self._insert(self._q.put_seal, _values(seal, _SEAL_COLS), "seal")

    # -- key import

    def get_imported_material(self, key_id: str) -> ImportedMaterialRecord | None:
        row = self._one(self._q.get_imported_material, (key_id,))
        return None if row is None else _imported_from_row(row)

    def put_imported_material(self, record: ImportedMaterialRecord) -> None:
        self._write(self._q.put_imported_material, _values(record, _IMPORTED_COLS))

    def delete_version(self, key_id: str, version_id: str) -> bool:
        return self._write(self._q.delete_version, (key_id, version_id)) > 0

    def list_expired_imported_material(self, now: float, limit: int) -> list[ImportedMaterialRecord]:
        return [_imported_from_row(r) for r in self._all(self._q.list_expired_imported_material, (now, limit))]

    # -- rotation

    def keys_due_for_rotation(self, key_state: str, before: float, limit: int) -> list[KeyRecord]:
        return [_key_from_row(r) for r in self._all(self._q.keys_due_for_rotation, (key_state, before, limit))]

    def count_versions(self, key_id: str, rotation_type: str) -> int:
        return int(self._one(self._q.count_versions, (key_id, rotation_type))[0])

    # -- deletion

    def keys_due_for_deletion(self, before: float, limit: int) -> list[KeyRecord]:
        return [_key_from_row(r) for r in self._all(self._q.keys_due_for_deletion, (before, limit))]

    # -- job leases

    def ensure_job_lease(self, job_name: str) -> None:
        self._write(self._q.ensure_job_lease, (job_name,))

    def get_job_lease(self, job_name: str) -> JobLeaseRecord | None:
        row = self._one(self._q.get_job_lease, (job_name,))
        return None if row is None else JobLeaseRecord(*row)

    def acquire_job_lease(self, job_name: str, holder: str, now: float, lease_until: float) -> bool:
        params = (holder, lease_until, now, job_name, now, now)
        return self._write(self._q.acquire_job_lease, params) == 1

    def release_job_lease(self, job_name: str, holder: str, now: float, next_run_at: float, failed: bool) -> bool:
        params = (now, next_run_at, now, int(failed), job_name, holder)
        return self._write(self._q.release_job_lease, params) == 1


# --------------------------------------------------------------------------------------------- engine

C = TypeVar("C")


class ThreadState(Generic[C]):
    """One thread's connection, its reusable cursor, and whether a transaction is open on it."""

    __slots__ = ("busy", "conn", "cur", "thread")

    def __init__(self, conn: C, cur: Cursor) -> None:
        self.conn = conn
        self.cur = cur
        self.busy = False
        self.thread = threading.current_thread()


_LIVE_STORAGES: weakref.WeakSet[SQLStorage[Any]] = weakref.WeakSet()
_FORK_ORPHANS: list[object] = []  # connections inherited across fork: never used or closed in the child


def _after_fork_in_child() -> None:
    # Closing an inherited connection would disturb the parent (libpq sends Terminate on the shared socket,
    # SQLite may release locks), so the child forgets them and opens its own.
    for storage in list(_LIVE_STORAGES):
        storage._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLStorage(Generic[C]):
    """The engine-independent half of :class:`~openkms.storage.ports.Storage`.

    Subclasses provide ``_connect``/``_close_connection`` and may override ``_begin`` (PostgreSQL retries
    on a connection that broke while idle).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect.name
        self._dialect = dialect
        self._write_queries = _Queries(dialect.placeholder, dialect.lock_clause)
        self._read_queries = _Queries(dialect.placeholder, "")
        self._local = threading.local()
        self._registry: list[ThreadState[C]] = []
        self._registry_lock = threading.Lock()
        self._closed = False
        self.before_commit: CommitHook | None = None
        _LIVE_STORAGES.add(self)

    # -- subclass hooks

    def _connect(self) -> tuple[C, Cursor]:
        raise NotImplementedError

    def _close_connection(self, conn: C) -> None:
        raise NotImplementedError

    def _begin(self, state: ThreadState[C], statements: tuple[str, ...]) -> None:
        for sql in statements:
            state.cur.execute(sql, ())

    def _in_transaction(self, state: ThreadState[C]) -> bool:
        """Whether the server side still has a transaction open (SQLite ends some on error by itself)."""
        return True

    def _transaction_ended(self, state: ThreadState[C]) -> None:
        """Called after every COMMIT or ROLLBACK attempt, whatever its outcome."""

    # -- per-thread connections

    def _state(self) -> ThreadState[C]:
        try:
            state: ThreadState[C] = self._local.state
        except AttributeError:
            state = self._new_state()
        return state

    def _new_state(self) -> ThreadState[C]:
        if self._closed:
            raise StorageError(f"{self.dialect} storage is closed")
        self._close_dead_threads()
        try:
            conn, cur = self._connect()
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc
        state = ThreadState(conn, cur)
        with self._registry_lock:
            self._registry.append(state)
        self._local.state = state
        return state

    def _close_dead_threads(self) -> None:
        with self._registry_lock:
            dead = [s for s in self._registry if not s.thread.is_alive()]
            self._registry = [s for s in self._registry if s.thread.is_alive()]
        for s in dead:
            self._close_quietly(s.conn)

    def _replace_connection(self, state: ThreadState[C]) -> None:
        """Swap this thread's connection for a fresh one (after it broke)."""
        self._close_quietly(state.conn)
        try:
            state.conn, state.cur = self._connect()
        except self._dialect.driver_error as exc:
            self._drop_state(state)
            raise self._dialect.wrap(exc) from exc

    def _drop_state(self, state: ThreadState[C]) -> None:
        with self._registry_lock:
            if state in self._registry:
                self._registry.remove(state)
        if getattr(self._local, "state", None) is state:
            del self._local.state

    def _close_quietly(self, conn: C) -> None:
        try:
            self._close_connection(conn)
        except Exception:  # noqa: S110 - closing a broken connection may fail; there is nothing to save
            pass

    def _forget_connections(self) -> None:
        with self._registry_lock:
            _FORK_ORPHANS.extend(s.conn for s in self._registry)
            self._registry = []
        self._local = threading.local()

    # -- transactions

    def transaction(self) -> _Scope[C]:
        return _Scope(self, self._dialect.begin_write, self._write_queries, read_only=False)

    def read(self) -> _Scope[C]:
        return _Scope(self, self._dialect.begin_read, self._read_queries, read_only=True)

    def _open(self, statements: tuple[str, ...]) -> ThreadState[C]:
        state = self._state()
        if state.busy:
            raise RuntimeError("a transaction is already open on this thread; pass its Transaction down instead")
        try:
            self._begin(state, statements)
        except BaseException as exc:
            self._abandon(state)
            if isinstance(exc, self._dialect.driver_error):
                raise self._dialect.wrap(exc) from exc
            raise
        state.busy = True
        return state

    def _commit(self, state: ThreadState[C]) -> None:
        state.busy = False
        try:
            state.cur.execute("COMMIT", ())
        except self._dialect.driver_error as exc:
            self._abandon(state)
            raise self._dialect.wrap(exc) from exc
        self._transaction_ended(state)

    def _abandon(self, state: ThreadState[C]) -> None:
        """Roll back whatever is open; a connection that cannot even do that is replaced next time."""
        state.busy = False
        try:
            if self._in_transaction(state):
                state.cur.execute("ROLLBACK", ())
        except self._dialect.driver_error:
            self._close_quietly(state.conn)
            self._drop_state(state)
        finally:
            self._transaction_ended(state)

    # -- schema

    def migrate(self, target: int | None = None) -> int:
        """Apply pending migrations under the dialect's migration lock; see :mod:`openkms.storage.migrate`."""
        return self._schema_step(
            self._dialect.begin_migrate, lambda cur, dialect: _migrate.apply_pending(cur, dialect, target)
        )

    def schema_version(self) -> int:
        return self._schema_step(self._dialect.begin_read, _migrate.current_version)

    # -- key import

    def _schema_step(self, begin: tuple[str, ...], step: Callable[[Cursor, Dialect], int]) -> int:
        """Run one schema function in its own transaction; any failure rolls back."""
        state = self._open(begin)
        try:
            version = step(state.cur, self._dialect)
        except self._dialect.driver_error as exc:
            self._abandon(state)
            raise self._dialect.wrap(exc) from exc
        except BaseException:
            self._abandon(state)
            raise
        self._commit(state)
        return version

    def shred_deleted(self, attempts: int = 20) -> bool:
        """See :meth:`openkms.storage.ports.Storage.shred_deleted`; engines that can do more override it.
        Refused inside a transaction on every engine, so callers find the mistake on the engine they test."""
        if self._state().busy:
            raise RuntimeError("shred_deleted() inside a transaction cannot reach what the transaction holds")
        return False

    def close(self) -> None:
        """Close every thread's connection; later use raises :class:`StorageError`."""
        self._closed = True
        with self._registry_lock:
            states, self._registry = self._registry, []
        self._local = threading.local()
        for s in states:
            self._close_quietly(s.conn)
        _LIVE_STORAGES.discard(self)


class _Scope(Generic[C]):
    """``with storage.transaction() as tx``: commit on normal exit, roll back on any exception.

    A plain class rather than ``@contextmanager``: this is on the hot path of every request.
    """

    __slots__ = ("_queries", "_read_only", "_state", "_statements", "_storage", "_tx")

    def __init__(
        self, storage: SQLStorage[C], statements: tuple[str, ...], queries: _Queries, *, read_only: bool
    ) -> None:
        self._storage = storage
        self._statements = statements
        self._queries = queries
        self._read_only = read_only

    def __enter__(self) -> SQLTransaction:
        storage = self._storage
        self._state = state = storage._open(self._statements)
        self._tx = SQLTransaction(state.cur, storage._dialect, self._queries, read_only=self._read_only)
        return self._tx

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        storage = self._storage
        after_commit: Callable[[], None] | None = None
        if exc_type is None and not self._read_only and storage.before_commit is not None:
            try:
                after_commit = storage.before_commit(self._tx)
            except BaseException:
                self._tx._end()
                storage._abandon(self._state)
                raise
        self._tx._end()
        if exc_type is None:
            storage._commit(self._state)
            if after_commit is not None:
                after_commit()
        else:
            storage._abandon(self._state)
