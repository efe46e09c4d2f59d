"""mypy over every layer (protocol/, cluster/, commands/, store/, http/, server/), as
configured in pyproject.toml's ``[tool.mypy]``; and proof that it bites: a
handler that reaches for something ``ServerControl`` does not declare (or
for the old ``session.server`` service bag) fails the check."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# mypy is a test dependency (pyproject.toml): never skipped, so CI cannot
# silently lose the check; without it these tests fail with "No module named mypy".

def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    # From the repository root, so mypy finds trio_kv and reads pyproject.toml.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )


def _handler_module(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "handler_under_check.py"
    path.write_text(
        "from __future__ import annotations\n\n"
        "from trio_kv.commands.control import ServerControl\n"
        "from trio_kv.commands.session import Session\n\n\n"
        "def cmd_example(session: Session, args: list[bytes]) -> object:\n"
        "    control: ServerControl = session.control\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
    )
    return path


def test_protocol_commands_and_store_type_check() -> None:
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_implementations_are_server_controls(tmp_path: Path) -> None:
    # The server's and the store-only one; server/ is not type-checked as a
    # whole, so only server/control.py itself is (its imports silently).
    path = tmp_path / "conforms.py"
    path.write_text(
        "from trio_kv.commands.control import ServerControl\n"
        "from trio_kv.server.control import RunningServer\n"
        "from trio_kv.store.local_control import LocalControl\n\n\n"
        "def running(server: RunningServer) -> ServerControl:\n    return server\n\n\n"
        "def local(control: LocalControl) -> ServerControl:\n    return control\n"
    )
    result = _mypy("--follow-imports=silent", str(path), str(ROOT / "trio_kv" / "server" / "control.py"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_fake_server_control_of_the_handler_tests_conforms() -> None:
    # tests/unit/test_server_control.py assigns its FakeControl to a
    # ServerControl: mypy fails there if the fake misses a member.
    result = _mypy(str(ROOT / "tests" / "unit" / "test_server_control.py"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_handler_using_what_server_control_declares_passes(tmp_path: Path) -> None:
    path = _handler_module(tmp_path, """\
        control.kill_client(2)
        return [len(control.clients()), control.tcp_port, session.store.requirepass]
    """)
    result = _mypy(str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        # The server's registry is not part of ServerControl: only clients() is.
        ("return control.registry\n", '"ServerControl" has no attribute "registry"'),
        # The service bag handlers used to reach through.
        ("return session.server.kill_client(2)\n", '"Session" has no attribute "server"'),
        # Services are no longer attached to the store.
        ("return session.store.request_shutdown()\n", '"Store" has no attribute "request_shutdown"'),
    ],
)
def test_a_handler_reaching_past_server_control_fails(tmp_path: Path, body: str, complaint: str) -> None:
    result = _mypy(str(_handler_module(tmp_path, body)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert complaint in result.stdout
