"""Logical backups that restore: ``openkms backup``, ``backup verify`` and ``restore`` (docs/operations.md).

- ``tables.py``: which tables a backup holds, in the order a restore inserts them, and which it leaves out (why);
- ``archive.py``: the file format (a signed manifest, then the rows as compressed JSON lines);
- ``snapshot.py``: reading every table in one read transaction and writing the file;
- ``verify.py``: checking a file (signature, content hash, counts, every wrapped secret opens);
- ``restore.py``: writing a checked file into an empty database, in one write transaction.
"""
