"""The audit trail: one tamper-evident record per API call (DESIGN.md section 5, docs/audit.md)."""
