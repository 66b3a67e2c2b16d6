-- openkms schema version 3: the audit trail (issue 5, DESIGN.md sections 5 and 8).
--
-- audit_events is append-only: one row per API call, hash-chained in seq order (audit/chain.py). The
-- columns beside `event` are copies of fields of the event, kept for the filtered queries of
-- `openkms audit query`; the chain covers only seq and `event` (the canonical CloudTrail JSON), so a
-- changed copy cannot hide a changed event and the verifier compares the copies with the event.
-- usage_family is the pricing class of the call (audit/events.py), rolled up into key_usage_daily off the
-- request path (audit/usage.py).
--
-- Every commit of the trail writes each page its inserts touch to the WAL, so indexes are few and chosen
-- for `openkms audit query`: seq and event_time grow at their right edge, the two key indexes are partial
-- (most records name one key or none), and nothing indexes a random value (a request id is found through
-- its time: request ids are time-ordered UUIDs).
--
-- The chain's head is the last row. audit_head holds what the last row cannot: when the trail began, and
-- the seq and hash the chain continues from once pruning removed every record. Appenders lock its row,
-- which orders every writer of every node (on SQLite, BEGIN IMMEDIATE already does).

CREATE TABLE audit_events (
    seq {{int64}} PRIMARY KEY,
    event_time {{time}} NOT NULL,
    event_name {{id}} NOT NULL,
    request_id {{id}} NOT NULL,
    principal_arn {{id}} NOT NULL,
    key_id {{id}},
    other_key_id {{id}},
    source_ip {{id}} NOT NULL,
    error_code {{id}},
    usage_family {{id}},
    event TEXT NOT NULL,
    hash {{id}} NOT NULL
);

CREATE INDEX audit_events_by_key ON audit_events (key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_events_by_other_key ON audit_events (other_key_id, seq) WHERE other_key_id IS NOT NULL;
CREATE INDEX audit_events_by_principal ON audit_events (principal_arn, seq);
CREATE INDEX audit_events_by_name ON audit_events (event_name, seq);
CREATE INDEX audit_events_by_time ON audit_events (event_time);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq {{int64}} NOT NULL,
    hash {{id}} NOT NULL,
    started_at {{time}} NOT NULL,
    usage_through_seq {{int64}} NOT NULL
);

INSERT INTO audit_head (id, seq, hash, started_at, usage_through_seq)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0);

CREATE TABLE audit_digests (
    digest_seq {{int64}} PRIMARY KEY,
    from_seq {{int64}} NOT NULL,
    to_seq {{int64}} NOT NULL,
    period_end {{time}} NOT NULL,
    body TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE TABLE audit_signing_keys (
    key_id {{id}} PRIMARY KEY,
    algorithm {{id}} NOT NULL,
    public_key {{bytes}} NOT NULL,
    wrapped_private_key {{bytes}} NOT NULL,
    created_at {{time}} NOT NULL
);

-- Requests per key, UTC day and pricing family (openkms usage), rolled up from the trail in the same
-- transaction that moves audit_head.usage_through_seq, so each record is counted exactly once.
CREATE TABLE key_usage_daily (
    key_id {{id}} NOT NULL,
    day {{id}} NOT NULL,
    family {{id}} NOT NULL,
    requests {{int64}} NOT NULL,
    PRIMARY KEY (key_id, day, family)
);
