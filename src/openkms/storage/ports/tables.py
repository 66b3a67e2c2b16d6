"""Whole tables, read and written by name: what a logical backup (openkms.backup) needs and nothing else does.

Every other caller goes through its aggregate's port. A backup reads every table inside one read transaction (one
snapshot), a page at a time in primary-key order, and a restore inserts the rows back inside one write transaction;
the table and column names come from the backup package's own list, never from a caller or a file, and are checked
to be plain identifiers before they reach a statement. Composed into :class:`~openkms.storage.ports.Transaction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class TableTransaction(Protocol):
    def table_page(
        self, table: str, key_columns: Sequence[str], after: Sequence[Any] | None, limit: int
    ) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """The table's column names and up to ``limit`` rows ordered by ``key_columns`` (its primary key), those
        after the key ``after`` (None: from the start)."""
        ...

    def table_has_rows(self, table: str) -> bool: ...

    def delete_all_rows(self, table: str) -> None:
        """Empty the table (a forced restore, or a row the migrations seeded)."""
        ...

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` (values in ``columns`` order) as they are; a duplicate raises :class:`DuplicateError`."""
        ...
