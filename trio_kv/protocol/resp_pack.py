"""Requests to RESP bytes: the project's one request packer (the client,
the CLI and the cluster bus's peer links). No IO.

A request is an array of bulk strings. Arguments may be ``bytes``, ``str``
(UTF-8), ``int`` or ``float`` (their decimal text; a float as ``repr``
writes it, as redis-py and hiredis do), ``bytearray`` or ``memoryview``
(sent as they are, not copied); anything else is a ``TypeError``.
``pack_commands`` packs a batch (a pipeline, a bus send) back to back in
one buffer, so it goes out in one write.

Plain Python, measured against hiredis' C ``pack_command`` on the same
requests (``bench/wire_micro.py``): as fast on bus traffic (REPL.PUT of
one and of 64 pairs) and client traffic (SET and GET); hiredis' has to be
given a tuple and converts each argument in C, which costs it what this
one saves with precomputed headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Union

Arg = Union[bytes, str, int, float, bytearray, memoryview]

# Headers of the common lengths, made once (a bus batch is hundreds of
# small arguments).
_CACHED_HEADERS = 1024
_BULK_HEADERS = tuple(b"$%d\r\n" % size for size in range(_CACHED_HEADERS))
_ARRAY_HEADERS = tuple(b"*%d\r\n" % size for size in range(_CACHED_HEADERS))


def _as_bytes(arg: object) -> bytes | bytearray | memoryview:
    """A non-``bytes`` argument as bytes (the rare case: a separate call)."""
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, bool):
        raise TypeError("a bool is not a command argument (send 0/1 or a string)")
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode("ascii")
    if isinstance(arg, bytes | bytearray):
        return arg
    if isinstance(arg, memoryview):
        return arg.cast("B") if arg.format != "B" or arg.ndim != 1 else arg
    raise TypeError(f"a command argument is bytes, str, int or float, not {type(arg).__name__}")


def pack_commands(commands: Iterable[Sequence[Arg]]) -> bytes:
    """Several commands back to back, each as ``pack_command`` writes it."""
    parts: list[bytes | bytearray | memoryview] = []
    append, extend = parts.append, parts.extend
    for args in commands:
        count = len(args)
        if not count:
            raise ValueError("a command needs at least its name")
        append(_ARRAY_HEADERS[count] if count < _CACHED_HEADERS else b"*%d\r\n" % count)
        for arg in args:
            data = arg if type(arg) is bytes else _as_bytes(arg)
            size = len(data)
            extend((_BULK_HEADERS[size] if size < _CACHED_HEADERS else b"$%d\r\n" % size, data, b"\r\n"))
    return b"".join(parts)


def pack_command(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings."""
    return pack_commands((args,))
