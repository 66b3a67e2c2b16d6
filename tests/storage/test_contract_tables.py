"""The storage contract for whole tables (``storage/ports/tables.py``), what backups read and restores write, on
every engine: pages in primary-key order across a composite key (byte order, as ``COLLATE "C"`` and SQLite
compare), every row once; inserts as given, duplicates refused, nothing written in a read transaction; names that
are not plain identifiers refused before any statement."""

from __future__ import annotations

import pytest

from openkms.storage.ports import DuplicateError, Storage

COLUMNS = ("key_id", "day", "family", "requests")  # key_usage_daily: a three-column primary key, no parent


def _rows() -> list[tuple[str, str, str, int]]:
    keys = ["b", "B", "a-1", "a_1", "\u00e9"]  # byte order differs from most locales' order
    return [(k, day, family, n) for n, (k, day, family) in enumerate(
        (k, d, f) for k in keys for d in ("2026-12-01", "2026-12-02") for f in ("crypto", "other"))]  # fmt: skip


def test_pages_follow_the_primary_key_and_hold_every_row_once(storage: Storage) -> None:
    rows = _rows()
    with storage.transaction() as tx:
        tx.insert_rows("key_usage_daily", COLUMNS, rows)
    seen: list[tuple[object, ...]] = []
    after: tuple[object, ...] | None = None
    with storage.read() as tx:
        while True:
            columns, page = tx.table_page("key_usage_daily", COLUMNS[:3], after, 3)
            assert columns == COLUMNS
            seen.extend(page)
            if len(page) < 3:
                break
            after = page[-1][:3]
    expected = sorted(rows, key=lambda r: (r[0].encode(), r[1], r[2]))
    assert seen == expected


def test_inserts_refuse_duplicates_and_read_transactions(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_rows("key_usage_daily", COLUMNS, [("k", "2026-12-01", "crypto", 1)])
        tx.insert_rows("key_usage_daily", COLUMNS, [])
    with pytest.raises(DuplicateError), storage.transaction() as tx:
        tx.insert_rows("key_usage_daily", COLUMNS, [("k", "2026-12-01", "crypto", 2)])
    with pytest.raises(RuntimeError, match="read-only"), storage.read() as tx:
        tx.insert_rows("key_usage_daily", COLUMNS, [("k", "2026-12-02", "crypto", 2)])
    with storage.read() as tx:
        assert tx.table_page("key_usage_daily", COLUMNS[:3], None, 10)[1] == [("k", "2026-12-01", "crypto", 1)]
        assert tx.table_has_rows("key_usage_daily") and not tx.table_has_rows("grants")


def test_delete_all_rows_empties_one_table(storage: Storage) -> None:
    with storage.transaction() as tx:
        tx.insert_rows("key_usage_daily", COLUMNS, _rows())
        tx.delete_all_rows("key_usage_daily")
    with storage.read() as tx:
        assert not tx.table_has_rows("key_usage_daily")
        assert tx.table_has_rows("audit_head")  # the seeded row of another table stays


@pytest.mark.parametrize("name", ["keys; DROP TABLE keys", "keys--", "k\u00e9ys", "", "1keys"])
def test_names_that_are_not_plain_identifiers_are_refused(storage: Storage, name: str) -> None:
    with storage.read() as tx:
        with pytest.raises(ValueError, match="not a plain table or column name"):
            tx.table_page(name, ("key_id",), None, 1)
        with pytest.raises(ValueError, match="not a plain table or column name"):
            tx.table_page("keys", (name,), None, 1)
        with pytest.raises(ValueError, match="not a plain table or column name"):
            tx.table_has_rows(name)
