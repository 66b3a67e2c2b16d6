"""The :class:`~openkms.storage.ports.Transaction` port over SQL: one mixin per aggregate, composed.

Each aggregate module holds its statements (a ``*Queries`` class of named, typed attributes, so a misspelt
statement is a mypy error) and the methods that run them over :class:`~openkms.storage.sql.core.TransactionCore`.
:class:`Queries` renders all of them for one dialect when the storage opens; a transaction only reads them.
"""

from __future__ import annotations

from openkms.storage.sql.audit import AuditQueriesMixin
from openkms.storage.sql.core import Cursor, Dialect, renderer
from openkms.storage.sql.grants import GrantQueries, GrantsSQL
from openkms.storage.sql.identities import IdentitiesSQL, IdentityQueries
from openkms.storage.sql.keys import KeyQueries, KeysSQL
from openkms.storage.sql.lifecycle import LifecycleQueries, LifecycleSQL
from openkms.storage.sql.seal import SealQueries, SealSQL
from openkms.storage.sql.sessions import SessionQueries, SessionsSQL
from openkms.storage.sql.tables import TablesSQL


class Queries(KeyQueries, IdentityQueries, GrantQueries, LifecycleQueries, SessionQueries, SealQueries):
    """Every aggregate's statements, rendered for one dialect (placeholder style; ``lock`` is the row lock of
    write transactions, "" for reads)."""

    def __init__(self, placeholder: str, lock: str) -> None:
        sql = renderer(placeholder)
        KeyQueries.__init__(self, sql, lock)
        IdentityQueries.__init__(self, sql, lock)
        GrantQueries.__init__(self, sql)
        LifecycleQueries.__init__(self, sql)
        SessionQueries.__init__(self, sql)
        SealQueries.__init__(self, sql)


class SQLTransaction(
    KeysSQL, IdentitiesSQL, GrantsSQL, LifecycleSQL, SessionsSQL, SealSQL, TablesSQL, AuditQueriesMixin
):
    """The whole port over one cursor inside an open transaction."""

    __slots__ = ()
    _q: Queries

    def __init__(self, cursor: Cursor, dialect: Dialect, queries: Queries, *, read_only: bool) -> None:
        self._cur = cursor
        self._dialect = dialect
        self._q = queries
        self._read_only = read_only
