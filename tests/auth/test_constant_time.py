"""C-5 (a): secrets, MACs, tags, signatures and tokens are compared with ``hmac.compare_digest``, never ``==``.

The rule, applied to every ``==``/``!=`` in ``src/openkms``: an operand is *named* by its variable (``Name``),
attribute (``x.attr``), called function (``f(...)``, ``x.f(...)``) or string subscript (``x["secret"]``). The name
is split into snake_case/camelCase words; it is *sensitive* when one word is ``signature``, ``mac``, ``hmac``, ``tag``,
``secret`` or ``token`` (whole words, so ``machine``, ``stage`` or ``tags`` do not count), unless

- it is a resource-tag field (``tag_key``, ``tag_value`` and plurals), or
- its last word says it is metadata, not the value (``TAG_SIZE``, ``mac_algorithm``, ``token_count``, ``secret_id``).

A comparison with a sensitive operand is a hit unless the other side is ``None``, a bool or number, an empty
string/bytes literal or a ``len(...)`` call: those leak nothing worth timing. Known gaps, by design of a cheap
check: ``in`` tests and comparisons of unnamed expressions (``a.hexdigest() == b``) are not seen, which is why
C-5 (b) measures timing too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "openkms"
SENSITIVE_WORDS = frozenset({"signature", "mac", "hmac", "tag", "secret", "token"})
RESOURCE_TAG_NAMES = frozenset({"tag_key", "tag_keys", "tag_value", "tag_values"})
METADATA_WORDS = frozenset(
    {
        "algorithm",
        "algorithms",
        "count",
        "format",
        "id",
        "ids",
        "kind",
        "len",
        "length",
        "limit",
        "mode",
        "name",
        "names",
        "prefix",
        "size",
        "spec",
        "state",
        "status",
        "type",
        "version",
    }
)
# (path under src/openkms, ast.unparse of the comparison) -> why it is tolerated. Keep it empty if you can; an entry
# that no longer matches fails the suite, so fixing the code forces the entry out.
ALLOWED: dict[tuple[str, str], str] = {}


def words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word for word in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if word]


def operand_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return operand_name(node.func)
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value
        return operand_name(node.value)
    return None


def is_sensitive(name: str) -> bool:
    parts = words(name)
    if not SENSITIVE_WORDS.intersection(parts) or "_".join(parts) in RESOURCE_TAG_NAMES:
        return False
    return parts[-1] not in METADATA_WORDS


def is_harmless(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        value = node.value
        return value is None or isinstance(value, (bool, int, float)) or value in ("", b"")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def hits(source: str) -> list[tuple[int, str]]:
    """Comparisons in ``source`` that break the rule, as (line, unparsed comparison)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, (ast.Eq, ast.NotEq)):
                continue
            for mine, other in ((left, right), (right, left)):
                name = operand_name(mine)
                if name is not None and is_sensitive(name) and not is_harmless(other):
                    found.append((node.lineno, ast.unparse(node)))
                    break
    return found


def scan_tree() -> list[tuple[str, int, str]]:
    return [
        (path.relative_to(SRC).as_posix(), line, text)
        for path in sorted(SRC.rglob("*.py"))
        for line, text in hits(path.read_text(encoding="utf-8"))
    ]


def test_no_secret_compared_with_equality() -> None:
    offending = [f"{path}:{line}: {text}" for path, line, text in scan_tree() if (path, text) not in ALLOWED]
    assert offending == [], "use hmac.compare_digest for these:\n" + "\n".join(offending)


def test_allowlist_has_no_stale_entries() -> None:
    present = {(path, text) for path, _, text in scan_tree()}
    stale = [entry for entry in ALLOWED if entry not in present]
    assert stale == [], f"delete these ALLOWED entries, the code no longer has them: {stale}"


@pytest.mark.parametrize(
    "source",
    [
        "signature == expected",
        "expected_signature != provided",
        "expectedSignature == provided",
        "x.secret_access_key == y",
        "mac == computed",
        "auth_tag != tag",
        "token == 'abc'",
        "record['secret'] == s",
        "reveal_secret(k) != s",
        "hmac_value == other",
        "a == b == signature",
        "signature[:8] == prefix",
    ],
)
def test_rule_flags(source: str) -> None:
    assert len(hits(source)) == 1


@pytest.mark.parametrize(
    "source",
    [
        "hmac.compare_digest(signature, expected)",
        "signature is None",
        "signature == None",
        "len(tag) != TAG_SIZE",
        "TAG_SIZE == n",
        "tag_key == 'Name'",
        "tag_value != other_value",
        "tags == []",
        "mac_algorithm == 'HMAC_SHA_256'",
        "token_count == limit",
        "secret_id == wanted",
        "token == ''",
        "machine == stage",
        "signature in allowed",
    ],
)
def test_rule_ignores(source: str) -> None:
    assert hits(source) == []
