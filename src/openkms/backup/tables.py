"""The tables a backup holds, in the order a restore inserts them (parents before children), and those it omits.

Every table of the schema is named here, once, either in :data:`TABLES` or in :data:`OMITTED` with the reason:
``tests/backup/test_tables.py`` compares both lists with the schema the migrations build, so a new table cannot
be left out of backups by forgetting it.

State that must not go backwards when an older backup is restored (docs/operations.md, "What a restore rolls
back"): there is no nonce counter in the schema (every wrap and every ciphertext takes a random nonce, and
per-message keys are derived from random salts), and ids (keys, grants, requests, access keys) are random, so
nothing is reused by restoring. What does go back is handled here or by the restore:

- ``console_sessions`` are not backed up: a session signed out after the backup must not come back;
- ``job_leases`` are restored with no holder and an expired lease, so the restored node runs due jobs at once
  instead of waiting for a lease held by a node of the old deployment (``restore.py``);
- ``audit_head`` and ``audit_digests`` come back as they were, so the chain continues from the backup's head: the
  records and digests written after the backup are not in the restored trail, and an anchor directory that
  received those digests must be replaced by a new one (the runbook says so).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    key: tuple[str, ...]  # the primary key: rows are read in this order, a page at a time
    booleans: tuple[str, ...] = ()  # {{bool}} columns: INTEGER on SQLite, BOOLEAN on PostgreSQL
    seeded: bool = False  # the migrations insert a row (audit_head): a restore replaces it


TABLES: tuple[Table, ...] = (
    Table("seal", ("id",)),
    Table("accounts", ("account_id",)),
    Table("users", ("account_id", "user_name")),
    Table("access_keys", ("access_key_id",)),
    Table("iam_groups", ("account_id", "group_name")),
    Table("group_members", ("account_id", "group_name", "user_name")),
    Table("user_policies", ("account_id", "user_name", "policy_name")),
    Table("group_policies", ("account_id", "group_name", "policy_name")),
    Table("user_tags", ("account_id", "user_name", "tag_key")),
    Table("keys", ("key_id",), booleans=("multi_region", "rotation_enabled")),
    Table("key_versions", ("key_id", "version_id")),
    Table("aliases", ("account_id", "region", "alias_name")),
    Table("tags", ("key_id", "tag_key")),
    Table("grants", ("key_id", "grant_id")),
    Table("imported_key_material", ("key_id",)),
    Table("key_materials", ("key_id", "version_id")),
    Table("job_leases", ("job_name",)),
    Table("audit_head", ("id",), seeded=True),
    Table("audit_events", ("seq",)),
    Table("audit_digests", ("digest_seq",)),
    Table("audit_signing_keys", ("key_id",)),
    Table("key_usage_daily", ("key_id", "day", "family")),
)

OMITTED = {
    "schema_migrations": "the target's own migrations write it",
    "console_sessions": "a session ended after the backup must not come back; users sign in again",
}

BY_NAME = {table.name: table for table in TABLES}
