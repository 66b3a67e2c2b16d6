"""Throwaway PostgreSQL databases for tests (storage contract, e2e).

``OPENKMS_TEST_POSTGRES_URL`` is an admin URL (a role allowed to CREATE DATABASE); every test database is
created next to the one it names and dropped afterwards. When the server is unreachable the tests that need
it are skipped, unless ``OPENKMS_REQUIRE_POSTGRES=1`` (CI), where skipping would hide a whole engine.
"""

from __future__ import annotations

import functools
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

URL_ENV = "OPENKMS_TEST_POSTGRES_URL"
REQUIRE_ENV = "OPENKMS_REQUIRE_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
TEMP_PREFIX = "openkms_t_"  # drop_database refuses any other name: a typo must not drop a real database


def postgres_admin_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_ADMIN_URL


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


@functools.cache
def unreachable_reason() -> str | None:
    """None if the admin URL answers, else why not (asked once per test session)."""
    try:
        with psycopg.connect(postgres_admin_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def postgres_or_skip() -> str:
    """The admin URL; skip the calling test if PostgreSQL is unreachable (fail if it is required)."""
    reason = unreachable_reason()
    if reason is not None:
        message = f"PostgreSQL not reachable at {_redact(postgres_admin_url())}: {reason}"
        if postgres_required():
            pytest.fail(f"{message} (and {REQUIRE_ENV}=1)")
        pytest.skip(message)
    return postgres_admin_url()


def database_url(admin_url: str, dbname: str) -> str:
    """``admin_url`` pointing at another database (URL form only: openkms takes URLs)."""
    parts = urlsplit(admin_url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{URL_ENV} must be a postgresql:// URL, got {_redact(admin_url)}")
    return urlunsplit(parts._replace(path="/" + dbname))


def create_temp_database() -> str:
    """Create an empty ``openkms_t_<hex>`` database and return its URL."""
    admin = postgres_or_skip()
    name = TEMP_PREFIX + secrets.token_hex(6)
    with psycopg.connect(admin, autocommit=True) as conn:  # CREATE DATABASE cannot run in a transaction
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin, name)


def drop_database(url: str) -> None:
    """Drop a database made by :func:`create_temp_database`, disconnecting anyone still in it."""
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith(TEMP_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a {TEMP_PREFIX}* test database")
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
