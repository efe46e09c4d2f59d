"""The three layers import only downward (see trio_kv/__init__.py).

Pure code (protocol, cluster, commands, http) imports no trio, sockets or threads and
nothing from the store or the server; protocol and cluster import nothing from commands; protocol and commands import nothing
from http (HTTP's pure parts sit on top of the commands); the store imports
no trio and nothing from the server or http. The RESP client (``client/``) needs nothing of a
server (store, server, commands, http, cluster); its pure parts (``client/wire/``:
packing, hiredis' reader, redis-cli formatting) import no trio, sockets, ssl or threads
and none of the client's IO modules. Checked from the source, so a lazy import inside a function
counts too.

One exception, and only one: an import in the body of an ``if
TYPE_CHECKING:`` block (``typing.TYPE_CHECKING`` too) is for the type
checker and never runs, so it is not a run-time import; handlers type their
store this way (commands/session.py says why). Its ``else:`` branch, an
``if not TYPE_CHECKING:``, or any other condition still counts.
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
    "cluster": {
        "trio", "socket", "threading", "asyncio", "selectors",
        "trio_kv.store", "trio_kv.server", "trio_kv.commands", "trio_kv.http",
    },
    "commands": {"trio", "socket", "threading", "asyncio", "selectors", "trio_kv.store", "trio_kv.server", "trio_kv.http"},
    "http": {"trio", "socket", "threading", "asyncio", "selectors", "trio_kv.store", "trio_kv.server"},
    "store": {"trio", "socket", "asyncio", "selectors", "trio_kv.server", "trio_kv.http"},
    # The client's pure parts (packing, hiredis' reader, redis-cli formatting): shared by the
    # Trio client, the blocking client and the CLI, and usable by the cluster's peer links.
    "client/wire": {
        "trio", "socket", "threading", "asyncio", "selectors", "ssl",
        "trio_kv.store", "trio_kv.server", "trio_kv.commands", "trio_kv.http", "trio_kv.client.connection",
        "trio_kv.client.pool", "trio_kv.client.blocking", "trio_kv.client.cli",
    },
    # The client talks to a server over the wire; it needs nothing of one.
    "client": {"trio_kv.store", "trio_kv.server", "trio_kv.commands", "trio_kv.http", "trio_kv.cluster"},
}


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``, exactly."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        and isinstance(test.value, ast.Name) and test.value.id == "typing"
    )


def _type_only(tree: ast.AST) -> set[int]:
    """The ids of every node inside the body of an ``if TYPE_CHECKING:``."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                inside.update(id(child) for child in ast.walk(statement))
    return inside


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports at run time (relative imports resolved)."""
    return _imports_in(path.read_text(), path)


def _imports_in(source: str, path: Path) -> set[str]:
    tree = ast.parse(source, str(path))
    type_only = _type_only(tree)
    package_parts = ["trio_kv", *path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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


def test_layering_check_allows_only_type_checking_imports() -> None:
    # commands/session.py types its store under TYPE_CHECKING: not a run-time import.
    session = PACKAGE / "commands" / "session.py"
    assert "    from ..store.store import Store\n" in session.read_text()
    assert not any(name.startswith("trio_kv.store") for name in _imports(session))
    # Every other way of writing the import is one, and is caught.
    for source in (
        "from ..store.store import Store\n",
        "def f():\n    from ..store import store\n",
        "if TYPE_CHECKING:\n    pass\nelse:\n    from ..store.store import Store\n",
        "if not TYPE_CHECKING:\n    from ..store.store import Store\n",
        "if TYPE_CHECKING or True:\n    from ..store.store import Store\n",
        "import typing\nif typing.TYPE_CHECKING:\n    pass\nimport trio_kv.store.keyspace\n",
    ):
        assert any(name.startswith("trio_kv.store") for name in _imports_in(source, session)), source
    for source in (
        "if TYPE_CHECKING:\n    from ..store.store import Store\n",
        "import typing\nif typing.TYPE_CHECKING:\n    import trio_kv.store.keyspace\n",
    ):
        assert not any(name.startswith("trio_kv.store") for name in _imports_in(source, session)), source
