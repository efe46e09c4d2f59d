"""Commands to RESP bytes, with hiredis' ``pack_command`` (C). No IO.

Arguments may be ``bytes``, ``str`` (UTF-8), ``int`` or ``float`` (their
decimal text), or ``memoryview``, as redis-py accepts them. A pipeline's
commands are packed one by one and joined, so it goes out in one write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

import hiredis

Arg = Union[bytes, str, int, float, memoryview]


def pack_command(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    if not args:
        raise ValueError("a command needs at least its name")
    # hiredis' stub types its argument as a 1-tuple; it takes any length.
    packed: bytes = hiredis.pack_command(tuple(args))  # type: ignore[arg-type]
    return packed


def pack_commands(commands: Iterable[Sequence[Arg]]) -> bytes:
    """Several commands back to back (a pipeline), one buffer."""
    return b"".join(pack_command(args) for args in commands)


def handshake_commands(
    *, protocol: int, username: str | None, password: str | None, client_name: str | None = None
) -> list[tuple[Arg, ...]]:
    """What a new connection sends before its first command: ``HELLO 3``
    (with ``AUTH`` and ``SETNAME`` in it) for RESP3; ``AUTH`` and ``CLIENT
    SETNAME`` for RESP2 (plain RESP2 needs no HELLO, which a Redis before 6
    would refuse)."""
    if protocol not in (2, 3):
        raise ValueError(f"protocol must be 2 or 3, not {protocol!r}")
    if password is None and username is not None:
        raise ValueError("a username needs a password")
    commands: list[tuple[Arg, ...]] = []
    if protocol == 3:
        hello: list[Arg] = ["HELLO", 3]
        if password is not None:
            hello += ["AUTH", username or "default", password]
        if client_name is not None:
            hello += ["SETNAME", client_name]
        commands.append(tuple(hello))
        return commands
    if password is not None:
        commands.append(("AUTH", password) if username is None else ("AUTH", username, password))
    if client_name is not None:
        commands.append(("CLIENT", "SETNAME", client_name))
    return commands
