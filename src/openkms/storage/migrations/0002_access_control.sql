-- openkms schema version 2: what authorisation reads (issue 4, DESIGN.md section 4).
--
-- IAM groups, group membership, inline identity policies of users and groups, principal tags of users,
-- and KMS grants. Same token rules as 0001_initial.sql. Children of users, groups and keys name their
-- parent with ON DELETE CASCADE, and storage/sql.py also deletes them explicitly (a connection opened
-- without PRAGMA foreign_keys must not leave grants or policies behind).

CREATE TABLE iam_groups (
    account_id {{id}} NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    group_name {{id}} NOT NULL,
    group_id {{id}} NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    created_at {{time}} NOT NULL,
    PRIMARY KEY (account_id, group_name)
);

-- The primary key serves "members of a group"; group_members_by_user serves "groups of a user" (the
-- authorisation read on every request) and the cascade from users.
CREATE TABLE group_members (
    account_id {{id}} NOT NULL,
    group_name {{id}} NOT NULL,
    user_name {{id}} NOT NULL,
    PRIMARY KEY (account_id, group_name, user_name),
    FOREIGN KEY (account_id, group_name) REFERENCES iam_groups (account_id, group_name) ON DELETE CASCADE,
    FOREIGN KEY (account_id, user_name) REFERENCES users (account_id, user_name) ON DELETE CASCADE
);

CREATE INDEX group_members_by_user ON group_members (account_id, user_name, group_name);

CREATE TABLE user_policies (
    account_id {{id}} NOT NULL,
    user_name {{id}} NOT NULL,
    policy_name {{id}} NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, policy_name),
    FOREIGN KEY (account_id, user_name) REFERENCES users (account_id, user_name) ON DELETE CASCADE
);

CREATE TABLE group_policies (
    account_id {{id}} NOT NULL,
    group_name {{id}} NOT NULL,
    policy_name {{id}} NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (account_id, group_name, policy_name),
    FOREIGN KEY (account_id, group_name) REFERENCES iam_groups (account_id, group_name) ON DELETE CASCADE
);

CREATE TABLE user_tags (
    account_id {{id}} NOT NULL,
    user_name {{id}} NOT NULL,
    tag_key {{id}} NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (account_id, user_name, tag_key),
    FOREIGN KEY (account_id, user_name) REFERENCES users (account_id, user_name) ON DELETE CASCADE
);

-- operations: JSON list of operation names. constraints: JSON of AWS GrantConstraints, or NULL.
-- The primary key serves ListGrants (by key, ordered by grant id) and the cascade from keys; grant ids are
-- also unique on their own, so ListRetirableGrants can page across keys by grant id alone.
CREATE TABLE grants (
    key_id {{id}} NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
    grant_id {{id}} NOT NULL UNIQUE,
    account_id {{id}} NOT NULL,
    name {{id}},
    grantee_principal {{id}} NOT NULL,
    retiring_principal {{id}},
    operations TEXT NOT NULL,
    constraints TEXT,
    issuing_principal TEXT NOT NULL,
    creation_date {{time}} NOT NULL,
    grant_token {{id}} NOT NULL UNIQUE,
    PRIMARY KEY (key_id, grant_id)
);

-- grants_for(key, grantee): the authorisation read of every request on a key.
CREATE INDEX grants_by_grantee ON grants (key_id, grantee_principal, grant_id);

CREATE INDEX grants_by_name ON grants (key_id, name, grant_id);

CREATE INDEX grants_by_retiring ON grants (retiring_principal, grant_id);

-- Before this version every authenticated user could do everything in its own account. Policy
-- evaluation denies what no policy allows, so each existing user gets an inline policy that allows
-- everything: nobody loses access by upgrading (docs/iam.md tells operators to narrow it).
INSERT INTO user_policies (account_id, user_name, policy_name, document)
SELECT account_id, user_name, 'AdministratorAccess',
       '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
FROM users;
