"""Choose the storage engine from one configuration string.

Accepted forms:

- ``postgresql://user@host:5432/db`` or ``postgres://...`` (any libpq URL): :class:`PostgresStorage`.
- ``sqlite:///abs/path/openkms.db``: an absolute path, read like a ``file:`` URL (the part after the empty
  host). Beware, SQLAlchemy reads three slashes as *relative*; here ``sqlite:////abs`` also works.
  ``sqlite://localhost/abs/path`` is the same thing.
- ``sqlite:relative/path/openkms.db``: relative to the working directory at open time.
- A plain filesystem path (``/var/lib/openkms/openkms.db``, ``./openkms.db``): :class:`SQLiteStorage`.

URL paths are percent-decoded (``%20``); plain paths are taken literally. SQLite URL options
(``?mode=ro``...) and in-memory databases are refused: each thread has its own connection, and the
pragmas are not negotiable.

Opening does not touch the schema: the caller runs ``storage.migrate()`` when it means to (``openkms init``
and ``serve`` do; a read-only tool should not), and can refuse to start on ``schema_version()`` alone.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from openkms.storage.ports import CommitHook, Storage

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_FORMS = "postgresql://..., postgres://..., sqlite:///absolute/path, sqlite:relative/path or a filesystem path"


def sqlite_path_from_url(url: str) -> str:
    """The filesystem path named by a ``sqlite:`` URL; ValueError if it names none."""
    rest = url[len("sqlite:") :]
    if "?" in rest or "#" in rest:
        raise ValueError(f"sqlite URLs take no options or fragments: {url!r}")
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"sqlite URL names a host {host!r}; use sqlite:///absolute/path: {url!r}")
        path = slash + path
    else:
        path = rest
    path = unquote(path)
    if path.startswith("/"):
        path = "/" + path.lstrip("/")  # sqlite:////abs (SQLAlchemy's absolute form) names /abs too
    if not path or path.endswith("/"):
        raise ValueError(f"sqlite URL names no database file: {url!r}")
    return path


def sqlite_file(url: str) -> str | None:
    """The file :func:`open_storage` would open for ``url`` (a SQLite URL or a plain path); None for PostgreSQL."""
    match = _SCHEME.match(url)
    scheme = match[1].lower() if match else None
    if scheme in ("postgresql", "postgres"):
        return None
    return sqlite_path_from_url(url) if scheme == "sqlite" else url


def open_storage(url: str, *, before_commit: CommitHook | None = None) -> Storage:
    """The engine for ``url`` (see the module docstring for the forms); schema left as found. ``before_commit``:
    the hook every write transaction runs (:data:`~openkms.storage.ports.CommitHook`; the server's records)."""
    if not url:
        raise ValueError(f"empty storage URL; expected {_FORMS}")
    match = _SCHEME.match(url)
    scheme = match[1].lower() if match else None
    if scheme in ("postgresql", "postgres"):
        from openkms.storage.postgres import PostgresStorage  # imported on demand: SQLite users skip psycopg

        return PostgresStorage(url, before_commit=before_commit)
    if scheme == "sqlite":
        from openkms.storage.sqlite import SQLiteStorage

        return SQLiteStorage(sqlite_path_from_url(url), before_commit=before_commit)
    if match is not None and url[match.end() :].startswith("//"):
        raise ValueError(f"unsupported storage URL scheme {scheme!r}; expected {_FORMS}")
    from openkms.storage.sqlite import SQLiteStorage

    return SQLiteStorage(url, before_commit=before_commit)
