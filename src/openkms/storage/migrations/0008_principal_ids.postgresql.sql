-- openkms schema version 8 (PostgreSQL): key policies and grants name users by their unique id (issue 15).
--
-- AWS binds a user ARN in a key policy's Principal or a grant's grantee or retiring principal to the user's
-- unique id (AIDA...) when it is stored: a user deleted and created again under the same name is a new
-- principal and gets nothing the old one was given. keys.policy_principal_ids holds, as a JSON object, the
-- unique id of every user ARN the policy names that existed when it was stored (operations/principal_ids.py);
-- grants.grantee_principal_id and retiring_principal_id hold the unique id of a user principal, '' when no
-- such user existed, NULL when the principal is not a user (an account, a service). The SQLite file of
-- this version differs only in its JSON aggregate.
ALTER TABLE keys ADD COLUMN policy_principal_ids TEXT;

ALTER TABLE grants ADD COLUMN grantee_principal_id {{id}};

ALTER TABLE grants ADD COLUMN retiring_principal_id {{id}};

-- Existing policies bind to the users that exist now: each user whose ARN the policy text quotes.
UPDATE keys SET policy_principal_ids = (
    SELECT COALESCE(json_object_agg(u.arn, u.user_id ORDER BY u.arn)::text, '{}') FROM users u
    WHERE strpos(keys.policy, '"' || u.arn || '"') > 0
);

UPDATE grants SET grantee_principal_id = COALESCE(
    (SELECT u.user_id FROM users u WHERE u.arn = grants.grantee_principal), ''
) WHERE substr(grantee_principal, 1, 13) = 'arn:aws:iam::' AND strpos(grantee_principal, ':user/') > 0;

UPDATE grants SET retiring_principal_id = COALESCE(
    (SELECT u.user_id FROM users u WHERE u.arn = grants.retiring_principal), ''
) WHERE substr(retiring_principal, 1, 13) = 'arn:aws:iam::' AND strpos(retiring_principal, ':user/') > 0;
