"""Whole tables over SQL (:class:`~openkms.storage.ports.tables.TableTransaction`), for backup and restore only.

Statements are built per call from table and column names that :func:`_identifier` admits (ASCII identifiers);
values always travel as parameters. Not on any request path, so nothing is rendered ahead.
"""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from openkms.storage.sql.core import Cursor, TransactionCore, renderer


class _FullCursor(Cursor, Protocol):
    """What both drivers' cursors also have: column names of the last SELECT and a batched execute."""

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> object: ...


def _identifier(name: str) -> str:
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"not a plain table or column name: {name!r}")
    return name


class TablesSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.tables.TableTransaction`."""

    __slots__ = ()

    def table_page(
        self, table: str, key_columns: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        keys = ", ".join(_identifier(c) for c in key_columns)
        where = "" if after is None else f" WHERE ({keys}) > ({', '.join('?' * len(key_columns))})"
        render = renderer(self._dialect.placeholder)
        statement = render(f"SELECT * FROM {_identifier(table)}{where} ORDER BY {keys} LIMIT ?")
        rows = self._all(statement, (*(after or ()), limit))
        description = cast("_FullCursor", self._cur).description or ()
        return tuple(str(column[0]) for column in description), [tuple(row) for row in rows]

    def table_has_rows(self, table: str) -> bool:
        return self._one(f"SELECT 1 FROM {_identifier(table)} LIMIT 1", ()) is not None

    def delete_all_rows(self, table: str) -> None:
        self._write(f"DELETE FROM {_identifier(table)}", ())

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._read_only:
            raise RuntimeError("write attempted in a read-only transaction; use storage.transaction()")
        if not rows:
            return
        names = ", ".join(_identifier(c) for c in columns)
        values = ", ".join("?" * len(columns))
        statement = renderer(self._dialect.placeholder)(f"INSERT INTO {_identifier(table)} ({names}) VALUES ({values})")
        try:
            cast("_FullCursor", self._cur).executemany(statement, rows)
        except self._dialect.driver_error as exc:
            raise self._dialect.wrap(exc) from exc
