"""Templates (Jinja2, autoescaped) and the static files the console serves itself."""

from __future__ import annotations

import functools
import json
import time
from importlib import resources
from typing import Any

import jinja2

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def _time(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _date(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _pretty_json(text: Any) -> str:
    try:
        return json.dumps(json.loads(text) if isinstance(text, str) else text, indent=2, sort_keys=False)
    except (TypeError, ValueError):
        return str(text)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("openkms.console", "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise (none does)
        # Absent response members (AWS omits them) render as nothing, as a missing template variable does.
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = _time
    env.filters["date"] = _date
    env.filters["pretty_json"] = _pretty_json
    return env


def page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file the package ships in ``console/static`` (name to content and type), read once at start.

    Requests look names up in this fixed table: an unknown name is a 404 that reaches no filesystem call (a
    name too long for it raised ENAMETOOLONG) and leaves nothing behind (no cache grows with the names asked).
    """
    found: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("openkms.console").joinpath("static").iterdir():
        suffix = entry.name[entry.name.rfind(".") :] if "." in entry.name else ""
        if entry.is_file() and not entry.name.startswith(".") and suffix in STATIC_TYPES:
            found[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return found
