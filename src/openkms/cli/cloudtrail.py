"""CloudTrail delivery files for ``openkms audit export --format cloudtrail``.

CloudTrail delivers gzip files of ``{"Records": [...]}`` named
``<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique>.json.gz``; tools that read CloudTrail read these. The
records are the stored events as they are (no hashes: the JSON-lines export is the verifiable one).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from typing import IO

from openkms.cli.exports import NewFiles
from openkms.crypto.rand import random_bytes

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def file_name(account: str, region: str, hour: int) -> str:
    """The name of a delivery for the UTC hour ``hour`` (hours since the epoch), with a random suffix."""
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(hour * 3600))
    suffix = "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in random_bytes(16))
    return f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"


class HourFiles:
    """CloudTrail delivery files: one gzip ``{"Records": [...]}`` per account, region and UTC hour.

    Records arrive in seq order, which is time order give or take the moments between a request and its
    commit; a file is closed once the stream is two hours past it. A record that is later still starts a
    second file for its hour, as CloudTrail itself delivers several files per hour.
    """

    def __init__(self, directory: NewFiles) -> None:
        self._directory = directory
        self._open: dict[tuple[str, str, int], tuple[gzip.GzipFile, IO[bytes], int]] = {}
        self.files: list[str] = []

    def add(self, account: str, region: str, hour: int, event_text: str) -> None:
        slot = (account, region, hour)
        entry = self._open.get(slot)
        if entry is None:
            self._close(lambda other: other[2] < hour - 1)
            name = file_name(account, region, hour)
            raw = self._directory.create(name)
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=hour * 3600)
            gz.write(b'{"Records":[')
            entry = (gz, raw, 0)
            self.files.append(name)
        gz, raw, count = entry
        gz.write((b"," if count else b"") + event_text.encode("utf-8"))
        self._open[slot] = (gz, raw, count + 1)

    def _close(self, which: Callable[[tuple[str, str, int]], bool]) -> None:
        for slot in [s for s in self._open if which(s)]:
            gz, raw, _ = self._open.pop(slot)
            gz.write(b"]}")
            gz.close()
            raw.close()

    def close(self) -> None:
        self._close(lambda _slot: True)
