"""The backup file: a signed manifest, then every row as gzip-compressed JSON lines.

::

    openkms-backup 1\\n                       the magic line (format and its version)
    {manifest JSON}\\n                        one line: tables (columns, row counts), schema version, audit head,
                                             the seal record, the SHA-256 and length of the body, when, from what
    <64 hex>\\n                               HMAC-SHA256 of the two lines above, under the manifest key
    <gzip body>                              per table a line {"table": name}, then one JSON array per row

The manifest key is HKDF-SHA256 of the root key with its own label (:func:`manifest_key`): whoever restores holds
the root of trust (the passphrase or key file that opens the seal record carried in the manifest), and whoever
holds only the file cannot re-sign an altered one. The body's hash is in the signed manifest, so a flipped byte
or a truncated file anywhere is refused before any row is read. Wrapped material stays wrapped: the file holds
what the database holds, and is useless without the root of trust.

Values: SQL NULL, integers, floats and text as JSON; bytes as ``{"b64": "..."}``; booleans as 0/1 (the restore
gives PostgreSQL its BOOLEAN back).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from openkms.crypto import hmac, kdf
from openkms.crypto.errors import InvalidMacError
from openkms.storage.records import SealRecord

MAGIC = b"openkms-backup 1\n"
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few KiB; a longer first line is not one
_MAC_ALGORITHM = "HMAC_SHA_256"
_MAC_INFO = b"openkms backup manifest v1"
_MAC_HEX = 64
_CHUNK = 1 << 20
FILE_MODE = 0o600


class BackupError(Exception):
    """The file is not a sound backup, or cannot be written; the message says what, never a secret."""


def manifest_key(root_key: bytes) -> bytes:
    """The key that signs manifests: derived from the root key under its own label, so it opens nothing else."""
    return kdf.hkdf_sha256(root_key, b"", _MAC_INFO, 32)


@dataclass(frozen=True, slots=True)
class TableSummary:
    columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: float
    engine: str  # the dialect it was read from
    schema_version: int
    openkms_version: str
    tables: dict[str, TableSummary]  # in restore order
    audit_head_seq: int
    audit_head_hash: str
    seal: SealRecord
    content_sha256: str
    content_bytes: int
    snapshot_seconds: float  # how long the read transaction stayed open

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": "openkms-backup",
                "formatVersion": FORMAT_VERSION,
                "createdAt": self.created_at,
                "engine": self.engine,
                "schemaVersion": self.schema_version,
                "openkmsVersion": self.openkms_version,
                "tables": [
                    {"name": name, "columns": list(t.columns), "rows": t.rows} for name, t in self.tables.items()
                ],
                "auditHead": {"seq": self.audit_head_seq, "hash": self.audit_head_hash},
                "seal": {
                    "kind": self.seal.kind,
                    "params": self.seal.params,
                    "wrappedRootKey": base64.b64encode(self.seal.wrapped_root_key).decode("ascii"),
                    "createdAt": self.seal.created_at,
                },
                "content": {"sha256": self.content_sha256, "bytes": self.content_bytes},
                "snapshotSeconds": self.snapshot_seconds,
                "note": "wrapped under the root key: useless without the passphrase or key file that opens the seal",
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
            if data["format"] != "openkms-backup" or data["formatVersion"] != FORMAT_VERSION:
                raise BackupError(f"unsupported backup format {data['format']!r} {data['formatVersion']!r}")
            seal = data["seal"]
            return cls(
                created_at=float(data["createdAt"]),
                engine=str(data["engine"]),
                schema_version=int(data["schemaVersion"]),
                openkms_version=str(data["openkmsVersion"]),
                tables={
                    str(t["name"]): TableSummary(tuple(str(c) for c in t["columns"]), int(t["rows"]))
                    for t in data["tables"]
                },
                audit_head_seq=int(data["auditHead"]["seq"]),
                audit_head_hash=str(data["auditHead"]["hash"]),
                seal=SealRecord(
                    str(seal["kind"]),
                    str(seal["params"]),
                    base64.b64decode(seal["wrappedRootKey"], validate=True),
                    float(seal["createdAt"]),
                ),
                content_sha256=str(data["content"]["sha256"]),
                content_bytes=int(data["content"]["bytes"]),
                snapshot_seconds=float(data["snapshotSeconds"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise BackupError(f"the manifest is malformed ({type(exc).__name__})") from None

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


# ---- values ---------------------------------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, bool):
        return int(value)
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(value["b64"], validate=True)
    return value


# ---- writing --------------------------------------------------------------------------------------------------


class BodyWriter:
    """The compressed rows, written to a private temporary file beside the output (same file system, so the
    final file can be renamed into place)."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".openkms-backup-", suffix=".body", dir=directory)
        self.path = Path(name)
        self._raw = os.fdopen(fd, "wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="\n")

    def start_table(self, name: str) -> None:
        self._text.write(json.dumps({"table": name}, separators=(",", ":")) + "\n")

    def row(self, values: Sequence[Any]) -> None:
        self._text.write(json.dumps([encode_value(v) for v in values], separators=(",", ":")) + "\n")

    def close(self) -> tuple[str, int]:
        """Finish the body; its SHA-256 (hex) and length."""
        self._text.close()  # closes the GzipFile, which leaves the raw file open
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        digest = hashlib.sha256()
        size = 0
        with self.path.open("rb") as body:
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def discard(self) -> None:
        if not self._raw.closed:
            self._raw.close()
        self.path.unlink(missing_ok=True)


def write_file(output: Path, manifest: Manifest, root_key: bytes, body: Path, *, force: bool) -> None:
    """Magic, manifest, signature and body into ``output``, atomically (a private temporary file, fsync, then
    into place), mode 0600; an existing ``output`` is replaced only with ``force``."""
    manifest_line = manifest.to_json().encode("utf-8")
    mac = hmac.hmac_generate(_MAC_ALGORITHM, manifest_key(root_key), MAGIC + manifest_line)
    fd, name = tempfile.mkstemp(prefix=".openkms-backup-", suffix=".tmp", dir=output.parent)
    temporary = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + manifest_line + b"\n" + mac.hex().encode("ascii") + b"\n")
            with body.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(temporary, output)
        else:
            try:
                os.link(temporary, output)  # never replaces: a file that appeared meanwhile is kept
            except FileExistsError:
                raise BackupError(f"{output} exists: give --force to replace it") from None
            temporary.unlink()
        directory = os.open(output.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)


# ---- reading --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    manifest: Manifest
    body_offset: int


def read_seal(path: Path) -> SealRecord:
    """The seal record the manifest carries, read *before* its signature can be checked: only to learn how the
    root key is sealed and open it. A forged seal gains nothing: the operator's passphrase or key file does not
    open it, and the root key that does open the real one must then verify the signature."""
    return Manifest.from_json(_header(path)[1].decode("utf-8")).seal


def open_file(path: Path, root_key: bytes) -> Opened:
    """The signed manifest of ``path``; :class:`BackupError` unless the magic, the signature under
    ``root_key`` and the manifest are sound. The body is not read (see :func:`check_body`)."""
    magic, manifest_line, mac_line, offset = _header(path)
    try:
        mac = bytes.fromhex(mac_line.decode("ascii"))
        hmac.hmac_verify(_MAC_ALGORITHM, manifest_key(root_key), magic + manifest_line, mac)
    except (ValueError, InvalidMacError):
        raise BackupError(
            "the manifest's signature does not verify: the file was altered, or it was made under another root key"
        ) from None
    return Opened(Manifest.from_json(manifest_line.decode("utf-8")), offset)


def _header(path: Path) -> tuple[bytes, bytes, bytes, int]:
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(MAGIC))
            if magic != MAGIC:
                raise BackupError(f"{path} is not an openkms backup (or of an unknown format version)")
            manifest_line = _line(stream, MAX_MANIFEST_BYTES, "manifest")
            mac_line = _line(stream, _MAC_HEX + 1, "signature")
            return magic, manifest_line, mac_line, stream.tell()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None


def _line(stream: IO[bytes], limit: int, what: str) -> bytes:
    line = stream.readline(limit + 1)
    if not line.endswith(b"\n"):
        raise BackupError(f"the backup's {what} line is truncated or too long")
    return line[:-1]


def check_body(path: Path, opened: Opened) -> None:
    """The body's length and SHA-256 are those the signed manifest states (a truncated or altered body fails)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        stream.seek(opened.body_offset)
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    expected = opened.manifest
    if size != expected.content_bytes:
        raise BackupError(
            f"the backup's body has {size} bytes, its manifest says {expected.content_bytes}: truncated or altered"
        )
    if digest.hexdigest() != expected.content_sha256:
        raise BackupError("the backup's body does not match the hash in its signed manifest: altered")


def read_rows(path: Path, opened: Opened) -> Iterator[tuple[str, list[Any]]]:
    """Every row as (table, values), in file order; call after :func:`check_body`."""
    table: str | None = None
    try:
        with path.open("rb") as raw:
            raw.seek(opened.body_offset)
            with gzip.GzipFile(fileobj=raw, mode="rb") as body, io.TextIOWrapper(body, encoding="utf-8") as text:
                for line in text:
                    item = json.loads(line)
                    if isinstance(item, dict):
                        table = str(item["table"])
                    elif table is None or not isinstance(item, list):
                        raise BackupError("the backup's body has a row outside any table")
                    else:
                        yield table, [decode_value(v) for v in item]
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BackupError(f"the backup's body cannot be read ({type(exc).__name__})") from None
