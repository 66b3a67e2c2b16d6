"""The audit trail: one tamper-evident record per API call (docs/design.md section 5, docs/audit.md)."""
