"""What a client connects with: one list of options for ``Client`` (each
connection of its pool), ``BlockingClient`` and ``open_connection``.

``ConnectOptions`` holds them, with their defaults. ``ConnectKeywords`` is
the same names as keyword arguments, for the type checker only (``**options:
Unpack[ConnectKeywords]``: a misspelt option is a type error, and a
``TypeError`` from ``ConnectOptions`` at run time);
tests/unit/test_client_options.py checks the two list the same names.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TypedDict


@dataclass(frozen=True)
class ConnectOptions:
    host: str = "127.0.0.1"
    port: int = 6379
    # 2, or 3: HELLO 3 on connect.
    protocol: int = 2
    # AUTH (a username needs a password; none: the server's default user).
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # CLIENT SETNAME (or HELLO's SETNAME) on connect.
    client_name: str | None = None
    # TLS when given; the name checked against the certificate (default: host).
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    # Bulk strings as str (UTF-8) instead of bytes.
    decode: bool = False


class ConnectKeywords(TypedDict, total=False):
    """``ConnectOptions`` but host and port, as keyword arguments."""

    protocol: int
    username: str | None
    password: str | None
    client_name: str | None
    ssl_context: ssl.SSLContext | None
    server_hostname: str | None
    decode: bool
