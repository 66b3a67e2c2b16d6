"""What the CLI subcommands share: opening the data directory, obtaining the root key, printing."""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import os
import re
import stat
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openkms.seal import keyfile
from openkms.seal.base import UnsealError
from openkms.seal.root_key import seal_kind, unseal_root_key
from openkms.settings import default_data_dir, default_database_url
from openkms.storage.factory import open_storage, sqlite_file
from openkms.storage.migrate import latest_version
from openkms.storage.ports import Storage

HELP_WIDTH = 100  # descriptions are wrapped here: the raw formatter keeps the examples' layout but wraps nothing
PASSPHRASE_ENV = "OPENKMS_UNSEAL_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit code 1 (2 for usage errors)."""

    exit_code = 1

    def render(self) -> str:
        return f"openkms: {self}"


class CliValidationError(CliError):
    """A refused argument value (a path outside the exports directory, an unknown operation name...).

    Printed as AWS names the error (``ValidationException: ...``) and, like argparse's usage errors, exit 2:
    nothing was done.
    """

    exit_code = 2

    def render(self) -> str:
        return f"ValidationException: {self}"


def add_storage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default ./openkms-data)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///path or postgresql://... (default: SQLite in the data directory; env OPENKMS_DATABASE_URL)",
    )


def add_subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    group: str,
    name: str,
    help_text: str,
    details: str,
    *examples: str,
) -> argparse.ArgumentParser:
    """``openkms GROUP NAME``: its one-line help, a description that starts with it, its examples, and the
    storage arguments every such command takes."""
    parser = commands.add_parser(
        name,
        help=help_text,
        description=textwrap.fill(help_text[0].upper() + help_text[1:] + ". " + details, width=HELP_WIDTH),
        epilog="examples:\n" + "\n".join(f"  openkms {group} {name} {example}".rstrip() for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_storage_arguments(parser)
    return parser


def resolve_paths(args: argparse.Namespace) -> tuple[Path, str]:
    data_dir: Path = (args.data_dir or default_data_dir()).resolve()
    url: str = args.database_url or default_database_url(data_dir)
    return data_dir, url


def only_account(storage: Storage, given: str | None) -> str:
    """``given`` (``--account-id``), or the only account there is."""
    if given:
        return given
    with storage.read() as tx:
        accounts = tx.list_accounts()
    if len(accounts) != 1:
        raise CliError("several accounts exist: give --account-id" if accounts else "no account exists yet")
    return accounts[0]


class CliNotFoundError(CliError):
    """What the command names does not exist: printed as AWS names it (``NotFoundException: ...``), exit 1."""

    def render(self) -> str:
        return f"NotFoundException: {self}"


def open_existing(url: str, *, any_schema: bool = False) -> Storage:
    """The database ``openkms init`` or ``serve`` made, never a new one, for the read-only commands: a mistyped
    ``--data-dir`` must not leave an empty database behind and report "no keys". The schema is left alone (the
    factory's rule); one of another release is refused unless ``any_schema`` (``status`` reports it)."""
    database_file = sqlite_file(url)
    if database_file is not None and not Path(database_file).is_file():
        raise CliError(f"no openkms database at {database_file}: give --data-dir or --database-url")
    storage = open_storage(url)
    try:
        found, latest = storage.schema_version(), latest_version(storage.dialect)
        if found == 0:
            raise CliError(f"no openkms database at {redact_url(url)}: run `openkms init` or `openkms serve` first")
        if found != latest and not any_schema:
            raise CliError(
                f"the database schema is version {found}, this openkms reads version {latest}: start this "
                "release's `openkms serve` once to migrate it"
                if found < latest
                else f"the database schema is version {found}, written by a newer openkms: use that release"
            )
    except BaseException:
        storage.close()
        raise
    return storage


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and ``openkms status``."""
    without_userinfo = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", without_userinfo)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """``value`` as text a terminal shows as it is: control characters (escape sequences a record's user agent
    or description could carry) become visible ``\\xNN`` escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def open_migrated(url: str, data_dir: Path) -> Storage:
    if url.startswith("sqlite") or "://" not in url:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    storage = open_storage(url)
    storage.migrate()
    return storage


def read_secret_file(path: Path, what: str = "passphrase") -> str:
    """The text of a secret file (a passphrase, the dev secret), without its final newline.

    Refused with exit 2 if the group or others have any access to it, as ssh refuses a private key: whoever
    can read an unseal passphrase can decrypt every key. The mode is read from the opened file, so a file
    swapped after the check is not read. Pipes (``<(...)``) and other non-regular files are taken as they are.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CliError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            raise CliValidationError(
                f"the {what} file {path} has mode {stat.S_IMODE(info.st_mode):04o}: it must not be accessible by "
                f"group or others (chmod 600 {path})"
            )
        try:
            return stream.read().decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            raise CliError(f"the {what} file {path} is not UTF-8 text") from None


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False, env: str = PASSPHRASE_ENV) -> str:
    """From a file (which only its owner may read: :func:`read_secret_file`), then the environment, then a
    prompt (a prompt needs a terminal)."""
    if passphrase_file is not None:
        return read_secret_file(passphrase_file)
    from_env = os.environ.get(env)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CliError(f"no passphrase: give --passphrase-file, set {env}, or run on a terminal")
    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise CliError("the passphrases differ")
    return first


def root_key_for_admin(storage: Storage, data_dir: Path, passphrase_file: Path | None) -> bytes:
    """Admin commands that write secrets need the root key: key file in dev mode, else the passphrase."""
    kind = seal_kind(storage)
    if kind is None:
        raise CliError("this database is not initialised: run `openkms init` or `openkms serve --dev`")
    try:
        if kind == keyfile.KIND:
            return unseal_root_key(storage, keyfile_path=data_dir / keyfile.KEYFILE_NAME)
        return unseal_root_key(storage, secret=read_passphrase(passphrase_file))
    except UnsealError as exc:
        raise CliError(str(exc)) from None


def root_key_for_change(storage: Storage, data_dir: Path, passphrase_file: Path | None) -> bytes | None:
    """What every identity change through ``openkms iam`` must show: the root key, read as
    :func:`root_key_for_admin` reads it (the key file of a dev install, else the passphrase), so that changing
    identities takes what unsealing takes. None for a database no ``init`` or ``serve`` has initialised yet:
    there is no root key to show (docs/iam.md, "Who may change identities")."""
    if seal_kind(storage) is None:
        return None
    return root_key_for_admin(storage, data_dir, passphrase_file)


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, single: bool = False) -> None:
    """A readable table by default; ``--json`` for scripts."""
    if as_json:
        print(json.dumps(rows[0] if single and rows else list(rows), indent=2, default=str))
        return
    cells = [[printable(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def emit_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """One ``Label  value`` line per field, the values aligned: a single record, readable."""
    width = max((len(label) for label, _ in fields), default=0)
    for label, value in fields:
        print(f"{label.ljust(width)}  {printable(value)}".rstrip())


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float) -> float:
    """Epoch seconds from ISO-8601 (``2026-11-28``, ``2026-11-28T10:00:00Z``, with or without an offset; UTC
    when none is given) or from a relative age (``90s``, ``30m``, ``24h``, ``7d``, ``2w``: that long before
    ``now``). Raises :class:`CliValidationError` with an example of both forms."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return now - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise CliValidationError(
            f"{text!r} is not a time: give ISO-8601 (2026-11-28 or 2026-11-28T10:00:00Z) or an age (24h, 7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


PROGRESS_INTERVAL = 0.2  # seconds between redraws


class Progress:
    """One self-overwriting line on stderr, only when stderr is a terminal (pipes and logs stay clean)."""

    def __init__(self, what: str, total: int | None = None) -> None:
        self._what = what
        self._total = total
        self._interval = PROGRESS_INTERVAL
        self._shown = 0.0
        self._active = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self._active:
            return
        now = time.monotonic()
        if now - self._shown < self._interval:
            return
        self._shown = now
        of = f" of {self._total:,}" if self._total else ""
        share = f" ({100 * done / self._total:.0f}%)" if self._total else ""
        sys.stderr.write(f"\r{self._what}: {done:,}{of}{share}\x1b[K")
        sys.stderr.flush()

    def finish(self) -> None:
        if self._active and self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
