"""Authentication and protected mode: the rules every protocol shares.

Pure: no IO, no trio. The live settings are the Store's
(``store.requirepass``: the default user's password as bytes, or None for
no password; ``store.protected_mode``); this module decides with them.
``Store`` is imported for type checking only (see commands.session).

Rules kept here (Redis 7.0's, src/acl.c and src/networking.c):

* A connection is authenticated from the start when no password is set at
  the moment it connects (Redis' ``createClient``), and by a successful
  ``AUTH`` / ``HELLO ... AUTH``. It stays so when a password is set later
  (``CONFIG SET requirepass``), as in Redis. While a password is set, an
  unauthenticated connection may only run the commands flagged ``no_auth``
  (AUTH, HELLO, QUIT, RESET); anything else is ``-NOAUTH``, checked by the
  engine after the name and arity checks (Redis' ``processCommand`` order).
* Passwords are compared in constant time (``hmac.compare_digest``) so the
  reply time does not tell how many leading bytes were right.
* Secrets never reach SLOWLOG: AUTH, HELLO AUTH and CONFIG SET requirepass
  replace their password (and user) arguments in the request with
  ``(redacted)`` as they run (Redis' redactClientCommandArgument), before
  the engine records the command.
* Protected mode: while it is on and no password is set, a client whose
  address is not loopback (127.0.0.0/8, ::1, or those as IPv4-mapped IPv6)
  is told why and disconnected before anything it sent is read. Redis
  checks the peer, not the bound address: bound to loopback only loopback
  clients reach the server anyway.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from typing import TYPE_CHECKING

from ..protocol.replies import Error

if TYPE_CHECKING:
    from ..store.store import Store

# The only user there is.
DEFAULT_USER = b"default"
# What SLOWLOG shows instead of a secret argument (Redis' wording).
REDACTED = b"(redacted)"

NOAUTH = Error("NOAUTH Authentication required.")
WRONGPASS = Error("WRONGPASS invalid username-password pair or user is disabled.")
NO_PASSWORD_CONFIGURED = Error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)
HELLO_NOAUTH = Error(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    "the RESP protocol version at the same time"
)
# The line protocol's wording (after "ERROR "): the same code words, so a
# script can match them, and what to do.
TEXT_NOAUTH = Error("NOAUTH authentication required: send AUTH <password>")
TEXT_WRONGPASS = Error("WRONGPASS invalid password")
TEXT_NO_PASSWORD_CONFIGURED = Error("AUTH called without any password configured")

# Redis 7.0's -DENIED text (networking.c, clientAcceptHandler); the first
# sentence is Redis' own, the remedies name trio_kv's options.
DENIED_MESSAGE = (
    "DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from "
    "the loopback interface. If you want to connect from external computers to trio_kv you "
    "may adopt one of the following solutions: "
    "1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from "
    "the loopback interface by connecting to trio_kv from the same host the server is "
    "running, however MAKE SURE trio_kv is not publicly accessible from internet if you do "
    "so. The change lasts until the server restarts. "
    "2) Alternatively you can just disable the protected mode by setting the environment "
    "variable TRIO_KV_PROTECTED_MODE=no (in a container's environment, for example), and "
    "then restarting the server. "
    "3) If you started the server manually just for testing, restart it with the "
    "'--protected-mode no' option. "
    "4) Setup an authentication password for the default user: '--requirepass <password>', "
    "better the environment variable TRIO_KV_REQUIREPASS (flags show in ps), or "
    "'CONFIG SET requirepass <password>' from the loopback interface. "
    "NOTE: You only need to do one of the above things in order for the server to start "
    "accepting connections from the outside."
)
DENIED_RESP = b"-" + DENIED_MESSAGE.encode() + b"\r\n"
DENIED_TEXT = b"ERROR " + DENIED_MESSAGE.encode() + b"\n"
# The HTTP API's 403 body says the same in a sentence.
DENIED_HTTP_REASON = (
    "Protected mode: no password is set, so only clients on the loopback interface are "
    "served. Set a password (--requirepass or TRIO_KV_REQUIREPASS; clients then send "
    "'Authorization: Bearer <password>'), or start with --protected-mode no if this "
    "port is not reachable from untrusted networks."
)


def redact(args: list[bytes], *positions: int) -> None:
    """Replace secret arguments of a request in place (see the module docstring)."""
    for position in positions:
        if position < len(args):
            args[position] = REDACTED


def password_bytes(text: str | None) -> bytes | None:
    """A configured password as the bytes clients must send: the command
    line and environment decode with ``surrogateescape``, so ``os.fsencode``
    gives back exactly the bytes that were passed."""
    if text is None or text == "":
        return None
    return os.fsencode(text)


def password_matches(configured: bytes | None, given: bytes) -> bool:
    """Whether ``given`` is the password, in time independent of where they differ."""
    if configured is None:
        return False
    return hmac.compare_digest(configured, given)


def check_credentials(store: Store, username: bytes, password: bytes) -> bool:
    """Redis' ACLCheckUserCredentials for the one user: ``default`` with the
    password, or with anything at all when no password is set (nopass)."""
    if username != DEFAULT_USER:
        return False
    configured = store.requirepass
    return configured is None or password_matches(configured, password)


def is_loopback_peer(host: str) -> bool:
    """Whether a peer address is this machine's loopback (protected mode's
    "local client"): 127.0.0.0/8, ::1, and IPv4-mapped loopback. A Unix
    socket peer (an empty or path address) counts as local, as in Redis."""
    if not host or host.startswith("/"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def denies(store: Store, peer_host: str) -> bool:
    """Protected mode's decision for a client just accepted from ``peer_host``."""
    return (
        store.protected_mode
        and store.requirepass is None
        and not is_loopback_peer(peer_host)
    )


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme
    case-insensitive, RFC 9110 11.1), or None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None
