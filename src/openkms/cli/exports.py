"""Where ``openkms audit export`` may write: inside ``<data-dir>/exports/`` and nowhere else (docs/tests.md A-6).

An export sink that takes any path is a way to write files as the service's user wherever that user can
(CVE-2025-6000: Vault's audit file sink became code execution). So an output name is refused, with
``ValidationException`` and exit 2, before anything is written, when it

- is absolute and not inside the exports directory, or has a ``..`` component;
- crosses a symbolic link anywhere below the data directory (the exports directory itself, a subdirectory,
  or the file), or names a file that already exists (exports never overwrite);
- lies in a directory that the group or others may read or write (the exports directory and every
  subdirectory must be 0700 and the caller's own).

New directories are created 0700 and files 0600. Every step below the data directory goes through a
directory descriptor with ``O_NOFOLLOW`` (``openat``), so a link swapped in after the checks is refused too
rather than followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from openkms.cli.common import CliValidationError

EXPORTS_DIR = "exports"
DIR_MODE = 0o700
FILE_MODE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def exports_dir(data_dir: Path) -> Path:
    return data_dir / EXPORTS_DIR


def relative_name(data_dir: Path, name: str) -> tuple[str, ...]:
    """The components of ``name`` below the exports directory, or a refusal that says why."""
    where = exports_dir(data_dir)
    if not name or "\x00" in name:
        raise CliValidationError("the output name is empty or holds a NUL character")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise CliValidationError(f"the output name {name!r} has a '..' component; names stay inside {where}/")
    if path.is_absolute():
        base = PurePosixPath(where)
        if path != base and base not in path.parents:
            raise CliValidationError(
                f"{name} is outside {where}/: exports are written only there (give a name relative to it)"
            )
        path = path.relative_to(base)
    parts = tuple(part for part in path.parts if part not in ("", "."))
    if not parts:
        raise CliValidationError(f"the output name {name!r} names no file inside {where}/")
    return parts


def _refuse_if_link(parent_fd: int, part: str, shown: Path) -> None:
    try:
        info = os.lstat(part, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise CliValidationError(f"{shown} is a symbolic link; exports never follow links")


def _open_private_dir(parent_fd: int, part: str, shown: Path) -> int:
    """Open (creating it 0700 if missing) the directory ``part`` of ``parent_fd``; refuse links and loose modes."""
    _refuse_if_link(parent_fd, part, shown)
    try:
        os.mkdir(part, DIR_MODE, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        fd = os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise CliValidationError(f"{shown} is not a directory (or is a symbolic link)") from None
        raise CliValidationError(f"cannot open {shown}: {exc.strerror}") from None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        os.close(fd)
        mode = stat.S_IMODE(info.st_mode)
        raise CliValidationError(
            f"{shown} has mode {mode:04o}{'' if info.st_uid == os.geteuid() else ' and another owner'}: exports"
            f" need a directory only you can read and write (chmod 700 {shown})"
        )
    return fd


@contextmanager
def _directory(data_dir: Path, parts: tuple[str, ...]) -> Iterator[tuple[int, Path]]:
    """A descriptor of the directory ``exports/<parts...>`` (created as needed) and its path, for messages."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = data_dir
    try:
        for part in (EXPORTS_DIR, *parts):
            shown = shown / part
            child = _open_private_dir(fd, part, shown)
            os.close(fd)
            fd = child
        yield fd, shown
    finally:
        os.close(fd)


def _create(parent_fd: int, part: str, shown: Path) -> int:
    _refuse_if_link(parent_fd, part, shown)
    try:
        return os.open(part, _FILE_FLAGS, FILE_MODE, dir_fd=parent_fd)
    except FileExistsError:
        raise CliValidationError(f"{shown} already exists; exports never overwrite (choose another name)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CliValidationError(f"{shown} is a symbolic link; exports never follow links") from None
        raise CliValidationError(f"cannot create {shown}: {exc.strerror}") from None


@contextmanager
def new_file(data_dir: Path, name: str) -> Iterator[tuple[IO[bytes], Path]]:
    """A new 0600 file ``exports/<name>`` open for writing, and its path; removed again if writing fails."""
    parts = relative_name(data_dir, name)
    with _directory(data_dir, parts[:-1]) as (dir_fd, shown):
        path = shown / parts[-1]
        stream = os.fdopen(_create(dir_fd, parts[-1], path), "wb")
        try:
            with stream:
                yield stream, path
        except BaseException:  # interrupted or failed: leave no half export that looks whole
            os.unlink(parts[-1], dir_fd=dir_fd)
            raise


class NewFiles:
    """Creates new 0600 files in one directory ``exports/<name>`` (made 0700 if missing)."""

    def __init__(self, dir_fd: int, path: Path) -> None:
        self._dir_fd = dir_fd
        self.path = path

    def create(self, file_name: str) -> IO[bytes]:
        if "/" in file_name or file_name in ("", ".", ".."):
            raise ValueError(f"not a file name: {file_name!r}")
        return os.fdopen(_create(self._dir_fd, file_name, self.path / file_name), "wb")


@contextmanager
def new_directory(data_dir: Path, name: str) -> Iterator[NewFiles]:
    """The directory ``exports/<name>`` (created 0700 if missing), to create new files in."""
    with _directory(data_dir, relative_name(data_dir, name)) as (dir_fd, shown):
        yield NewFiles(dir_fd, shown)
