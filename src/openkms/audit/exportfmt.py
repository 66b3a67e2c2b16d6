"""The export format of the trail: JSON lines that carry everything the offline verifier needs.

::

    {"type": "header", "format": "openkms-audit", "version": 1, "exportedAt": "...",
     "signingKeys": [{"keyId": "...", "algorithm": "ED25519_SHA_512", "publicKey": "<base64 DER SPKI>"}]}
    {"type": "digest", "digestSeq": 1, "fromSeq": 1, "toSeq": 40, "periodEnd": 1764370800.0,
     "body": "<the signed canonical JSON text>", "signature": "<base64>"}      (every digest, in order)
    {"type": "record", "seq": 1, "hash": "<hex>", "event": "<the canonical JSON text as stored>"}
                                                                              (records, in seq order)

``event`` and ``body`` are the exact stored texts (strings inside the line), so the verifier hashes and checks
the same bytes the service did. The public keys in the header are for convenience only: a verifier that
trusts them trusts whoever wrote the file; pin the key exported with ``openkms audit public-key`` instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from openkms.storage.audit import AuditRow, DigestRow, SigningKeyRow

FORMAT = "openkms-audit"
VERSION = 1


def header_line(keys: Iterable[SigningKeyRow], exported_at: str) -> str:
    return _line(
        {
            "type": "header",
            "format": FORMAT,
            "version": VERSION,
            "exportedAt": exported_at,
            "signingKeys": [
                {"keyId": k.key_id, "algorithm": k.algorithm, "publicKey": base64.b64encode(k.public_key).decode()}
                for k in keys
            ],
        }
    )


def digest_line(digest: DigestRow) -> str:
    return _line(
        {
            "type": "digest",
            "digestSeq": digest.digest_seq,
            "fromSeq": digest.from_seq,
            "toSeq": digest.to_seq,
            "periodEnd": digest.period_end,
            "body": digest.body,
            "signature": digest.signature,
        }
    )


def record_line(row: AuditRow) -> str:
    return _line({"type": "record", "seq": row.seq, "hash": row.hash, "event": row.event})


def _line(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"


class ExportError(ValueError):
    """The file is not an export of this format (a verifier reports it rather than crashing)."""


def read(stream: IO[str]) -> tuple[dict[str, Any], list[DigestRow], Iterator[AuditRow]]:
    """The header, every digest, and the records as a stream (records follow the digests in the file)."""
    first = stream.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError as exc:
        raise ExportError(f"line 1 is not JSON: {exc.msg}") from None
    if not isinstance(header, dict) or header.get("type") != "header" or header.get("format") != FORMAT:
        raise ExportError("line 1 is not an openkms-audit header")
    digests: list[DigestRow] = []
    pending: dict[str, Any] | None = None
    line_number = 1
    for raw in stream:
        line_number += 1
        item = _parse(raw, line_number)
        if item.get("type") != "digest":
            pending = item
            break
        try:
            digests.append(
                DigestRow(
                    int(item["digestSeq"]),
                    int(item["fromSeq"]),
                    int(item["toSeq"]),
                    float(item["periodEnd"]),
                    str(item["body"]),
                    str(item["signature"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"line {line_number}: a digest line without its fields") from None
    return header, digests, _records(pending, stream, line_number)


def _records(first: dict[str, Any] | None, stream: IO[str], line_number: int) -> Iterator[AuditRow]:
    item = first
    while item is not None:
        if item.get("type") != "record":
            raise ExportError(f"line {line_number}: expected a record, found {str(item.get('type'))[:32]!r}")
        try:
            seq, event, hash_ = int(item["seq"]), str(item["event"]), str(item["hash"])
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"line {line_number}: a record line without its fields") from None
        yield AuditRow(
            seq=seq,
            event_time=0.0,
            event_name="",
            request_id="",
            principal_arn="",
            key_id=None,
            other_key_id=None,
            source_ip="",
            error_code=None,
            usage_family=None,
            event=event,
            hash=hash_,
        )
        raw = stream.readline()
        line_number += 1
        item = _parse(raw, line_number) if raw else None


def _parse(raw: str, line_number: int) -> dict[str, Any]:
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ExportError(f"line {line_number} is not JSON: {exc.msg}") from None
    if not isinstance(item, dict):
        raise ExportError(f"line {line_number} is not an object")
    return item
