"""AWS Signature Version 4 verification, header form only (``Authorization: AWS4-HMAC-SHA256 ...``).

Pure: no I/O and no clock (``now`` is an argument), stdlib ``hmac``/``hashlib`` only, because botocore's signer
costs 4-5x as much per request (docs/performance.md). Fail closed (docs/design.md section 8): ``host`` and
``x-amz-date`` must be signed, every ``x-amz-*`` header present must be signed, and the body hashed is the
body the caller parses.

Error codes follow what AWS's JSON services answer (recorded responses kept in the kinesalite/dynalite emulators
and the IAM "Troubleshoot signed requests" page): no ``AWS4-`` Authorization -> MissingAuthenticationToken; a
missing parameter or X-Amz-Date, an unknown algorithm, a Credential without 5 elements or an X-Amz-Date that is not
ISO-8601 basic format -> IncompleteSignature; expiry, ``host`` unsigned, and wrong service, terminator or scope
date -> InvalidSignature. Our stricter additions (x-amz-date unsigned, unsigned ``x-amz-*``, x-amz-content-sha256
mismatch, a signed header that is absent) are InvalidSignature too. Only ``X-Amz-Date`` is accepted, not ``Date``:
every SDK that talks to KMS sends it. Query (presigned) auth is not supported for KMS and counts as missing.

The canonical request is hashed as UTF-8 (surrogateescape), as botocore does. So decode a raw path and query with
``decode("utf-8", "surrogateescape")`` to keep their bytes; header values decoded as latin-1 match botocore, whose
HTTP client sends str header values as latin-1 but hashes them as UTF-8.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote_from_bytes, unquote_to_bytes

from openkms.errors import IncompleteSignatureException, InvalidSignatureException, MissingAuthenticationTokenException

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
_ECHO_LIMIT = 256
_SIGNATURE_PARAM = re.compile(r"(signature\s*=)[^,]*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """One HTTP request exactly as received; ``body`` is the one read that is also parsed later."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Credential:
    """The ``Credential=`` value of the Authorization header: key id plus the scope the key was derived for."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str = TERMINATOR

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """Who signed and where; the caller decides whether it serves ``region`` and what a ``security_token`` means."""

    access_key_id: str
    region: str
    signed_at: float
    security_token: str | None = None


def _remove_dot_segments(path: str) -> str:
    """Drop ``.``/``..`` segments and empty segments (AWS collapses ``//``), keeping one trailing slash."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    trailing = "/" if out and path.endswith("/") else ""
    return "/" + "/".join(out) + trailing


def canonical_uri(path: str, *, normalize: bool = True) -> str:
    """Encode the received path once more (the client encoded it once); KMS, unlike S3, normalises first.

    ``quote_from_bytes`` is RFC 3986 encoding: only ``A-Z a-z 0-9 - _ . ~`` (and ``/`` here) stay literal.
    """
    if path == "/":
        return "/"
    if normalize:
        path = _remove_dot_segments(path)
    return quote_from_bytes(path.encode("utf-8", "surrogateescape"), safe="/") or "/"


def canonical_query_string(query: str) -> str:
    """Decode each name and value, re-encode them RFC 3986 style and sort by encoded name, then value.

    ``+`` is a literal plus, not a space (SDKs encode spaces as ``%20``); empty ``&&`` items are skipped.
    """
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for item in query.encode("utf-8", "surrogateescape").split(b"&"):
        if item:
            name, _, value = item.partition(b"=")
            pairs.append((quote_from_bytes(unquote_to_bytes(name), ""), quote_from_bytes(unquote_to_bytes(value), "")))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(value)
    return merged


def _header_value(values: Sequence[str]) -> str:
    """Trim each value, collapse inner whitespace runs to one space, join repeats with ``,`` in received order."""
    return ",".join(" ".join(value.split()) for value in values)


def canonical_request(
    request: SignedRequest,
    signed_headers: Sequence[str],
    *,
    normalize_path: bool = True,
    payload_hash: str | None = None,
) -> str:
    """Build the canonical request over ``signed_headers`` (lowercase, sorted); ``payload_hash`` saves a rehash."""
    merged = _header_map(request.headers)
    headers = "".join(f"{name}:{_header_value(merged.get(name, ()))}\n" for name in signed_headers)
    uri = canonical_uri(request.path, normalize=normalize_path)
    query = canonical_query_string(request.query)
    if payload_hash is None:
        payload_hash = hashlib.sha256(request.body).hexdigest()
    return f"{request.method}\n{uri}\n{query}\n{headers}\n{';'.join(signed_headers)}\n{payload_hash}"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The three-line preamble plus the hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the day's key; cached because the four HMACs are a third of a verify and repeat all day."""
    key = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


def compute_signature(secret: str, credential: Credential, to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign under the key derived for ``credential``'s scope."""
    key = signing_key(secret, credential.date, credential.region, credential.service)
    return hmac.new(key, to_sign.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def parse_amz_date(value: str) -> float:
    """Parse ``YYYYMMDDTHHMMSSZ`` by slicing (4x cheaper than strptime), rejecting anything else."""
    digits = value[:8] + value[9:15]
    valid = len(value) == 16 and value[8] == "T" and value[15] == "Z" and digits.isascii() and digits.isdigit()
    if valid:
        year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
        hour, minute, second = int(value[9:11]), int(value[11:13]), int(value[13:15])
        valid = 1 <= month <= 12 and hour < 24 and minute < 60 and second < 60
        if valid and 1 <= day <= calendar.monthrange(year, month)[1]:
            return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    raise IncompleteSignatureException(
        f"Date must be in ISO-8601 'basic format'. Got '{value[:64]}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _format_amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(epoch)))


def _echo(authorization: str) -> str:
    """The Authorization header for an error message: signature value removed, length capped."""
    text = _SIGNATURE_PARAM.sub(r"\1<redacted>", authorization)
    return text if len(text) <= _ECHO_LIMIT else text[:_ECHO_LIMIT] + "..."


def _parse_params(authorization: str, text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.strip().partition("=")
        if not key and not equals:
            continue
        if not equals or key in params:
            problem = "duplicated" if equals else "not a valid key=value pair (missing equal-sign)"
            raise IncompleteSignatureException(
                f"'{key[:32]}' {problem} in Authorization header: '{_echo(authorization)}'."
            )
        params[key] = value.strip()
    return params


def _parse_credential(value: str) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{value[:128]}'"
        )
    return Credential(*parts)


def _check_skew(amz_date: str, signed_at: float, now: float, max_skew: int) -> None:
    minutes = f"{max_skew // 60} min." if max_skew % 60 == 0 else f"{max_skew} s."
    if now - signed_at > max_skew:
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier than {_format_amz_date(now - max_skew)} "
            f"({_format_amz_date(now)} - {minutes})"
        )
    if signed_at - now > max_skew:
        raise InvalidSignatureException(
            f"Signature not yet current: {amz_date} is still later than {_format_amz_date(now + max_skew)} "
            f"({_format_amz_date(now)} + {minutes})"
        )


def _parse_signed_headers(value: str) -> list[str]:
    """Split ``SignedHeaders``; it must be canonical already and cover ``host`` and ``x-amz-date``."""
    signed = value.split(";")
    if signed != sorted(set(signed)) or any(not name or name != name.lower() for name in signed):
        raise IncompleteSignatureException("'SignedHeaders' must list lowercase header names, sorted, without repeats.")
    if "host" not in signed:
        raise InvalidSignatureException("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if "x-amz-date" not in signed:
        raise InvalidSignatureException("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    return signed


def _check_signed_headers(merged: Mapping[str, list[str]], signed: Sequence[str], body_hash: str) -> None:
    """Every ``x-amz-*`` header present is signed, every signed header is present, the body hash matches."""
    for name in merged:
        if name.startswith("x-amz-") and name not in signed:
            raise InvalidSignatureException(f"'{name[:64]}' must be a 'SignedHeader' in the AWS Authorization.")
    for name in signed:
        if name not in merged:
            raise InvalidSignatureException(f"Signed header '{name[:64]}' is not present in the request.")
    declared = merged.get("x-amz-content-sha256")
    if declared is not None and not hmac.compare_digest(_header_value(declared).encode(), body_hash.encode()):
        raise InvalidSignatureException("The provided 'x-amz-content-sha256' header does not match what was computed.")


def verify(
    request: SignedRequest,
    lookup_secret: Callable[[str], str],
    now: float,
    service: str = "kms",
    max_skew_seconds: int = 900,
    *,
    normalize_path: bool = True,
    region_ok: Callable[[str], bool] | None = None,
) -> VerifiedRequest:
    """Return who signed ``request`` or raise; ``lookup_secret`` raises UnrecognizedClientException itself.

    Checks run in AWS's order, so a request with several faults gets the error AWS would give first.
    ``normalize_path=False`` exists only for the S3-style cases of the AWS test suite. ``region_ok``, if given,
    judges the scope's region with the other scope checks, before the signature, as STS does (its message
    comes first: "Credential should be scoped to a valid region. Credential should be scoped to correct ...").
    """
    merged = _header_map(request.headers)
    values = merged.get("authorization", ())
    if len(values) > 1:
        raise IncompleteSignatureException("Only one Authorization header is allowed.")
    authorization = values[0].strip() if values else ""
    if not authorization.startswith("AWS4-"):
        raise MissingAuthenticationTokenException()
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm[:32]}' (only {ALGORITHM} for now)."
        )
    params = _parse_params(authorization, rest)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name) and not (name == "SignedHeaders" and name in params)
    ]
    date_values = merged.get("x-amz-date")
    if date_values is None:
        problems.append("Authorization header requires existence of an 'X-Amz-Date' header ('Date' is not accepted).")
    if problems or date_values is None:
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={_echo(authorization)}")
    amz_date = _header_value(date_values)
    signed_at = parse_amz_date(amz_date)
    _check_skew(amz_date, signed_at, now, max_skew_seconds)
    signed = _parse_signed_headers(params["SignedHeaders"])
    credential = _parse_credential(params["Credential"])
    scope_problems = []
    if region_ok is not None and not region_ok(credential.region):
        scope_problems.append("Credential should be scoped to a valid region.")
    if credential.service != service:
        scope_problems.append(f"Credential should be scoped to correct service: '{service}'.")
    if credential.terminator != TERMINATOR:
        scope_problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{credential.terminator[:32]}'."
        )
    if credential.date != amz_date[:8]:
        scope_problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{credential.date[:32]}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if scope_problems:
        raise InvalidSignatureException(" ".join(scope_problems))
    body_hash = hashlib.sha256(request.body).hexdigest()
    _check_signed_headers(merged, signed, body_hash)

    secret = lookup_secret(credential.access_key_id)
    canonical = canonical_request(request, signed, normalize_path=normalize_path, payload_hash=body_hash)
    expected = compute_signature(secret, credential, string_to_sign(amz_date, credential.scope, canonical))
    provided = params["Signature"].encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(expected.encode(), provided):
        raise InvalidSignatureException()
    token = merged.get("x-amz-security-token")
    return VerifiedRequest(
        access_key_id=credential.access_key_id,
        region=credential.region,
        signed_at=signed_at,
        security_token=None if token is None else _header_value(token),
    )
