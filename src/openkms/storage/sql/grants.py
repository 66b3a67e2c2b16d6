"""The grants aggregate over SQL. A grant's ``operations`` are stored as a JSON list in a TEXT column (a tuple in
:class:`~openkms.storage.records.GrantRecord`)."""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openkms.storage.records import GrantRecord
from openkms.storage.sql.core import Render, TransactionCore, columns, csv, marks, values

_GRANT_COLS = columns(GrantRecord)
_GRANT_OPERATIONS = _GRANT_COLS.index("operations")


def _grant_values(grant: GrantRecord) -> tuple[Any, ...]:
    cells = list(values(grant, _GRANT_COLS))
    cells[_GRANT_OPERATIONS] = json.dumps(list(grant.operations), separators=(",", ":"))
    return tuple(cells)


def _grant_from_row(row: Sequence[Any]) -> GrantRecord:
    cells = list(row)
    cells[_GRANT_OPERATIONS] = tuple(json.loads(cells[_GRANT_OPERATIONS]))
    return GrantRecord(*cells)


def _list_grants_query(select: str, after: bool, by_id: bool, by_grantee: bool) -> str:
    """One of the eight ``list_grants`` statements: a fixed WHERE per combination of filters, so each stays a
    plain indexed range scan (no ``? IS NULL OR ...`` that a generic plan could not use)."""
    where = " WHERE key_id = ?"
    where += " AND grant_id = ?" if by_id else ""
    where += " AND grantee_principal = ?" if by_grantee else ""
    where += " AND grant_id > ?" if after else ""
    return select + where + " ORDER BY grant_id LIMIT ?"


class GrantQueries:
    """The statements of the grants aggregate, rendered for one dialect."""

    def __init__(self, sql: Render) -> None:
        select = "SELECT " + csv(_GRANT_COLS) + " FROM grants"
        self.insert_grant = sql(
            f"INSERT INTO grants ({csv(_GRANT_COLS)}) VALUES ({marks(len(_GRANT_COLS))}) ON CONFLICT DO NOTHING"
        )
        self.get_grant = sql(select + " WHERE key_id = ? AND grant_id = ?")
        self.get_grant_by_token = sql(select + " WHERE grant_token = ?")
        self.find_grant_by_name = sql(select + " WHERE key_id = ? AND name = ? ORDER BY grant_id")
        # list_grants: by (after a grant id, by grant id, by grantee), whether each is given
        self.list_grants: dict[tuple[bool, bool, bool], str] = {
            (after, by_id, by_grantee): sql(_list_grants_query(select, after, by_id, by_grantee))
            for after in (False, True)
            for by_id in (False, True)
            for by_grantee in (False, True)
        }
        self.list_retirable_grants = sql(select + " WHERE retiring_principal = ? ORDER BY grant_id LIMIT ?")
        self.list_retirable_grants_after = sql(
            select + " WHERE retiring_principal = ? AND grant_id > ? ORDER BY grant_id LIMIT ?"
        )
        self.delete_grant = sql("DELETE FROM grants WHERE key_id = ? AND grant_id = ?")
        self.grants_for = sql(select + " WHERE key_id = ? AND grantee_principal = ? ORDER BY grant_id")
        self.count_grants = sql("SELECT COUNT(*) FROM grants WHERE key_id = ?")


class GrantsSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.grants.GrantTransaction`."""

    __slots__ = ()
    _q: GrantQueries

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
        sql = self._q.list_grants[after_grant_id is not None, grant_id is not None, grantee_principal is not None]
        params = [key_id, grant_id, grantee_principal, after_grant_id]
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
