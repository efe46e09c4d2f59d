"""The receiving side of forwarding: jobs from a peer's bus connection.

A node that does not replicate a key forwards the client's request whole
as ``TKV.FORWARD wire level cmd...`` to the key's first live member
(``Coordinator._forward``). Here such requests are coordinated as a
client's would be (``client_job`` with ``forwarded=True``: never
forwarded again, so no loops), in a session of their own per bus
connection, wire and RESP version (the wire and the version decide the
reply shapes the caller's client expects); the other requests of a bus
job are replica commands and run as they are.

``wire`` is the client's wire label, with ``:3`` after it for a RESP3
client (``resp:3``): its forwarded requests run in a RESP3 session here
and their replies cross the bus as RESP3 (the bus job's
``protocol_changes`` mark them for the encoder; the link's reply parser
reads RESP3), so the client gets the bytes it would get from a request
coordinated on its own node (a map stays a map, a double a double).

``TKV.FORWARD.EXEC`` (``cluster.forwarded_exec``) carries a whole
transaction: it runs in a session of its own, made for it and dropped
after: first WATCH of the keys the sender watched and a read of their
clocks (one hop); a clock that differs from the one the sender saw when
its client watched answers EXEC's null array; else MULTI, the queued
commands and EXEC are coordinated as a client's (with those watches in
force), and EXEC's reply is the answer.

``TKV.HINT`` (sloppy quorum's fallback side) is not a store command: it
goes to this node's hint log (``hints.HintedHandoff.take``, set as
``take_hints`` when hinted handoff runs).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable

import trio

from ...cluster.batch import Levels
from ...cluster.forwarded_exec import FORWARD_EXEC, ForwardedExec, decode
from ...commands.control import ServerControl
from ...commands.peer.access import Access, allowed
from ...commands.session import Session
from ...commands.wire import LINE, RESP, WireProtocol
from ...http.wire import HTTP
from ...protocol.replies import Error, NullArray
from ...store.engine import Job, Store
from ..dispatch import Dispatcher
from .internal_jobs import internal_job, internal_session
from .internal_tables import CLOCK_NAME, with_clock

FORWARD = b"tkv.forward"
HINT = b"tkv.hint"
FORWARD_FAILED = "TRYAGAIN forwarding to {peer} failed: {reason}"


def forward_label(session: Session) -> bytes:
    """TKV.FORWARD's ``wire`` field for a request of ``session``."""
    label = session.wire.label.encode()
    return label + b":3" if session.protocol == 3 else label


def parse_forward_label(field: bytes) -> tuple[str, int]:
    """``forward_label``'s field back: (wire label, RESP version); ValueError if bad."""
    label, colon, version = field.decode(errors="replace").partition(":")
    if not colon:
        return label, 2
    if version != "3":
        raise ValueError("unknown RESP version")
    return label, 3


class BusSide:
    def __init__(
        self, store: Store, control: ServerControl, dispatcher: Dispatcher,
        client_job: Callable[..., Awaitable[None]],
    ) -> None:
        self.store = store
        self.control = control
        self.dispatcher = dispatcher
        # Coordinator.client_job(job, levels, forwarded=True).
        self.client_job = client_job
        # Sloppy quorum's fallback side, HintedHandoff.take (None: this node
        # keeps no hints; TKV.HINT's spec then answers an error).
        self.take_hints: Callable[[list[bytes]], Awaitable[object]] | None = None
        # The session forwarded requests from one bus connection run in, per wire and RESP version.
        self._forward_sessions: weakref.WeakKeyDictionary[Session, dict[tuple[str, int], Session]] = (
            weakref.WeakKeyDictionary()
        )
        self._wires = {RESP.label: RESP, LINE.label: LINE, HTTP.label: HTTP}

    def add_wire(self, wire: WireProtocol) -> None:
        """A protocol whose requests may be forwarded (HTTP registers itself)."""
        self._wires[wire.label] = wire

    async def bus_job(self, job: Job) -> None:
        session = job.session
        forwards: dict[tuple[bytes, bytes], list[int]] = defaultdict(list)
        local: list[int] = []
        transactions: list[int] = []
        # TKV.HINT: held in this node's hint log (hints.py), not a store command.
        hints: list[int] = []
        for index, args in enumerate(job.requests):
            name = args[0].lower() if args else b""
            if len(args) >= 4 and name == FORWARD and allowed(session, Access.PEER):
                forwards[(args[1], args[2])].append(index)
            elif name == FORWARD_EXEC and allowed(session, Access.PEER):
                transactions.append(index)
            elif name == HINT and self.take_hints is not None and allowed(session, Access.PEER):
                hints.append(index)
            else:
                local.append(index)
        if not forwards and not transactions and not hints:
            await self.dispatcher.submit(job)
            return
        replies: list[object] = [None] * len(job.requests)
        # Replies encoded as RESP3 on the bus (forwarded for RESP3 clients).
        resp3: list[int] = []

        async def run_local() -> None:
            sub = Job(session, job.table, [job.requests[i] for i in local], job.received_at, protocol=job.protocol)
            await self.dispatcher.submit(sub)
            for index, reply in zip(local, sub.replies):
                replies[index] = reply

        async def run_forwarded(label: bytes, level_text: bytes, indexes: list[int]) -> None:
            try:
                wire_label, protocol = parse_forward_label(label)
                wire = self._wires.get(wire_label)
                level = Levels.parse(level_text.decode(errors="replace"))
            except ValueError:
                wire = None
            if wire is None:
                for index in indexes:
                    replies[index] = Error("ERR TKV.FORWARD: unknown wire or level")
                return
            forward_session = self._forward_session(session, wire, protocol)
            sub = internal_job(forward_session, wire.table, [job.requests[i][3:] for i in indexes],
                               received_at=job.received_at)
            await self.client_job(sub, level, forwarded=True)
            for index, reply in zip(indexes, sub.replies):
                replies[index] = wire.reply_to_bus(reply)
            if protocol == 3:
                resp3.extend(indexes)

        async def run_transaction(index: int) -> None:
            try:
                forwarded = decode(job.requests[index])
                wire_label, protocol = parse_forward_label(forwarded.wire)
                wire = self._wires.get(wire_label)
                level = Levels.parse(forwarded.level.decode(errors="replace"))
            except ValueError as error:
                replies[index] = Error(f"ERR TKV.FORWARD.EXEC: {error}")
                return
            if wire is None:
                replies[index] = Error("ERR TKV.FORWARD.EXEC: unknown wire")
                return
            replies[index] = await self._transaction(session, wire, protocol, level, forwarded, job.received_at)
            if protocol == 3:
                resp3.append(index)

        async def run_hint(index: int) -> None:
            assert self.take_hints is not None
            replies[index] = await self.take_hints(job.requests[index])

        async with trio.open_nursery() as nursery:
            if local:
                nursery.start_soon(run_local)
            for index in hints:
                nursery.start_soon(run_hint, index)
            for (label, level_text), indexes in forwards.items():
                nursery.start_soon(run_forwarded, label, level_text, indexes)
            for index in transactions:
                nursery.start_soon(run_transaction, index)
        job.replies = replies
        if resp3:
            job.protocol_changes = _encoded_as_resp3(resp3, job.protocol)

    async def _transaction(
        self, bus_session: Session, wire: WireProtocol, protocol: int, level: Levels,
        forwarded: ForwardedExec, received_at: float,
    ) -> object:
        """Run a forwarded transaction in a session of its own; EXEC's reply."""
        session = self._peer_session(bus_session, wire, protocol)
        if forwarded.watched:
            keys = [key for key, _clock in forwarded.watched]
            check = internal_job(session, with_clock(wire.table),
                                 [[b"watch", *keys], *([CLOCK_NAME, key] for key in keys)], received_at=received_at)
            await self.dispatcher.submit(check)
            seen = check.replies[1:]
            if len(seen) != len(keys) or any(
                held != clock for held, (_key, clock) in zip(seen, forwarded.watched)
            ):
                # A watched key changed since the client watched it.
                await self.dispatcher.submit(internal_job(session, wire.table, [[b"unwatch"]], received_at=received_at))
                return NullArray()
        requests = [[b"multi"], *(list(command) for command in forwarded.commands), [b"exec"]]
        run = internal_job(session, wire.table, requests, received_at=received_at)
        await self.client_job(run, level, forwarded=True)
        if len(run.replies) != len(requests):
            return Error("ERR TKV.FORWARD.EXEC: the transaction did not run")
        return run.replies[-1]

    def _forward_session(self, bus_session: Session, wire: WireProtocol, protocol: int) -> Session:
        sessions = self._forward_sessions.setdefault(bus_session, {})
        session = sessions.get((wire.label, protocol))
        if session is None:
            session = sessions[(wire.label, protocol)] = self._peer_session(bus_session, wire, protocol)
        return session

    def _peer_session(self, bus_session: Session, wire: WireProtocol, protocol: int) -> Session:
        """A session for a peer's forwarded requests (``internal_session``),
        named by the peer's bus connection."""
        return internal_session(self.store, self.control, address=bus_session.address,
                                local_address=bus_session.local_address, wire=wire, protocol=protocol)


def _encoded_as_resp3(indexes: list[int], protocol: int) -> list[tuple[int, int]]:
    """A bus job's ``protocol_changes`` that encode the replies at
    ``indexes`` as RESP3 and every other one in the bus's ``protocol``."""
    chosen = set(indexes)
    changes: dict[int, int] = {}
    for index in sorted(chosen):
        changes[index] = 3
        if index + 1 not in chosen:
            changes[index + 1] = protocol
    return sorted(changes.items())
