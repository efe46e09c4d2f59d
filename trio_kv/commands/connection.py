"""Redis connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

Behaviour and error wording follow Redis 7 (src/server.c, networking.c,
acl.c). What differs, and why:

* There is one database. ``SELECT 0`` succeeds; any other index is
  ``ERR DB index is out of range`` (Redis' answer past ``databases``).
* There are no ACL users, only Redis' ``default`` user, whose password is
  ``--requirepass`` / ``CONFIG SET requirepass`` (rules in commands.auth).
  ``AUTH <password>`` and ``AUTH default <password>`` check it; another user
  name is ``WRONGPASS``. With no password set, ``AUTH default <anything>``
  succeeds (Redis' ``nopass``) and the one-argument ``AUTH <password>`` is
  Redis' "without any password configured" error.
* ``HELLO`` handles its options in order, as Redis does: ``AUTH`` logs in
  (or ends with ``WRONGPASS``), ``SETNAME`` names the connection; then an
  unauthenticated connection gets Redis' ``NOAUTH HELLO must be called...``
  and keeps its protocol.
* ``HELLO`` reports version ``7.2.0``: clients enable features by version,
  and the commands they probe for (``CLIENT SETINFO``...) exist here.

Only QUIT and RESET are ``InMulti.RUN`` (run at once inside MULTI), as in
Redis, which queues PING, HELLO and the rest like any other command.
"""

from __future__ import annotations

from ..protocol.replies import OK, PONG, Error, Map, SimpleString
from .arguments import NOT_AN_INTEGER, SYNTAX_ERROR, parse_int64
from .auth import DEFAULT_USER, HELLO_NOAUTH, NO_PASSWORD_CONFIGURED, WRONGPASS, check_credentials, redact
from .session import Session
from .table import CommandSpec, InMulti, Lock

# What HELLO reports; see the module docstring.
REDIS_VERSION = "7.2.0"
SUPPORTED_PROTOCOLS = (2, 3)
BAD_CLIENT_NAME = Error("ERR Client names cannot contain spaces, newlines or special characters.")
RESET_REPLY = SimpleString("RESET")


def is_valid_client_attribute(value: bytes) -> bool:
    """Redis' rule for client names and library names/versions: printable
    ASCII without spaces ('!' to '~'), so CLIENT LIST stays splittable."""
    return all(33 <= byte <= 126 for byte in value)


def cmd_ping(session: Session, args: list[bytes]) -> object:
    if len(args) > 2:
        return Error("ERR wrong number of arguments for 'ping' command")
    return PONG if len(args) == 1 else args[1]


def cmd_echo(session: Session, args: list[bytes]) -> bytes:
    return args[1]


def _authenticate(session: Session, username: bytes, password: bytes) -> bool:
    """Redis' ACLAuthenticateUser: on success the connection is logged in;
    a failure leaves its state as it was."""
    if not check_credentials(session.store, username, password):
        return False
    session.authenticated = True
    return True


def cmd_auth(session: Session, args: list[bytes]) -> object:
    request = list(args)
    redact(args, *range(1, len(args)))  # whatever the outcome: never in SLOWLOG
    if len(request) > 3:
        return SYNTAX_ERROR
    if len(request) == 2:
        if session.store.requirepass is None:
            return NO_PASSWORD_CONFIGURED
        username, password = DEFAULT_USER, request[1]
    else:
        username, password = request[1], request[2]
    return OK if _authenticate(session, username, password) else WRONGPASS


def cmd_hello(session: Session, args: list[bytes]) -> object:
    protocol = session.protocol
    if len(args) >= 2:
        requested = parse_int64(args[1])
        if requested is None:
            return Error("ERR Protocol version is not an integer or out of range")
        if requested not in SUPPORTED_PROTOCOLS:
            return Error("NOPROTO unsupported protocol version")
        protocol = requested
    # Options take effect in order, as in Redis' helloCommand.
    index = 2
    while index < len(args):
        option = args[index]
        more = len(args) - 1 - index
        if option.upper() == b"AUTH" and more >= 2:
            username, password = args[index + 1], args[index + 2]
            redact(args, index + 1, index + 2)
            if not _authenticate(session, username, password):
                return WRONGPASS
            index += 3
        elif option.upper() == b"SETNAME" and more >= 1:
            name = args[index + 1]
            if not is_valid_client_attribute(name):
                return BAD_CLIENT_NAME
            session.name = name
            index += 2
        else:
            return Error(f"ERR Syntax error in HELLO option '{option.decode('utf-8', 'replace')}'")
    if session.auth_required():
        return HELLO_NOAUTH
    session.protocol = protocol
    return Map(
        [
            (b"server", b"redis"),
            (b"version", REDIS_VERSION.encode()),
            (b"proto", protocol),
            (b"id", session.id),
            (b"mode", b"standalone" if session.control.cluster_view() is None else b"cluster"),
            (b"role", b"master"),
            (b"modules", []),
        ]
    )


SELECT_IN_CLUSTER = Error("ERR SELECT is not allowed in cluster mode")


def cmd_select(session: Session, args: list[bytes]) -> object:
    index = parse_int64(args[1])
    if index is None:
        return NOT_AN_INTEGER
    if index == 0:
        return OK
    if session.control.cluster_view() is not None:
        return SELECT_IN_CLUSTER  # one database in cluster mode, as Redis Cluster
    return Error("ERR DB index is out of range")


def cmd_quit(session: Session, args: list[bytes]) -> object:
    session.closing = True
    return OK


def cmd_reset(session: Session, args: list[bytes]) -> object:
    """Back to a fresh connection's state (Redis' clearClientConnectionState):
    transaction discarded, keys unwatched, name cleared, RESP2, and logged
    out if a password is set (Redis' clientSetDefaultAuth)."""
    session.transaction.discard()
    session.release_snapshots()
    session.cluster_readonly = False
    session.name = b""
    session.protocol = 2
    session.authenticated = session.store.requirepass is None
    return RESET_REPLY


# Flags as Redis 7's command table has them.
_HANDSHAKE_FLAGS = ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy")

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="ping", arity=-1, lock=Lock.READ, flags=("fast",), since="1.0.0", group="connection", handler=cmd_ping,
        summary="Returns the server's liveliness response.",
    ),
    CommandSpec(
        name="echo", arity=2, lock=Lock.READ, flags=("loading", "stale", "fast"), since="1.0.0", group="connection",
        handler=cmd_echo, summary="Returns the given string.",
    ),
    CommandSpec(
        name="hello", arity=-1, lock=Lock.READ, flags=_HANDSHAKE_FLAGS, switches_protocol=True, since="6.0.0",
        group="connection", handler=cmd_hello, summary="Handshakes with the Redis server.",
    ),
    CommandSpec(
        name="auth", arity=-2, lock=Lock.READ, flags=_HANDSHAKE_FLAGS, since="1.0.0", group="connection",
        handler=cmd_auth, summary="Authenticates the connection.",
    ),
    CommandSpec(
        name="select", arity=2, lock=Lock.READ, flags=("loading", "stale", "fast"), since="1.0.0",
        group="connection", handler=cmd_select, summary="Changes the selected database.",
    ),
    CommandSpec(
        name="quit", arity=-1, lock=Lock.READ, flags=_HANDSHAKE_FLAGS, in_multi=InMulti.RUN, since="1.0.0",
        group="connection", handler=cmd_quit, summary="Closes the connection.",
    ),
    CommandSpec(
        name="reset", arity=1, lock=Lock.READ, flags=_HANDSHAKE_FLAGS, in_multi=InMulti.RUN, switches_protocol=True,
        since="6.2.0", group="connection", handler=cmd_reset, summary="Resets the connection.",
    ),
]
