-- openkms schema version 3: the audit trail (issue 5, DESIGN.md sections 5 and 8).
--
-- audit_events is append-only: one row per API call, hash-chained in seq order (audit/chain.py). The
-- columns beside `event` are copies of fields of the event, kept for the filtered queries of
-- `openkms audit query`; the chain covers only seq and `event` (the canonical CloudTrail JSON), so a
-- changed copy cannot hide a changed event and the verifier compares the copies with the event.
-- audit_head holds the chain's last seq and hash; appending locks it, which orders every writer of every
-- node. Signed digests (audit/digests.py) each cover the records appended since the previous one.

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
    event TEXT NOT NULL,
    hash {{id}} NOT NULL
);

CREATE INDEX audit_events_by_key ON audit_events (key_id, seq);
CREATE INDEX audit_events_by_other_key ON audit_events (other_key_id, seq);
CREATE INDEX audit_events_by_principal ON audit_events (principal_arn, seq);
CREATE INDEX audit_events_by_name ON audit_events (event_name, seq);
CREATE INDEX audit_events_by_time ON audit_events (event_time);
CREATE INDEX audit_events_by_request ON audit_events (request_id);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq {{int64}} NOT NULL,
    hash {{id}} NOT NULL,
    started_at {{time}} NOT NULL
);

INSERT INTO audit_head (id, seq, hash, started_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);

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

-- Requests per key, UTC day and pricing family (openkms usage), counted in the same transaction as the
-- audit records they come from, so the counts and the trail cannot disagree.
CREATE TABLE key_usage_daily (
    key_id {{id}} NOT NULL,
    day {{id}} NOT NULL,
    family {{id}} NOT NULL,
    requests {{int64}} NOT NULL,
    PRIMARY KEY (key_id, day, family)
);
