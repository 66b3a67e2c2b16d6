-- openkms schema version 6 (PostgreSQL): the time index of the audit trail carries each record's seq.
--
-- `openkms audit query` turns a time window into the lowest and highest seq of its records and then scans
-- by seq (storage/audit_sql.py). Reading those bounds from an index on (event_time) alone means a heap
-- fetch per record of the window; with seq in the index it is an index-only scan (a week of a
-- million-records-a-month trail: 121 ms -> 18 ms). The index still grows at its right edge, as appends do.
-- On a large trail the rebuild holds the table's write lock for as long as it takes (about a second per
-- million records).

DROP INDEX audit_events_by_time;
CREATE INDEX audit_events_by_time ON audit_events (event_time, seq);
