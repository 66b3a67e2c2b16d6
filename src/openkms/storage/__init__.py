"""Persistence: one port (``ports/``, a Protocol per aggregate), two engines (SQLite, PostgreSQL) chosen by URL."""
