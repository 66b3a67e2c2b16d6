"""Anchoring the trail's head outside the database (docs/audit.md, "Anchoring the head").

Digests chain backwards only, and the verifier learns where the trail ends from the database itself, so
whoever can write the database can delete the newest records *and* the digests that cover them, and the
rest still verifies. CloudTrail keeps its digest files apart from the trail for this reason; here every
signed digest is also delivered to sinks the database's writers cannot rewrite:

- a **directory** (meant for another volume or host): one file per digest, ``digest-<12-digit seq>.json``
  holding ``{"body": ..., "signature": ...}`` exactly as signed. Written atomically (a private temporary
  file, fsync, then ``link`` to its name, which never replaces an existing file, then fsync of the
  directory), directory 0700 and files 0600, every step through a directory descriptor with
  ``O_NOFOLLOW``; the path may not have a ``..`` component nor a symbolic link anywhere in it (the export
  paths' rules, docs/tests.md A-6). ``openkms audit verify --anchor-dir`` reads it back.
- **syslog**: one line per digest (its seq, covered records, head hash and the hash that the next digest
  chains to), for a log host to keep; compare it with ``audit verify --json``'s ``newestDigest``.

A file that already exists with other contents is never replaced: the database's digests were rolled back
and re-signed over, which is logged as an error and later named by the verifier.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from openkms.audit.digests import digest_hash
from openkms.storage.audit import DigestRow
from openkms.storage.ports import Storage

PREFIX = "digest-"
SUFFIX = ".json"
SEQ_DIGITS = 12
DIR_MODE = 0o700
FILE_MODE = 0o600
DEFAULT_SYSLOG_ADDRESS = "/dev/log"
SYSLOG_PORT = 514
CATCH_UP_PAGE = 1000
CATCH_UP_PAGES = 10  # per pass: a new anchor on a long trail fills over a few passes, never stalling one
MAX_FILE_BYTES = 64 * 1024  # a digest file is about 700 bytes; anything far larger is not one
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_log = logging.getLogger("openkms.audit.anchor")


class AnchorError(Exception):
    """An anchor that cannot be used as given; the message says why and what to do."""


# ---- file names and contents ---------------------------------------------------------------------------------


def file_name(digest_seq: int) -> str:
    return f"{PREFIX}{digest_seq:0{SEQ_DIGITS}d}{SUFFIX}"


def parse_file_name(name: str) -> int | None:
    """The digest seq a file name stands for, or None if it is not a digest file's name."""
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    digits = name[len(PREFIX) : -len(SUFFIX)]
    if len(digits) != SEQ_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


def file_text(digest: DigestRow) -> str:
    return json.dumps({"body": digest.body, "signature": digest.signature}, sort_keys=True) + "\n"


def from_file_text(text: str) -> DigestRow:
    """The digest a file holds; its seq and coverage are read from the signed body (the verifier checks the
    signature). Raises ValueError if the text is not a digest file."""
    item = json.loads(text)
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("body", "signature")):
        raise ValueError("not an anchored digest")
    body = json.loads(item["body"])
    if not isinstance(body, dict):
        raise ValueError("the digest body is not a JSON object")
    return DigestRow(
        int(body["digestSeq"]),
        int(body["fromSeq"]),
        int(body["toSeq"]),
        float(body["periodEnd"]),
        item["body"],
        item["signature"],
    )


def summary_line(digest: DigestRow, chain_hash: str) -> str:
    """The syslog line for ``digest``; ``chain_hash`` is what the next digest's previousDigestHash will be."""
    body = json.loads(digest.body)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(digest.period_end))
    return (
        f"openkms audit digest digestSeq={digest.digest_seq} fromSeq={digest.from_seq} toSeq={digest.to_seq} "
        f"periodEnd={when} headHash={body.get('headHash')} digestHash={chain_hash} "
        f"signingKeyId={body.get('signingKeyId')}"
    )


# ---- the directory -------------------------------------------------------------------------------------------


def _components(path: Path) -> tuple[str, ...]:
    text = str(path)
    if not text or "\x00" in text:
        raise AnchorError("the anchor directory name is empty or holds a NUL character")
    if ".." in PurePosixPath(text).parts:
        raise AnchorError(f"the anchor directory {text!r} has a '..' component: give its real, absolute path")
    absolute = PurePosixPath(os.path.abspath(text))
    return tuple(part for part in absolute.parts[1:] if part not in ("", "."))


def open_directory(path: Path, *, create: bool) -> int:
    """A descriptor of the anchor directory ``path``, reached from ``/`` with ``O_NOFOLLOW`` at every step
    (a symbolic link anywhere in the path is refused). With ``create`` (the server), the last component is
    made 0700 if missing and must be the caller's own and private; without it (the verifier), it is only
    opened."""
    parts = _components(path)
    shown = Path("/")
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            shown = shown / part
            if create and index == len(parts) - 1:
                try:
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise AnchorError(f"cannot create the anchor directory {shown}: {exc.strerror}") from None
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if _is_link(fd, part):
                    raise AnchorError(
                        f"{shown} is a symbolic link: give the anchor directory's real path (no link in it)"
                    ) from None
                raise AnchorError(f"cannot open the anchor directory {shown}: {exc.strerror}") from None
            os.close(fd)
            fd = child
        if create:
            _check_private(fd, shown)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _is_link(parent_fd: int, part: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(part, dir_fd=parent_fd).st_mode)
    except OSError:
        return False


def _check_private(fd: int, shown: Path) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        owner = "" if info.st_uid == os.geteuid() else " and another owner"
        raise AnchorError(
            f"the anchor directory {shown} has mode {mode:04o}{owner}: it must be a directory only this service's "
            f"user can read and write (chmod 700 {shown})"
        )


def newest_in(dir_fd: int) -> int:
    """The highest digest seq with a file in the directory (0 if none)."""
    return max((seq for seq in map(parse_file_name, os.listdir(dir_fd)) if seq is not None), default=0)


class Delivered:
    WRITTEN = "written"
    PRESENT = "present"  # the same digest was there already (another node, or a retry)
    CONFLICT = "conflict"  # another digest of that seq was there: the database's digests were rolled back


class DirectorySink:
    """Writes each digest as its own file, atomically, never over another."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"anchor directory {path}"
        self._fd = open_directory(path, create=True)

    def start_after(self, db_newest: int) -> int:
        """Digests after the returned seq are delivered: everything after the newest file (catch-up after a
        crash or an outage), or, for an empty directory, from the database's newest digest on."""
        newest = newest_in(self._fd)
        return newest if newest else max(0, db_newest - 1)

    def deliver(self, digest: DigestRow) -> str:
        name = file_name(digest.digest_seq)
        data = file_text(digest).encode("utf-8")
        temp = f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        fd = os.open(temp, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=self._fd)
        try:
            try:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd, follow_symlinks=False)
            except FileExistsError:
                return Delivered.PRESENT if self._holds(name, data) else Delivered.CONFLICT
        finally:
            os.unlink(temp, dir_fd=self._fd)
        os.fsync(self._fd)
        return Delivered.WRITTEN

    def _holds(self, name: str, data: bytes) -> bool:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self._fd)
        except OSError:
            return False
        try:
            return os.read(fd, MAX_FILE_BYTES) == data
        finally:
            os.close(fd)

    def close(self) -> None:
        os.close(self._fd)


@dataclass(slots=True)
class AnchoredFiles:
    """What an anchor directory holds, read back for the verifier."""

    path: Path
    digests: list[DigestRow] = field(default_factory=list)  # in digest order; signatures not yet checked
    problems: list[str] = field(default_factory=list)  # files that are not intact digest files


def read_directory(path: Path) -> AnchoredFiles:
    """Every digest file of the anchor directory ``path``; raises :class:`AnchorError` if it cannot be read."""
    fd = open_directory(path, create=False)
    found = AnchoredFiles(path)
    try:
        names = sorted((seq, name) for name in os.listdir(fd) if (seq := parse_file_name(name)) is not None)
        for seq, name in names:
            try:
                file_fd = os.open(name, _READ_FLAGS, dir_fd=fd)
            except OSError as exc:
                kind = "a symbolic link" if _is_link(fd, name) else exc.strerror
                found.problems.append(f"anchor file {name}: cannot be read ({kind})")
                continue
            try:
                if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                    found.problems.append(f"anchor file {name}: not a regular file")
                    continue
                raw = os.read(file_fd, MAX_FILE_BYTES + 1)
            finally:
                os.close(file_fd)
            try:
                digest = from_file_text(raw.decode("utf-8"))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                found.problems.append(f"anchor file {name}: not an anchored digest (edited)")
                continue
            if digest.digest_seq != seq:
                found.problems.append(f"anchor file {name}: holds digest {digest.digest_seq} (renamed)")
                continue
            found.digests.append(digest)
    finally:
        os.close(fd)
    return found


# ---- syslog --------------------------------------------------------------------------------------------------


class _Handler(logging.handlers.SysLogHandler):
    """Raises instead of printing a traceback, so a failed delivery is retried, not forgotten."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        raise OSError("syslog delivery failed")


def parse_syslog_address(text: str) -> str | tuple[str, int]:
    """``/dev/log`` (a local socket path) or ``host[:port]`` (UDP, port 514 by default)."""
    value = text.strip()
    if not value or "\x00" in value:
        raise AnchorError("the syslog address is empty")
    if value.startswith("/"):
        return value
    if value.startswith("["):  # [IPv6]:port
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:  # a host name, IPv4 or bare IPv6 address
        host, port = value, ""
    if not port and host:
        return (host, SYSLOG_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise AnchorError(f"the syslog address {text!r} is not a socket path or host:port")
    return (host, int(port))


def _probe_unix_socket(path: str) -> None:
    """Connect to the local syslog socket once (datagram, as syslogd listens, else stream); raises OSError."""
    failure: OSError | None = None
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(path)
                return
            except OSError as exc:
                failure = failure or exc
    assert failure is not None
    raise failure


class SyslogSink:
    """One summary line per digest to syslog (facility authpriv, as for other security events)."""

    def __init__(self, address: str) -> None:
        self.name = f"syslog {address}"
        parsed = parse_syslog_address(address)
        try:
            if isinstance(parsed, str):
                _probe_unix_socket(parsed)  # the handler would ignore a missing socket until the first line
            self._handler = _Handler(address=parsed, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV)
        except OSError as exc:
            raise AnchorError(f"cannot reach syslog at {address}: {exc.strerror or exc}") from None
        self._handler.ident = "openkms: "

    def start_after(self, db_newest: int) -> int:
        return max(0, db_newest - 1)  # the head at start, then every new digest

    def deliver(self, digest: DigestRow) -> str:
        record = logging.LogRecord(_log.name, logging.INFO, __file__, 0, "%s", None, None)
        record.msg = summary_line(digest, digest_hash(digest))
        self._handler.emit(record)
        return Delivered.WRITTEN

    def close(self) -> None:
        self._handler.close()


# ---- delivery ------------------------------------------------------------------------------------------------


class Sink(Protocol):
    name: str

    def start_after(self, db_newest: int) -> int: ...
    def deliver(self, digest: DigestRow) -> str: ...
    def close(self) -> None: ...


class Anchor:
    """Delivers the database's digests to every sink, in order, each sink from where it stands. Runs in the
    maintenance pass (one thread per node), after a digest is signed; a sink that fails is retried at the
    next pass from the digest it missed."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self._after: list[int | None] = [None] * len(self.sinks)

    def deliver(self, storage: Storage, signed: DigestRow | None = None) -> int:
        """Deliver what each sink lacks (and ``signed``, the digest this pass signed, even if a sink is past its
        seq: that is a rollback, and the sink must say so). Returns how many deliveries were made."""
        if not self.sinks:
            return 0
        if any(after is None for after in self._after):
            with storage.read() as tx:
                last = tx.last_digest()
            db_newest = last.digest_seq if last is not None else 0
            pairs = zip(self.sinks, self._after, strict=True)
            self._after = [sink.start_after(db_newest) if after is None else after for sink, after in pairs]
        done = 0
        if signed is not None:
            for index, sink in enumerate(self.sinks):
                after = self._after[index]
                if after is not None and signed.digest_seq <= after:
                    done += self._one(index, sink, signed)
        cursor = min(a for a in self._after if a is not None)
        for _ in range(CATCH_UP_PAGES):
            with storage.read() as tx:
                page = tx.list_digests(cursor, CATCH_UP_PAGE)
            for digest in page:
                for index, sink in enumerate(self.sinks):
                    after = self._after[index]
                    if after is not None and digest.digest_seq == after + 1:
                        done += self._one(index, sink, digest)
            if len(page) < CATCH_UP_PAGE:
                break
            cursor = page[-1].digest_seq
        return done

    def _one(self, index: int, sink: Sink, digest: DigestRow) -> int:
        try:
            outcome = sink.deliver(digest)
        except OSError as exc:
            _log.error(
                "cannot deliver audit digest %d to the %s (%s); retrying at the next pass",
                digest.digest_seq,
                sink.name,
                exc.strerror or type(exc).__name__,
            )
            return 0
        if outcome == Delivered.CONFLICT:
            _log.error(
                "the %s already holds another digest %d: the database's digests were rolled back and signed "
                "over (run `openkms audit verify --anchor-dir`)",
                sink.name,
                digest.digest_seq,
            )
        after = self._after[index]
        self._after[index] = max(after or 0, digest.digest_seq)
        return 1

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def open_sinks(directory: Path | None, syslog_address: str | None) -> Anchor | None:
    """The configured sinks (None when none is); raises :class:`AnchorError` for one that cannot be used."""
    sinks: list[Sink] = []
    try:
        if directory is not None:
            sinks.append(DirectorySink(directory))
        if syslog_address is not None:
            sinks.append(SyslogSink(syslog_address))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return Anchor(sinks) if sinks else None


def check_sinks(directory: Path | None, syslog_address: str | None) -> None:
    """Open and close the sinks once: a start with an unusable anchor is refused before anything runs."""
    anchor = open_sinks(directory, syslog_address)
    if anchor is not None:
        anchor.close()
