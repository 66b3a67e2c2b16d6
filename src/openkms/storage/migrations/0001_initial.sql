-- openkms schema version 1: every table behind storage/records.py.
--
-- One portable file for both engines. migrate.py substitutes the {{...}} tokens per dialect:
--   {{id}}     TEXT on SQLite; TEXT COLLATE "C" on PostgreSQL, so ORDER BY and the "> after" of
--              pagination compare bytes on both engines, whatever the database's locale
--   {{bytes}}  BLOB / BYTEA
--   {{time}}   REAL / DOUBLE PRECISION (epoch seconds)
--   {{bool}}   INTEGER / BOOLEAN
-- The runner drops full-line comments and splits statements at a semicolon that ends a line, so keep
-- semicolons out of the ends of lines inside a statement.

-- How the root key is sealed. The CHECK keeps it to one row: init runs once.
CREATE TABLE seal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kind {{id}} NOT NULL,
    params TEXT NOT NULL,
    wrapped_root_key {{bytes}} NOT NULL,
    created_at {{time}} NOT NULL
);

CREATE TABLE accounts (
    account_id {{id}} PRIMARY KEY,
    created_at {{time}} NOT NULL
);

CREATE TABLE users (
    account_id {{id}} NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    user_name {{id}} NOT NULL,
    user_id {{id}} NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    created_at {{time}} NOT NULL,
    PRIMARY KEY (account_id, user_name)
);

-- Deleting a user takes its access keys with it.
CREATE TABLE access_keys (
    access_key_id {{id}} PRIMARY KEY,
    account_id {{id}} NOT NULL,
    user_name {{id}} NOT NULL,
    wrapped_secret {{bytes}} NOT NULL,
    status {{id}} NOT NULL,
    created_at {{time}} NOT NULL,
    FOREIGN KEY (account_id, user_name) REFERENCES users (account_id, user_name) ON DELETE CASCADE
);

CREATE INDEX access_keys_by_user ON access_keys (account_id, user_name, access_key_id);

-- No foreign key to accounts: a key's account comes from the caller's ARN, and the CLI may create keys
-- for an account before any user exists in it.
CREATE TABLE keys (
    key_id {{id}} PRIMARY KEY,
    account_id {{id}} NOT NULL,
    region {{id}} NOT NULL,
    arn TEXT NOT NULL,
    description TEXT NOT NULL,
    key_usage {{id}} NOT NULL,
    key_spec {{id}} NOT NULL,
    origin {{id}} NOT NULL,
    key_manager {{id}} NOT NULL,
    key_state {{id}} NOT NULL,
    creation_date {{time}} NOT NULL,
    multi_region {{bool}} NOT NULL,
    policy TEXT NOT NULL,
    current_version_id {{id}},
    deletion_date {{time}},
    pending_window_days INTEGER,
    rotation_enabled {{bool}} NOT NULL,
    rotation_period_days INTEGER,
    next_rotation_date {{time}}
);

CREATE INDEX keys_by_account ON keys (account_id, region, key_id);

-- version_number orders versions by insertion (created_at can tie under a frozen clock) and its
-- uniqueness stops two racing rotations from both claiming the same slot.
CREATE TABLE key_versions (
    key_id {{id}} NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    version_id {{id}} NOT NULL,
    version_number INTEGER NOT NULL,
    created_at {{time}} NOT NULL,
    wrapped_material {{bytes}} NOT NULL,
    rotation_type {{id}} NOT NULL,
    PRIMARY KEY (key_id, version_id),
    UNIQUE (key_id, version_number)
);

CREATE TABLE aliases (
    account_id {{id}} NOT NULL,
    region {{id}} NOT NULL,
    alias_name {{id}} NOT NULL,
    target_key_id {{id}} NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    creation_date {{time}} NOT NULL,
    last_updated_date {{time}} NOT NULL,
    PRIMARY KEY (account_id, region, alias_name)
);

CREATE INDEX aliases_by_target ON aliases (target_key_id);

CREATE TABLE tags (
    key_id {{id}} NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    tag_key {{id}} NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
