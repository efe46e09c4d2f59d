"""The three layers import only downward (see trio_kv/__init__.py).

Pure code (protocol, commands, http) imports no trio, sockets or threads and
nothing from the store or the server; protocol and commands import nothing
from http (HTTP's pure parts sit on top of the commands); the store imports
no trio and nothing from the server or http. Checked from the source, so a lazy import inside a function
counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trio_kv"

FORBIDDEN = {
    "protocol": {
        "trio", "socket", "threading", "asyncio", "selectors",
        "trio_kv.store", "trio_kv.server", "trio_kv.commands", "trio_kv.http",
    },
    "commands": {"trio", "socket", "threading", "asyncio", "selectors", "trio_kv.store", "trio_kv.server", "trio_kv.http"},
    "http": {"trio", "socket", "threading", "asyncio", "selectors", "trio_kv.store", "trio_kv.server"},
    "store": {"trio", "socket", "asyncio", "selectors", "trio_kv.server", "trio_kv.http"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package_parts = ["trio_kv", *path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module or "")
    return names


def _modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downward(layer: str) -> None:
    offenders = []
    for path in _modules(layer):
        for name in _imports(path):
            for forbidden in FORBIDDEN[layer]:
                if name == forbidden or name.startswith(forbidden + "."):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_every_layer_has_modules(layer: str) -> None:
    # A renamed or emptied layer would make the check above pass vacuously.
    assert [path for path in _modules(layer) if path.name != "__init__.py"]


def test_layering_check_sees_relative_imports() -> None:
    # The checker itself must resolve "from ..server import x" inside store/.
    names = _imports(PACKAGE / "server" / "dispatch.py")
    assert "trio_kv.store.engine" in names
    assert "trio" in names
