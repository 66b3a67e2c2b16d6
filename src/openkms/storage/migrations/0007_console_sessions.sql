-- openkms schema version 7: web console sessions (issue 7, docs/console.md).
--
-- Same token rules as 0001_initial.sql. A session row holds only the SHA-256 of the cookie's random token,
-- never the token: whoever reads the database cannot sign in with it. A session belongs to the access key
-- that signed in and dies with it (deactivation is checked on every page; deletion cascades), so revoking
-- an access key ends its console sessions at once, on every node.
CREATE TABLE console_sessions (
    token_digest {{id}} PRIMARY KEY,
    access_key_id {{id}} NOT NULL REFERENCES access_keys (access_key_id) ON DELETE CASCADE,
    created_at {{time}} NOT NULL,
    expires_at {{time}} NOT NULL
);

-- Sign-in prunes the expired sessions; sign-out and access-key deletion remove by key.
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_access_key ON console_sessions (access_key_id);
