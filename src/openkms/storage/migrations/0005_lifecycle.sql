-- openkms schema: key lifecycle (automatic rotation, deletion after the waiting period) and the leases that
-- let background jobs run on exactly one node at a time (DESIGN.md section 6, docs/lifecycle.md).
--
-- Same token rules as 0001_initial.sql. The rotation columns of keys exist since version 1; this file adds
-- the indexes the jobs scan and the lease table.

-- One row per background job (jobs/registry.py). A node runs a job only after an UPDATE moved lease_until
-- from the past into the future under its own holder id; the row lock of that UPDATE makes the claim
-- atomic on both engines. next_run_at spaces the runs cluster-wide (0 = as often as nodes poll).
CREATE TABLE job_leases (
    job_name {{id}} PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_until {{time}} NOT NULL,
    next_run_at {{time}} NOT NULL,
    last_started_at {{time}},
    last_finished_at {{time}},
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL
);

-- The rotation job asks "which Enabled keys are due"; DisableKeyRotation clears next_rotation_date, so
-- the partial index holds only keys with automatic rotation on.
CREATE INDEX keys_rotation_due ON keys (key_state, next_rotation_date) WHERE next_rotation_date IS NOT NULL;

-- The deletion job asks "whose waiting period is over"; only keys pending deletion have a deletion_date.
CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE deletion_date IS NOT NULL;
