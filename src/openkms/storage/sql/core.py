"""What every aggregate's SQL shares: the dialect as data, the cursor, a transaction's plumbing, and the
helpers that build statements from records.

Statements are written with ``?`` placeholders and rendered for the dialect once, when the storage builds its
query objects (:func:`renderer`); on the request path a statement is an attribute read, never string work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from openkms.storage.ports import DuplicateError, StorageError

# Renders one ``?``-placeholder statement for the dialect (at construction, never per call).
Render = Callable[[str], str]


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


def renderer(placeholder: str) -> Render:
    """The function that rewrites a statement's ``?`` placeholders into ``placeholder``."""
    if placeholder == "?":
        return str
    return lambda sql: sql.replace("?", placeholder)


# -- rows


def columns(record_type: type[Any]) -> tuple[str, ...]:
    """Column names equal field names, so the SQL lists cannot drift from records.py."""
    return tuple(f.name for f in fields(record_type))


def values(record: object, cols: Iterable[str]) -> tuple[Any, ...]:
    return tuple(getattr(record, c) for c in cols)


def csv(cols: Iterable[str]) -> str:
    return ", ".join(cols)


def marks(n: int) -> str:
    return ", ".join("?" * n)


# -- a transaction's plumbing


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


class TransactionCore:
    """The state of one open transaction and the few ways its statements run; each aggregate's mixin builds
    on these, and :class:`~openkms.storage.sql.transaction.SQLTransaction` composes the mixins.

    An ``update_*`` that matches no row raises :class:`StorageError`: it means the caller lost track of the
    row, and silently dropping a state change (a DisableKey, say) would be worse than failing the call.
    """

    __slots__ = ("_cur", "_dialect", "_q", "_read_only")

    _cur: Cursor
    _dialect: Dialect
    _read_only: bool

    def _end(self) -> None:
        self._cur = _ENDED

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
