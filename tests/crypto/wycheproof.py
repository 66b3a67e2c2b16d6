"""The machinery of docs/tests.md C-1 shared by the Wycheproof test modules: where the vectors are, how a file is
read, how a verdict is compared with a vector's (``acceptable`` through a recorded decision), and the per-file
tally printed as the C-1 report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WYCHEPROOF = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"  # vendored: tests/vectors/README.md

Vectors = list[tuple[dict[str, Any], dict[str, Any]]]


@dataclass
class Tally:
    """One row of the C-1 report."""

    run: int = 0
    failures: list[str] = field(default_factory=list)
    acceptable_accepted: int = 0
    acceptable_rejected: int = 0
    rejected_by_design: int = 0
    not_applicable: int = 0

    def row(self, name: str, width: int, *, not_applicable: bool) -> str:
        row = (
            f"{name:{width}} run={self.run:4} failed={len(self.failures)}"
            f" acceptable-accepted={self.acceptable_accepted} acceptable-rejected={self.acceptable_rejected}"
            f" rejected-by-design={self.rejected_by_design}"
        )
        return f"{row} not-applicable={self.not_applicable}" if not_applicable else row


@dataclass
class Summary:
    """One test module's C-1 report: a row per file, printed by the module's fixture when the module ends."""

    title: str
    width: int  # of the file-name column
    not_applicable: bool = False  # whether the rows carry the not-applicable count
    tallies: dict[str, Tally] = field(default_factory=dict)

    def finish(self, name: str, tally: Tally) -> None:
        """Record the file's row and fail on any mismatch (the first 20 shown)."""
        self.tallies[name] = tally
        assert tally.run > 0
        assert not tally.failures, "\n".join(tally.failures[:20])

    def report(self) -> None:
        print(f"\n{self.title}")
        for name in sorted(self.tallies):
            print(self.tallies[name].row(name, self.width, not_applicable=self.not_applicable))
        assert all(tally.run > 0 for tally in self.tallies.values())


def load(name: str) -> Vectors:
    """Every (group, test) of one file; a missing file fails (the vectors ship with the repository)."""
    path = WYCHEPROOF / name
    assert path.is_file(), f"Wycheproof vector file missing: {path}"
    data = json.loads(path.read_text("utf-8"))
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def accepts(error: type[Exception], call: Callable[..., object], *args: object) -> bool:
    """True if ``call`` returns, False if it raises ``error``; any other exception fails the test."""
    try:
        call(*args)
    except error:
        return False
    return True


def expect(tally: Tally, decisions: Mapping[str, bool], test: dict[str, Any], accepted: bool) -> None:
    """Compare our verdict with the vector's; an ``acceptable`` vector needs exactly one recorded decision among
    its flags (``decisions``: flag -> must accept)."""
    result = test["result"]
    tc = f"tcId {test['tcId']}"
    if result == "acceptable":
        wants = {decisions[flag] for flag in test["flags"] if flag in decisions}
        if len(wants) != 1:
            tally.failures.append(f"{tc}: acceptable with flags {test['flags']} has no single recorded decision")
            return
        want = wants.pop()
        if accepted != want:
            tally.failures.append(f"{tc}: acceptable {test['flags']}: decision {want}, wrapper {accepted}")
        tally.acceptable_accepted += accepted
        tally.acceptable_rejected += not accepted
    elif accepted != (result == "valid"):
        tally.failures.append(f"{tc}: expected {result}, wrapper {'accepted' if accepted else 'rejected'}")
