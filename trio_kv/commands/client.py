"""CLIENT: the connection's own identity and the list of connected clients.

Subcommands: ID, SETNAME, GETNAME, INFO, LIST [TYPE t | ID id ...], KILL
(old form ``CLIENT KILL addr:port`` and the filter form ``ID``, ``ADDR``,
``LADDR``, ``TYPE``, ``USER``, ``SKIPME``, ``MAXAGE``), SETINFO
LIB-NAME|LIB-VER, REPLY ON|OFF|SKIP, NO-EVICT and NO-TOUCH (accepted: there
is no eviction and no LRU clock), HELP. Wording follows Redis 7.2's
networking.c.

CLIENT REPLY only sets the session's mode (``reply_off``,
``reply_skip_next``); the engine drops the replies (store.engine). OFF and
SKIP answer nothing themselves, ON answers ``+OK``, as Redis.

Other connections are read from ``session.control.clients()`` (a copy
of the server's registry) and closed through
``session.control.kill_client(id)`` (commands.control, thread-safe).
A connection that kills itself closes after this batch's replies, as Redis'
close-after-reply.

CLIENT LIST lines carry every field Redis 7.2 prints, in its order, so
parsers written for Redis work. ``laddr`` is the server's end of the
socket and ``qbuf`` the bytes in the query buffer (the requests being
executed included, as Redis counts them), both kept in the session by the
server layer. Fields the command layer cannot observe are constant:
``fd=-1``, ``idle=0`` and the other buffer and memory sizes (0). ``resp=``
is 2 or 3 for RESP connections and 0 for the line protocol. ``age`` is
measured from ``session.created_ms``.
"""

from __future__ import annotations

import time

from ..protocol.replies import NO_REPLY, OK, Error, Verbatim
from .connection import BAD_CLIENT_NAME, SYNTAX_ERROR, is_valid_client_attribute
from .container import Container, Subcommand
from .arguments import parse_int64
from .session import Session
from .table import CommandSpec, Lock

# CLIENT LIST TYPE / CLIENT KILL TYPE names Redis knows; only "normal"
# clients exist here (no replication, no pub/sub).
CLIENT_TYPES = {b"normal", b"master", b"replica", b"slave", b"pubsub"}


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


def client_info_line(session: Session, now_ms: int) -> str:
    """One CLIENT LIST line (without its newline), in Redis 7.2's field order."""
    age_s = max(0, now_ms - session.created_ms) // 1000 if session.created_ms > 0 else 0
    multi = session.transaction.queued
    flags = ("x" if multi is not None else "") + ("r" if session.cluster_readonly else "")
    return (
        f"id={session.id} addr={session.address} laddr={session.local_address} fd=-1 name={_text(session.name)} "
        f"age={age_s} idle=0 flags={flags or 'N'} db=0 sub=0 psub=0 ssub=0 "
        f"multi={len(multi) if multi is not None else -1} qbuf={session.query_buffer_bytes} qbuf-free=0 "
        f"argv-mem=0 multi-mem=0 "
        f"rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={session.last_command or 'NULL'} "
        f"user=default redir=-1 resp={session.protocol if session.wire.shows_resp_version else 0} "
        f"lib-name={_text(session.library_name)} lib-ver={_text(session.library_version)}"
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _unknown_type(name: bytes) -> Error:
    return Error(f"ERR Unknown client type '{_text(name)}'")


def client_id(session: Session, args: list[bytes]) -> int:
    return session.id


def client_setname(session: Session, args: list[bytes]) -> object:
    if not is_valid_client_attribute(args[2]):
        return BAD_CLIENT_NAME
    session.name = args[2]
    return OK


def client_getname(session: Session, args: list[bytes]) -> bytes | None:
    return session.name or None


def client_info(session: Session, args: list[bytes]) -> Verbatim:
    return Verbatim("txt", (client_info_line(session, _now_ms()) + "\n").encode())


def client_list(session: Session, args: list[bytes]) -> object:
    clients = session.control.clients()
    if len(args) == 4 and args[2].lower() == b"type":
        kind = args[3].lower()
        if kind not in CLIENT_TYPES:
            return _unknown_type(args[3])
        if kind != b"normal":
            clients = []
    elif len(args) > 3 and args[2].lower() == b"id":
        by_id = {client.id: client for client in clients}
        clients = []
        for raw in args[3:]:
            wanted = parse_int64(raw)
            if wanted is None:
                return Error("ERR Invalid client ID")
            if wanted in by_id:
                clients.append(by_id[wanted])
    elif len(args) != 2:
        return SYNTAX_ERROR
    now_ms = _now_ms()
    text = "".join(client_info_line(client, now_ms) + "\n" for client in clients)
    return Verbatim("txt", text.encode())


def _kill(session: Session, target: Session) -> None:
    if target is session:
        session.closing = True
    else:
        session.control.kill_client(target.id)


def client_kill(session: Session, args: list[bytes]) -> object:
    clients = session.control.clients()
    if len(args) == 3:
        address = _text(args[2])
        for client in clients:
            if client.address == address:
                _kill(session, client)
                return OK
        return Error("ERR No such client")
    if len(args) % 2:
        return SYNTAX_ERROR
    wanted_id: int | None = None
    wanted_address: str | None = None
    wanted_local_address: str | None = None
    wanted_type: bytes | None = None
    max_age_s: int | None = None
    skip_me = True
    for index in range(2, len(args), 2):
        option, value = args[index].lower(), args[index + 1]
        if option == b"id":
            wanted_id = parse_int64(value)
            if wanted_id is None or wanted_id <= 0:
                return Error("ERR client-id should be greater than 0")
        elif option == b"addr":
            wanted_address = _text(value)
        elif option == b"laddr":
            wanted_local_address = _text(value)
        elif option == b"type":
            wanted_type = value.lower()
            if wanted_type not in CLIENT_TYPES:
                return _unknown_type(value)
        elif option == b"user":
            if value != b"default":
                return Error(f"ERR No such user '{_text(value)}'")
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                return SYNTAX_ERROR
            skip_me = value.lower() == b"yes"
        elif option == b"maxage":
            max_age_s = parse_int64(value)
            if max_age_s is None:
                return SYNTAX_ERROR
        else:
            return SYNTAX_ERROR
    now_ms = _now_ms()
    killed = 0
    for client in clients:
        if wanted_id is not None and client.id != wanted_id:
            continue
        if wanted_address is not None and client.address != wanted_address:
            continue
        if wanted_local_address is not None and client.local_address != wanted_local_address:
            continue
        if wanted_type is not None and wanted_type != b"normal":
            continue
        if max_age_s is not None and (now_ms - client.created_ms) // 1000 < max_age_s:
            continue
        if skip_me and client is session:
            continue
        _kill(session, client)
        killed += 1
    return killed


def client_setinfo(session: Session, args: list[bytes]) -> object:
    attribute, value = args[2], args[3]
    if attribute.lower() not in (b"lib-name", b"lib-ver"):
        return Error(f"ERR Unrecognized option '{_text(attribute)}'")
    if not is_valid_client_attribute(value):
        return Error(f"ERR {_text(attribute)} cannot contain spaces, newlines or special characters.")
    if attribute.lower() == b"lib-name":
        session.library_name = value
    else:
        session.library_version = value
    return OK


def client_reply(session: Session, args: list[bytes]) -> object:
    mode = args[2].lower()
    if mode == b"on":
        session.reply_off = session.reply_skip = session.reply_skip_next = False
        return OK
    if mode == b"off":
        session.reply_off = True
        return NO_REPLY
    if mode == b"skip":
        if not session.reply_off:
            session.reply_skip_next = True
        return NO_REPLY
    return SYNTAX_ERROR


def client_on_off(session: Session, args: list[bytes]) -> object:
    """NO-EVICT / NO-TOUCH: nothing is ever evicted and no access time is
    kept, so both settings are accepted and change nothing."""
    return OK if args[2].lower() in (b"on", b"off") else SYNTAX_ERROR


_ADMIN = ("admin", "noscript", "loading", "stale")
_PLAIN = ("noscript", "loading", "stale")

CLIENT = Container(
    "client",
    [
        Subcommand(
            name="id", arity=2, lock=Lock.READ, flags=_PLAIN, usage="ID", since="5.0.0",
            handler=client_id, summary="Return the ID of the current connection.",
        ),
        Subcommand(
            name="setname", arity=3, lock=Lock.READ, flags=_PLAIN, usage="SETNAME <name>",
            since="2.6.9", handler=client_setname, summary="Set the name of the current connection.",
        ),
        Subcommand(
            name="getname", arity=2, lock=Lock.READ, flags=_PLAIN, usage="GETNAME",
            since="2.6.9", handler=client_getname, summary="Return the name of the current connection.",
        ),
        Subcommand(
            name="info", arity=2, lock=Lock.READ, flags=_PLAIN, usage="INFO",
            since="6.2.0", handler=client_info, summary="Return information about the current client connection.",
        ),
        Subcommand(
            name="list", arity=-2, lock=Lock.READ, flags=_ADMIN,
            usage="LIST [TYPE <type>] [ID <id> [<id> ...]]", since="2.4.0", handler=client_list,
            summary="Return information about client connections.",
        ),
        Subcommand(
            name="kill", arity=-3, lock=Lock.READ, flags=_ADMIN,
            usage="KILL <ip:port> | <option> <value> [<option> <value> ...]", since="2.4.0", handler=client_kill,
            summary="Kill connections by address, or by ID, ADDR, LADDR, TYPE, USER, SKIPME and MAXAGE filters.",
        ),
        Subcommand(
            name="setinfo", arity=4, lock=Lock.READ, flags=_PLAIN,
            usage="SETINFO <LIB-NAME|LIB-VER> <value>", since="7.2.0", handler=client_setinfo,
            summary="Set client library name or version, shown in CLIENT LIST.",
        ),
        Subcommand(
            name="reply", arity=3, lock=Lock.READ, flags=_PLAIN,
            usage="REPLY (ON|OFF|SKIP)", since="3.2.0", handler=client_reply,
            summary="Control the replies sent to the current connection.",
        ),
        Subcommand(
            name="no-evict", arity=3, lock=Lock.READ, flags=_ADMIN,
            usage="NO-EVICT (ON|OFF)", since="7.0.0", handler=client_on_off,
            summary="Accepted; nothing is ever evicted.",
        ),
        Subcommand(
            name="no-touch", arity=3, lock=Lock.READ, flags=_PLAIN,
            usage="NO-TOUCH (ON|OFF)", since="7.2.0", handler=client_on_off,
            summary="Accepted; no access time is kept.",
        ),
    ],
)

SPECS: list[CommandSpec] = [
    CommandSpec(
        name="client", arity=-2, lock=Lock.READ, since="2.4.0", group="connection", handler=CLIENT,
        summary="A container for client connection commands.",
    ),
]
