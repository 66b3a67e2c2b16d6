"""The import direction of docs/design.md section 7, checked on the source tree.

server -> operations -> policy/crypto/storage ports; only ``crypto`` touches ``cryptography.hazmat`` (and PyNaCl);
nothing below the server imports ``server`` or ``cli``. Each row names whole layers, with no exceptions: what two
layers share (the request context, the trail's event names) lives below both (openkms.context, openkms.eventnames),
and what the audit layer does for an operation (counting usage) reaches it through Services.

The fronts (the command line, the console) write only by running an operation through the operation runner, or
through a named entry point that is not a change a caller could make (install setup, the audit job's own steps).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "openkms"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}

# package prefix -> packages of ours it may import (besides itself)
ALLOWED = {
    "openkms.identity": {"openkms.ids", "openkms.clock", "openkms.crypto", "openkms.errors", "openkms.policy",
                         "openkms.storage"},
    "openkms.regions": {"openkms.ids"},
    "openkms.settings": {"openkms.ids", "openkms.regions"},
    # The backup tool reads and writes whole tables and opens what is wrapped, to verify it: beside operations.
    "openkms.backup": {"openkms.identity", "openkms.audit", "openkms.crypto", "openkms.operations", "openkms.storage"},
    "openkms.crypto": {"openkms.errors"},
    "openkms.storage": set(),
    "openkms.errors": set(),
    "openkms.ids": set(),
    "openkms.clock": set(),
    "openkms.context": set(),
    "openkms.eventnames": set(),
    "openkms.opfacts": set(),
    "openkms.seal": {"openkms.crypto", "openkms.errors", "openkms.storage", "openkms.clock"},
    "openkms.auth": {"openkms.errors", "openkms.ids", "openkms.identity", "openkms.crypto",
                     "openkms.context", "openkms.seal", "openkms.storage", "openkms.lru"},
    "openkms.operations": {"openkms.errors", "openkms.ids", "openkms.context", "openkms.crypto", "openkms.storage",
                           "openkms.seal", "openkms.clock", "openkms.settings", "openkms.policy", "openkms.apimodel",
                           "openkms.usage_report", "openkms.eventnames", "openkms.lru", "openkms.opfacts",
                           "openkms.identity"},
    "openkms.usage_report": {"openkms.settings", "openkms.storage"},
    "openkms.policy": {"openkms.errors", "openkms.ids"},
    "openkms.apimodel": set(),
    "openkms.lru": set(),
    "openkms.audit": {"openkms.apimodel", "openkms.ids", "openkms.context", "openkms.eventnames", "openkms.storage",
                      "openkms.crypto", "openkms.errors", "openkms.clock", "openkms.seal", "openkms.settings",
                      "openkms.opfacts"},
    "openkms.sts": {"openkms.auth", "openkms.audit", "openkms.operations", "openkms.context", "openkms.errors",
                    "openkms.eventnames", "openkms.ids"},
    "openkms.jobs": {"openkms.operations", "openkms.context", "openkms.storage", "openkms.errors", "openkms.clock",
                     "openkms.settings", "openkms.audit"},
    "openkms.bootstrap": {"openkms.identity", "openkms.storage", "openkms.clock"},
}  # fmt: skip


EDGE = ("openkms.server", "openkms.cli", "openkms.console", "openkms.wiring", "openkms.__main__")


def test_every_module_below_the_edge_has_its_rule() -> None:
    """A package or module with no row in ALLOWED would be checked by nothing."""
    top_level = {".".join(module.split(".")[:2]) for module in MODULES if module != "openkms"}
    assert sorted(top_level - set(ALLOWED) - set(EDGE)) == []


def _ours(name: str) -> bool:
    return name == "openkms" or name.startswith("openkms.")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    bad = sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if module == package or module.startswith(package + ".")
        for name in names
        if _ours(name)
        and name not in ("openkms", "openkms.__version__")  # the package's own version, a leaf
        and not any(name == a or name.startswith(a + ".") for a in allowed)
    )
    assert bad == []


def _is_primitive_library(name: str) -> bool:
    return any(name == lib or name.startswith(lib + ".") for lib in ("cryptography.hazmat", "nacl"))


def test_only_crypto_touches_hazmat() -> None:
    """pyca's hazmat layer, and libsodium (PyNaCl, for Ed25519ph only), are used inside openkms.crypto alone."""
    bad = sorted(
        module
        for module, names in MODULES.items()
        if not module.startswith("openkms.crypto") and any(_is_primitive_library(n) for n in names)
    )
    assert bad == []
    assert {module for module, names in MODULES.items() if any(n.startswith("nacl") for n in names)} == {
        "openkms.crypto.ed25519ph"
    }


def test_nothing_below_the_edge_imports_server_or_cli() -> None:
    edge = EDGE
    bad = sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if not module.startswith(edge)
        for name in names
        if name.startswith(("openkms.server", "openkms.cli"))
    )
    assert bad == []


# ---- operator tools go through the same door as callers (issue 16 item 5) -------------------------------------

FRONTS = ("openkms.cli", "openkms.console")

# The writes below the fronts that a front may still call, each a named entry point that is not a change a caller
# could make through the API, so it has no operation to run as:
WRITE_ENTRY_POINTS = {
    # `openkms audit export/verify --sign-now`: the audit digest job's own step (signs the trail's head; changes
    # nothing a caller made or reads through the API).
    "openkms.audit.digests.write_digest",
    # `openkms init` / `serve --dev`: install setup with the schema's migration (which is a storage method, not
    # a function here): the root of trust, and the install's first administrator before any caller exists.
    "openkms.seal.root_key.initialize_with_keyfile",
    "openkms.seal.root_key.initialize_with_passphrase",
    "openkms.bootstrap.first_administrator",
    "openkms.bootstrap.dev_administrator",
    # `openkms usage`: the usage roll-up, counts derived from the trail and recomputable from it (also run by
    # GetCostAndUsage); it changes nothing a caller made.
    "openkms.audit.usage.roll_up",
    # `openkms restore`: disaster recovery into an empty database (or one the operator chose to replace), like
    # `init`: it writes a whole checked backup in one transaction, before any server or caller uses the database;
    # there is no API operation that could do it.
    "openkms.backup.restore.restore_backup",
}


def _opens_write_transaction(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "transaction"
        for n in ast.walk(node)
    )


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> what it names, for ``from M import x [as y]`` (``M.x``) and ``import M [as y]``."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
    return found


def _names_used(node: ast.AST, aliases: dict[str, str], module: str, *, calls_only: bool = False) -> set[str]:
    """The qualified names ``node`` refers to (``calls_only``: calls): imported names and their attributes
    (``identity.create_user`` as ``openkms.identity.create_user``), and names of its own module."""
    used: set[str] = set()
    for n in ast.walk(node):
        target = n.func if isinstance(n, ast.Call) else n
        if calls_only and not isinstance(n, ast.Call):
            continue
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in aliases:
            used.add(f"{aliases[target.value.id]}.{target.attr}")
        elif isinstance(target, ast.Name):
            used.add(aliases.get(target.id, f"{module}.{target.id}"))
    return used


def _writers() -> set[str]:
    """Every module-level function below the fronts that opens a write transaction, or calls one that does
    (``bootstrap.first_administrator`` through ``identity.create_user``)."""
    calls: dict[str, set[str]] = {}
    writing: set[str] = set()
    for path in SRC.rglob("*.py"):
        module = _module_name(path)
        if module.startswith(FRONTS):
            continue
        tree = ast.parse(path.read_text("utf-8"))
        aliases = _aliases(tree)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{module}.{node.name}"
                calls[name] = _names_used(node, aliases, module, calls_only=True)
                if _opens_write_transaction(node):
                    writing.add(name)
    while True:
        more = {name for name, used in calls.items() if name not in writing and used & writing}
        if not more:
            return writing
        writing |= more


WRITERS = _writers()


def _used_by(path: Path) -> set[str]:
    """What a module names anywhere: a writer handed on as a value is as good as called."""
    tree = ast.parse(path.read_text("utf-8"))
    return _names_used(tree, _aliases(tree), _module_name(path))


def test_the_fronts_write_only_through_the_operation_runner() -> None:
    """The command line and the console change nothing a caller could change except by running an operation
    (server/operation_runner.py), as that principal, recorded in the change's transaction: no front opens a
    write transaction, imports the trail's append, or calls a function below that writes, besides the named
    entry points above."""
    fronts = [path for path in SRC.rglob("*.py") if _module_name(path).startswith(FRONTS)]
    opening = sorted(_module_name(p) for p in fronts if _opens_write_transaction(ast.parse(p.read_text("utf-8"))))
    appending = sorted(
        module for module, names in MODULES.items() if module.startswith(FRONTS) and "openkms.audit.log" in names
    )
    calling = sorted(
        f"{_module_name(path)} calls {name}"
        for path in fronts
        for name in _used_by(path) & WRITERS
        if name not in WRITE_ENTRY_POINTS
    )
    assert (opening, appending, calling) == ([], [], [])


def test_the_write_scan_sees_the_writes() -> None:
    """The rule above would pass on a scan that found nothing: it finds identity's changes and every entry point."""
    assert {"openkms.identity.create_user", "openkms.identity.put_user_policy", "openkms.identity.tag_user"} <= WRITERS
    assert WRITE_ENTRY_POINTS <= WRITERS
    assert "openkms.identity.create_user" in _used_by(SRC / "bootstrap.py")


def test_the_scan_sees_the_tree() -> None:
    assert "openkms.server.app" in MODULES and "openkms.crypto.symmetric" in MODULES
    assert "openkms.operations.keyrefs" in MODULES["openkms.operations.encryption"]
