"""The seal record over SQL: one row (``id = 1``), written once by ``openkms init``."""

# Statements are assembled from column names taken from records.py and fixed fragments; values always travel
# as parameters, so S608 (string-built SQL) does not apply.
# ruff: noqa: S608

from __future__ import annotations

from openkms.storage.records import SealRecord
from openkms.storage.sql.core import Render, TransactionCore, columns, csv, marks, values

_SEAL_COLS = columns(SealRecord)


class SealQueries:
    """The statements of the seal record, rendered for one dialect."""

    def __init__(self, sql: Render) -> None:
        s = csv(_SEAL_COLS)
        self.get_seal = sql(f"SELECT {s} FROM seal WHERE id = 1")
        self.put_seal = sql(f"INSERT INTO seal (id, {s}) VALUES (1, {marks(len(_SEAL_COLS))}) ON CONFLICT DO NOTHING")


class SealSQL(TransactionCore):
    """Implements :class:`~openkms.storage.ports.seal.SealTransaction`."""

    __slots__ = ()
    _q: SealQueries

    def get_seal(self) -> SealRecord | None:
        row = self._one(self._q.get_seal, ())
        return None if row is None else SealRecord(*row)

    def put_seal(self, seal: SealRecord) -> None:
        self._insert(self._q.put_seal, values(seal, _SEAL_COLS), "seal")
