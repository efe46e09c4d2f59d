"""What a client sends: commands packed by the project's one packer
(``protocol/resp_pack.py``, shared with the cluster's peer links), and the
handshake a new connection starts with. No IO.

Arguments may be ``bytes``, ``str`` (UTF-8), ``int`` or ``float`` (their
decimal text), ``bytearray`` or ``memoryview``, as redis-py accepts them. A
pipeline's commands are packed into one buffer, so it goes out in one write.
"""

from __future__ import annotations

from ...protocol.resp_pack import Arg, pack_command, pack_commands

__all__ = ["Arg", "handshake_commands", "pack_command", "pack_commands"]


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
