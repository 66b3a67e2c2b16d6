"""The audit part of :class:`~openkms.storage.sql.SQLTransaction`, written once for both engines.

A mixin over the transaction's plumbing (``_run``, ``_one``, ``_all``, ``_write``, ``_dialect``) so the
audit statements live beside the tables they serve (migration 0003) rather than in the general module.
Rows are inserted several per statement: on PostgreSQL every statement is a round trip, and group commit
hands over batches of hundreds.
"""

# Statements are assembled from fixed fragments; values always travel as parameters.
# ruff: noqa: S608

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from openkms.storage.audit import AuditFilter, AuditHead, AuditRow, DigestRow, SigningKeyRow, UsageRow

_ROW_COLS = tuple(f.name for f in fields(AuditRow))
_DIGEST_COLS = tuple(f.name for f in fields(DigestRow))
_SIGNING_COLS = tuple(f.name for f in fields(SigningKeyRow))
_ROWS_PER_INSERT = 64
# A time window with fewer records than this is found whole by one short read of the time index.
_WINDOW_PROBE = 2048
_SELECT_ROWS = "SELECT " + ", ".join(_ROW_COLS) + " FROM audit_events"
_SELECT_DIGESTS = "SELECT " + ", ".join(_DIGEST_COLS) + " FROM audit_digests"
_SELECT_SIGNING = "SELECT " + ", ".join(_SIGNING_COLS) + " FROM audit_signing_keys"


@functools.cache
def _insert_rows_sql(count: int) -> str:
    one = "(" + ", ".join("?" * len(_ROW_COLS)) + ")"
    return f"INSERT INTO audit_events ({', '.join(_ROW_COLS)}) VALUES " + ", ".join([one] * count)


def _request_time(request_id: str) -> float | None:
    """The time a version-7 request id carries (openkms.ids.new_request_id); None for other ids."""
    try:
        value = uuid.UUID(request_id)
    except ValueError:
        return None
    return (value.int >> 80) / 1000 if value.version == 7 else None


def _outcome_condition(outcome: str) -> tuple[str, tuple[Any, ...]]:
    if outcome == "success":
        return "error_code IS NULL", ()
    if outcome == "failure":
        return "error_code IS NOT NULL", ()
    return "error_code = ?", (outcome,)


def _low(since: float | None) -> float:
    # Both ends are always given: with one open end SQLite would answer MIN/MAX(seq) by walking the table.
    return float("-inf") if since is None else since


def _high(until: float | None) -> float:
    return float("inf") if until is None else until


class AuditQueriesMixin:
    """Implements :class:`~openkms.storage.audit.AuditTransaction` for ``SQLTransaction``."""

    __slots__ = ()

    # provided by SQLTransaction
    _dialect: Any

    def _run(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        raise NotImplementedError

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        raise NotImplementedError

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        placeholder: str = self._dialect.placeholder
        return text if placeholder == "?" else text.replace("?", placeholder)

    # -- the chain

    def audit_head(self) -> AuditHead:
        lock = "" if getattr(self, "_read_only", True) else self._dialect.lock_clause
        row = self._one(self._sql("SELECT seq, hash, started_at FROM audit_head WHERE id = 1" + lock), ())
        if row is None:
            raise RuntimeError("audit_head is missing: the schema is not migrated")
        last = self._one("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", ())
        if last is not None and int(last[0]) > int(row[0]):
            return AuditHead(int(last[0]), str(last[1]), float(row[2]))
        return AuditHead(int(row[0]), str(row[1]), float(row[2]))

    def append_audit(self, rows: Sequence[AuditRow], started_at: float | None) -> None:
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            params = [getattr(r, c) for r in chunk for c in _ROW_COLS]
            self._write(self._sql(_insert_rows_sql(len(chunk))), params)
        if started_at is not None:
            self._write(self._sql("UPDATE audit_head SET started_at = ? WHERE id = 1"), (started_at,))

    def usage_watermark(self) -> int:
        row = self._one("SELECT usage_through_seq FROM audit_head WHERE id = 1", ())
        return 0 if row is None else int(row[0])

    def usage_after(self, after_seq: int, limit: int) -> list[tuple[int, str, float, str]]:
        rows = self._all(
            self._sql(
                "SELECT seq, key_id, event_time, usage_family FROM audit_events WHERE seq > ? AND seq <= ?"
                " AND usage_family IS NOT NULL ORDER BY seq"
            ),
            (after_seq, after_seq + limit),
        )
        return [(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def add_key_usage(self, counts: Mapping[tuple[str, str, str], int], through_seq: int) -> None:
        sql = self._sql(
            "INSERT INTO key_usage_daily (key_id, day, family, requests) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key_id, day, family) DO UPDATE SET requests = key_usage_daily.requests + excluded.requests"
        )
        for (key_id, day, family), n in sorted(counts.items()):  # sorted: a fixed lock order between nodes
            self._write(sql, (key_id, day, family, n))
        self._write(self._sql("UPDATE audit_head SET usage_through_seq = ? WHERE id = 1"), (through_seq,))

    # -- reading the trail

    def query_audit(self, where: AuditFilter, limit: int) -> list[AuditRow]:
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("principal_arn", where.principal_arn),
            ("event_name", where.event_name),
            ("source_ip", where.source_ip),
        ):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if where.outcome is not None:
            condition, values = _outcome_condition(where.outcome)
            conditions.append(condition)
            params.extend(values)
        if where.before_seq is not None:
            conditions.append("seq < ?")
            params.append(where.before_seq)
        if where.since is None and where.until is None:
            return self._newest(where.key_id, conditions, params, limit)
        return self._newest_in_window(where, conditions, params, limit)

    # A time window is found through the time index, and then every scan goes by seq (the table is ordered by
    # it, and the key, principal and name indexes end in it) between the window's lowest and highest seq. Seq
    # and time nearly agree (records are appended in seq order with the time their request began) but not
    # exactly: a slow request commits after quicker later ones, and several nodes' clocks differ. So the
    # bounds are read from the index, never guessed from the times, and each costs the least of:
    #
    # - a window of fewer than _WINDOW_PROBE records: one short read of the time index gives both bounds;
    # - the top bound of a window that reaches the newest records: among the _WINDOW_PROBE newest records;
    # - the bottom bound: a guess from the window's earliest records, good whenever the page fills above it
    #   (every record below the guess has a lower seq than those found); otherwise the exact bound;
    # - otherwise one pass over the window's entries in the time index (not over its records).
    #
    # The time condition is written ``event_time + 0`` in the scans: an index on the time would only lead the
    # planner to sort the whole window by seq.

    def _newest_in_window(
        self, where: AuditFilter, conditions: list[str], params: list[Any], limit: int
    ) -> list[AuditRow]:
        low, high = _low(where.since), _high(where.until)
        conditions = [*conditions, "event_time + 0 >= ?", "event_time + 0 < ?"]
        params = [*params, low, high]
        earliest = self._all(
            self._sql(
                "SELECT seq FROM audit_events WHERE event_time >= ? AND event_time < ? ORDER BY event_time LIMIT ?"
            ),
            (low, high, _WINDOW_PROBE),
        )
        seqs = [int(row[0]) for row in earliest]
        if not seqs:
            return []
        if len(seqs) < _WINDOW_PROBE:  # the whole window
            return self._newest(
                where.key_id, [*conditions, "seq >= ?", "seq <= ?"], [*params, min(seqs), max(seqs)], limit
            )
        if where.key_id is not None or where.principal_arn is not None:
            return self._newest(where.key_id, conditions, params, limit)  # their indexes narrow the scan enough
        top = self._window_top(low, high)
        guess = min(seqs)
        above = self._newest(where.key_id, [*conditions, "seq >= ?", "seq <= ?"], [*params, guess, top], limit)
        if len(above) >= limit:
            return above
        bottom = self._window_edge("MIN", low, high)
        below = self._newest(
            where.key_id, [*conditions, "seq >= ?", "seq < ?"], [*params, bottom, guess], limit - len(above)
        )
        return above + below

    def _window_top(self, low: float, high: float) -> int:
        newest = self._all(
            self._sql("SELECT seq, event_time FROM audit_events ORDER BY seq DESC LIMIT ?"), (_WINDOW_PROBE,)
        )
        inside = [int(seq) for seq, at in newest if low <= at < high]
        # Every record above the highest one found here was looked at and lies outside the window.
        return max(inside) if inside else self._window_edge("MAX", low, high)

    def _window_edge(self, aggregate: str, low: float, high: float) -> int:
        # ``seq + 0``: PostgreSQL would otherwise walk the primary key from one end looking for the window.
        row = self._one(
            self._sql(f"SELECT {aggregate}(seq + 0) FROM audit_events WHERE event_time >= ? AND event_time < ?"),
            (low, high),
        )
        return int(row[0])

    def _newest(self, key_id: str | None, conditions: list[str], params: list[Any], limit: int) -> list[AuditRow]:
        if key_id is None:
            return self._select_newest(conditions, params, limit)
        # Two index range scans merged here: an OR across two columns would defeat both indexes.
        found: dict[int, AuditRow] = {}
        for column in ("key_id", "other_key_id"):
            for row in self._select_newest([f"{column} = ?", *conditions], [key_id, *params], limit):
                found[row.seq] = row
        return sorted(found.values(), key=lambda r: -r.seq)[:limit]

    def _select_newest(self, conditions: list[str], params: list[Any], limit: int) -> list[AuditRow]:
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = self._all(self._sql(f"{_SELECT_ROWS}{where} ORDER BY seq DESC LIMIT ?"), (*params, limit))
        return [AuditRow(*r) for r in rows]

    def audit_range(self, after_seq: int, limit: int) -> list[AuditRow]:
        rows = self._all(self._sql(f"{_SELECT_ROWS} WHERE seq > ? ORDER BY seq LIMIT ?"), (after_seq, limit))
        return [AuditRow(*r) for r in rows]

    def audit_by_request(self, request_id: str) -> list[AuditRow]:
        at = _request_time(request_id)
        if at is None:  # not one of ours: no index can help
            rows = self._all(self._sql(f"{_SELECT_ROWS} WHERE request_id = ? ORDER BY seq"), (request_id,))
        else:  # the id carries the request's time: search the time index around it
            rows = self._all(
                self._sql(f"{_SELECT_ROWS} WHERE event_time >= ? AND event_time < ? AND request_id = ? ORDER BY seq"),
                (at - 1.0, at + 1.0, request_id),
            )
        return [AuditRow(*r) for r in rows]

    def first_audit_seq(self) -> int | None:
        row = self._one("SELECT MIN(seq) FROM audit_events", ())
        return None if row is None or row[0] is None else int(row[0])

    def prune_audit(self, through_seq: int) -> int:
        last = self._one(
            self._sql("SELECT seq, hash FROM audit_events WHERE seq <= ? ORDER BY seq DESC LIMIT 1"), (through_seq,)
        )
        if last is None:
            return 0
        self._write(
            self._sql("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq < ?"), (last[0], last[1], last[0])
        )
        return self._write(self._sql("DELETE FROM audit_events WHERE seq <= ?"), (through_seq,))

    def last_key_use(self, key_id: str, event_names: Sequence[str]) -> AuditRow | None:
        names = ", ".join("?" * len(event_names))
        newest: AuditRow | None = None
        for column in ("key_id", "other_key_id"):
            rows = self._all(
                self._sql(
                    f"{_SELECT_ROWS} WHERE {column} = ? AND error_code IS NULL AND event_name IN ({names})"
                    " ORDER BY seq DESC LIMIT 1"
                ),
                (key_id, *event_names),
            )
            if rows and (newest is None or rows[0][0] > newest.seq):
                newest = AuditRow(*rows[0])
        return newest

    # -- digests and their keys

    def insert_digest(self, digest: DigestRow) -> None:
        marks = ", ".join("?" * len(_DIGEST_COLS))
        self._write(
            self._sql(f"INSERT INTO audit_digests ({', '.join(_DIGEST_COLS)}) VALUES ({marks})"),
            [getattr(digest, c) for c in _DIGEST_COLS],
        )

    def last_digest(self) -> DigestRow | None:
        row = self._one(f"{_SELECT_DIGESTS} ORDER BY digest_seq DESC LIMIT 1", ())
        return None if row is None else DigestRow(*row)

    def list_digests(self, after_digest_seq: int, limit: int) -> list[DigestRow]:
        rows = self._all(
            self._sql(f"{_SELECT_DIGESTS} WHERE digest_seq > ? ORDER BY digest_seq LIMIT ?"), (after_digest_seq, limit)
        )
        return [DigestRow(*r) for r in rows]

    def insert_signing_key(self, key: SigningKeyRow) -> None:
        marks = ", ".join("?" * len(_SIGNING_COLS))
        self._write(
            self._sql(f"INSERT INTO audit_signing_keys ({', '.join(_SIGNING_COLS)}) VALUES ({marks})"),
            [getattr(key, c) for c in _SIGNING_COLS],
        )

    def get_signing_key(self, key_id: str) -> SigningKeyRow | None:
        row = self._one(self._sql(f"{_SELECT_SIGNING} WHERE key_id = ?"), (key_id,))
        return None if row is None else SigningKeyRow(row[0], row[1], bytes(row[2]), bytes(row[3]), row[4])

    def list_signing_keys(self) -> list[SigningKeyRow]:
        rows = self._all(f"{_SELECT_SIGNING} ORDER BY created_at, key_id", ())
        return [SigningKeyRow(r[0], r[1], bytes(r[2]), bytes(r[3]), r[4]) for r in rows]

    def list_key_usage(self, key_id: str | None, since_day: str | None) -> list[UsageRow]:
        conditions: list[str] = []
        params: list[Any] = []
        if key_id is not None:
            conditions.append("key_id = ?")
            params.append(key_id)
        if since_day is not None:
            conditions.append("day >= ?")
            params.append(since_day)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        rows = self._all(
            self._sql(f"SELECT key_id, day, family, requests FROM key_usage_daily{where} ORDER BY key_id, day, family"),
            params,
        )
        return [UsageRow(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]
