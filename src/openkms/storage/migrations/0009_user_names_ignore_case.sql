-- openkms schema version 9: user names are unique per account ignoring case, as IAM's are (issue 15).
--
-- IAM refuses to create "Dave" where "dave" exists (EntityAlreadyExists). identity.create_user checks it;
-- this index makes the database refuse it too, whoever writes. Names are ASCII ([A-Za-z0-9+=,.@_-]), so
-- lower() folds them alike on both engines.
--
-- Users that already differ only in case cannot be told apart by name any more, nor can this migration
-- delete one of them (its keys and policies name it). They are marked, and the index leaves the marked rows
-- out: they keep working, the identity check still refuses any new variant of their name, and deleting them
-- is the operator's call (openkms iam delete-user). The column is not part of UserRecord: inserts take the
-- default.
ALTER TABLE users ADD COLUMN name_case_duplicate INTEGER NOT NULL DEFAULT 0;

UPDATE users SET name_case_duplicate = 1 WHERE EXISTS (
    SELECT 1 FROM users other WHERE other.account_id = users.account_id
    AND lower(other.user_name) = lower(users.user_name) AND other.user_name <> users.user_name
);

CREATE UNIQUE INDEX users_name_ignoring_case ON users (account_id, lower(user_name)) WHERE name_case_duplicate = 0;
