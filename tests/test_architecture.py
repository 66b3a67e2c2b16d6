"""The import direction of docs/design.md section 7, checked on the source tree.

server -> operations -> policy/crypto/storage ports; only ``crypto`` touches ``cryptography.hazmat`` (and PyNaCl);
nothing below the server imports ``server`` or ``cli``. Each row names whole layers, with no exceptions: what two
layers share (the request context, the trail's event names) lives below both (openkms.context, openkms.eventnames),
and what the audit layer does for an operation (counting usage) reaches it through Services.
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
    "openkms.crypto": {"openkms.errors"},
    "openkms.storage": set(),
    "openkms.errors": set(),
    "openkms.ids": set(),
    "openkms.clock": set(),
    "openkms.context": set(),
    "openkms.eventnames": set(),
    "openkms.seal": {"openkms.crypto", "openkms.errors", "openkms.storage", "openkms.clock"},
    "openkms.auth": {"openkms.errors", "openkms.ids", "openkms.identity", "openkms.crypto",
                     "openkms.context", "openkms.seal", "openkms.storage", "openkms.lru"},
    "openkms.operations": {"openkms.errors", "openkms.ids", "openkms.context", "openkms.crypto", "openkms.storage",
                           "openkms.seal", "openkms.clock", "openkms.settings", "openkms.policy", "openkms.apimodel",
                           "openkms.usage_report", "openkms.eventnames", "openkms.lru", "openkms.identity"},
    "openkms.usage_report": {"openkms.settings", "openkms.storage"},
    "openkms.policy": {"openkms.errors", "openkms.ids"},
    "openkms.apimodel": set(),
    "openkms.lru": set(),
    "openkms.audit": {"openkms.apimodel", "openkms.ids", "openkms.context", "openkms.eventnames", "openkms.storage",
                      "openkms.crypto", "openkms.errors", "openkms.clock", "openkms.seal", "openkms.settings"},
    "openkms.jobs": {"openkms.operations", "openkms.context", "openkms.storage", "openkms.errors", "openkms.clock",
                     "openkms.settings"},
}  # fmt: skip


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
        if _ours(name) and name != "openkms" and not any(name == a or name.startswith(a + ".") for a in allowed)
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
    edge = ("openkms.server", "openkms.cli", "openkms.console", "openkms.wiring", "openkms.__main__")
    bad = sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if not module.startswith(edge)
        for name in names
        if name.startswith(("openkms.server", "openkms.cli"))
    )
    assert bad == []


def test_the_scan_sees_the_tree() -> None:
    assert "openkms.server.app" in MODULES and "openkms.crypto.symmetric" in MODULES
    assert "openkms.operations.keyrefs" in MODULES["openkms.operations.encryption"]
