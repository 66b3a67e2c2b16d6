"""Every regular expression in ``src/`` is listed here, and none backtracks badly (issue 15: "no backtracking regex
on untrusted input").

A new ``re`` use fails :func:`test_every_regex_use_is_listed` until it is added below with where its input comes
from; every constant pattern is then run against adversarial strings of 20,000 characters, and must answer in
time linear in them. Patterns built at run time say how they are kept linear.
"""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "openkms"
_CALLS = {"compile", "match", "search", "fullmatch", "sub", "subn", "findall", "finditer", "split"}

# Patterns made at run time, and why each stays linear.
DYNAMIC = {
    "server/validate.py": "botocore's model patterns, all anchored; test_model_patterns_are_linear runs them",
    "policy/patterns.py": "fixed-width pieces (literals and '.') with no quantifier: linear by construction",
    "console/app.py": "route table built from constant patterns at import; matched against the request path",
    "storage/migrate.py": "migration file names from the package, never request data",
    "cli/audit.py": "operator input on the command line",
    "policy/document.py": "principal ARNs, built from one-segment pieces: test_principal_arns_are_matched_...",
}


def _constant(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _regex_uses() -> list[tuple[str, str | None, bool]]:
    """(module, constant pattern or None if made at run time, whether it is searched) for every ``re`` use.

    "Searched" (``search``, ``sub``, ``findall``, ...) tries every start position, so it is held to the same
    bound on a whole adversarial string; ``match``/``fullmatch`` start at one.
    """
    uses: list[tuple[str, str | None, bool]] = []
    for path in sorted(SRC.rglob("*.py")):
        module = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text(), str(path))
        compiled: dict[str, str | None] = {}
        searched: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
                call, target = node.value, node.targets[0]
                if (
                    isinstance(target, ast.Name)
                    and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "re"
                    and call.func.attr == "compile"
                ):
                    compiled[target.id] = _constant(call.args[0])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner, method = node.func.value, node.func.attr
                if isinstance(owner, ast.Name) and method in _CALLS - {"compile", "match", "fullmatch"}:
                    searched.add(owner.id)
                if (
                    isinstance(owner, ast.Name)
                    and owner.id == "re"
                    and method in _CALLS
                    and node.args
                    and not isinstance(node, ast.Assign)
                ):
                    pattern = _constant(node.args[0])
                    if method != "compile":
                        uses.append((module, pattern, method not in ("match", "fullmatch")))
                    elif pattern is None:
                        uses.append((module, None, False))
        uses += [(module, pattern, name in searched) for name, pattern in compiled.items() if pattern is not None]
    return uses


def test_every_regex_use_is_listed() -> None:
    dynamic = sorted({module for module, pattern, _ in _regex_uses() if pattern is None} - set(DYNAMIC))
    assert not dynamic, f"a pattern made at run time needs a line in DYNAMIC saying why it is linear: {dynamic}"


def _adversarial() -> list[str]:
    pieces = ["a", "a-", "a/", "a:", "-", "1", " ", "A", "aA1_-./:@=", '\\"', "ab", "/kms"]
    size = 20_000
    return [(piece * (size // len(piece)))[:size] + tail for piece in pieces for tail in ("", "!", "\x00", "\n")]


def _worst_seconds(regex: re.Pattern[str], inputs: list[str], searched: bool) -> float:
    worst = 0.0
    for text in inputs:
        for method in (regex.fullmatch, regex.match, *([regex.search] if searched else [])):
            started = time.perf_counter()
            method(text)
            worst = max(worst, time.perf_counter() - started)
    return worst


@pytest.mark.parametrize(
    ("module", "pattern", "searched"),
    sorted({use for use in _regex_uses() if use[1] is not None}, key=str),
    ids=lambda v: str(v)[:40],
)
def test_constant_patterns_are_linear(module: str, pattern: str, searched: bool) -> None:
    assert _worst_seconds(re.compile(pattern), _adversarial(), searched) < 0.25, (module, pattern)


def test_principal_arns_are_matched_in_linear_time() -> None:
    """policy/document.py builds this one from pieces; an assumed-role name of many slashes must not backtrack."""
    from openkms.policy.document import _PRINCIPAL_ARN_RE

    texts = [
        f"arn:aws:sts::111122223333:assumed-role/{'a/' * 10_000}*",
        f"arn:aws:iam::111122223333:user/{'a/' * 10_000}*",
    ]
    assert _worst_seconds(_PRINCIPAL_ARN_RE, texts, searched=False) < 0.25


def test_model_patterns_are_linear() -> None:
    """The patterns botocore's KMS model puts on request strings, compiled as server/validate.py compiles them."""
    import botocore.session

    from openkms.server.validate import _java_regex

    model = botocore.session.get_session().get_service_model("kms")
    patterns = {model.shape_for(name).metadata.get("pattern") for name in model.shape_names} - {None}
    assert patterns
    for pattern in sorted(str(p) for p in patterns):
        assert _worst_seconds(_java_regex(pattern), _adversarial(), searched=False) < 0.25, pattern
