"""HTTP plumbing of the console: forms, cookies, redirects and the headers every page carries."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from openkms.server.app import HTTPRequest, HTTPResponse

SESSION_COOKIE = "openkms_session"
PRESESSION_COOKIE = "openkms_presession"  # the sign-in form's CSRF anchor, before there is a session
COOKIE_PATH = "/console"
# Under TLS the cookies carry this prefix: browsers then accept them only with Secure, Path=/ and no Domain,
# so neither a sibling subdomain nor a plain-HTTP page can plant one that shadows ours (docs/console.md).
HOST_PREFIX = "__Host-"
MAX_FIELDS = 200

# Everything is served by openkms itself: no script or style from anywhere else, no framing, no inline
# script. Inline SVG attributes (the usage chart) are not CSS and need no 'unsafe-inline'.
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make browsers send Origin: null
    (b"cache-control", b"no-store"),
]


class FormError(Exception):
    """A form that is not ours (too many fields, not UTF-8): refused before anything runs."""


def form(request: HTTPRequest) -> dict[str, list[str]]:
    """The POSTed ``application/x-www-form-urlencoded`` fields, each name to its values in order."""
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormError("the form could not be read") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def query(request: HTTPRequest) -> dict[str, str]:
    """The query string's fields (the first of each name)."""
    found: dict[str, str] = {}
    try:
        pairs = parse_qsl(request.query, keep_blank_values=False, max_num_fields=MAX_FIELDS)
    except ValueError:
        return found
    for name, value in pairs:
        found.setdefault(name, value)
    return found


def whole_number(text: str, high: int) -> int | None:
    """``text`` as a whole number from 0 to ``high``, or None unless it is ASCII digits alone.

    ``int()`` also takes a sign, spaces, underscores and other scripts' digits (``int('٣') == 3``), and raises
    on 4,301 digits; ``str.isdigit()`` accepts ``'²'``, which ``int()`` refuses. The length is checked first.
    """
    if not text or len(text) > len(str(high)) or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= high else None


def cookie_name(name: str, secure: bool) -> str:
    """The name a console cookie has on this request: ``__Host-`` prefixed under TLS."""
    return HOST_PREFIX + name if secure else name


def cookie(request: HTTPRequest, name: str) -> str | None:
    """The value of the console cookie ``name`` (:func:`cookie_name`), or None if absent or sent more than once.

    A browser sends every cookie whose domain and path match, so a second cookie of one name was set by
    someone else (another path, a parent domain): which one is ours cannot be told, so neither counts.
    """
    wanted = cookie_name(name, request.secure)
    found: list[str] = []
    for _, header in (h for h in request.headers if h[0] == "cookie"):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == wanted:
                found.append(value.strip())
    return found[0] if len(found) == 1 else None


def same_origin(request: HTTPRequest) -> bool:
    """A POST whose Origin (or, lacking it, Referer) names another site is refused (CSRF defence in depth)."""
    origin = request.header("origin") or request.header("referer")
    if origin is None:
        return True  # SameSite=Strict and the CSRF token still hold; some clients send neither header
    host = request.header("host") or ""
    scheme = "https" if request.secure else "http"
    return origin == f"{scheme}://{host}" or origin.startswith(f"{scheme}://{host}/")


def set_cookie(name: str, value: str, max_age: int, secure: bool) -> tuple[bytes, bytes]:
    """Under TLS ``__Host-<name>``, Secure, ``Path=/`` (the prefix demands it) and no Domain; over plain HTTP
    (development, loopback) the bare name, scoped to ``/console``."""
    path = "/" if secure else COOKIE_PATH
    attributes = f"{cookie_name(name, secure)}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict"
    if secure:
        attributes += "; Secure"
    return (b"set-cookie", attributes.encode("latin-1"))


def clear_cookie(name: str, secure: bool) -> tuple[bytes, bytes]:
    return set_cookie(name, "", 0, secure)


def html(body: str, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> HTTPResponse:
    return HTTPResponse(
        status,
        body.encode("utf-8"),
        [(b"content-type", b"text/html; charset=utf-8"), *_SECURITY_HEADERS, *(headers or [])],
    )


def redirect(location: str, headers: list[tuple[bytes, bytes]] | None = None) -> HTTPResponse:
    """303 See Other: after a POST the browser GETs the result page (a reload does not repeat the action)."""
    return HTTPResponse(303, b"", [(b"location", location.encode("utf-8")), *_SECURITY_HEADERS, *(headers or [])])


def static(body: bytes, content_type: str) -> HTTPResponse:
    return HTTPResponse(
        200,
        body,
        [
            (b"content-type", content_type.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"public, max-age=3600"),
        ],
    )


def plain(status: int, text: str) -> HTTPResponse:
    return HTTPResponse(status, text.encode(), [(b"content-type", b"text/plain; charset=utf-8"), *_SECURITY_HEADERS])


def with_query(path: str, fields: Mapping[str, str | None]) -> str:
    kept = {k: v for k, v in fields.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path
