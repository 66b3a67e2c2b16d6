"""Persistence: one port (``ports.py``), two engines (SQLite, PostgreSQL) chosen by URL."""
