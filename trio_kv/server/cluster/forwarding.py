"""The receiving side of forwarding: jobs from a peer's bus connection.

A node that does not replicate a key forwards the client's request whole
as ``TKV.FORWARD wire level cmd...`` to the key's first live member
(``Coordinator._forward``). Here such requests are coordinated as a
client's would be (``client_job`` with ``forwarded=True``: never
forwarded again, so no loops), in a session of their own per bus
connection and wire (the wire decides the reply shapes the caller's
client expects); the other requests of a bus job are replica commands
and run as they are.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable

import trio

from ...cluster.batch import Levels
from ...commands.control import ServerControl
from ...commands.peer.access import Access, allowed
from ...commands.session import Session
from ...commands.wire import LINE, RESP, WireProtocol
from ...http.wire import HTTP
from ...protocol.replies import Error
from ...store.engine import Job, Store
from ..client_session import next_client_id
from ..dispatch import Dispatcher

FORWARD = b"tkv.forward"
FORWARD_FAILED = "TRYAGAIN forwarding to {peer} failed: {reason}"


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
        # The session forwarded requests from one bus connection run in, per wire.
        self._forward_sessions: weakref.WeakKeyDictionary[Session, dict[str, Session]] = weakref.WeakKeyDictionary()
        self._wires = {RESP.label: RESP, LINE.label: LINE, HTTP.label: HTTP}

    def add_wire(self, wire: WireProtocol) -> None:
        """A protocol whose requests may be forwarded (HTTP registers itself)."""
        self._wires[wire.label] = wire

    async def bus_job(self, job: Job) -> None:
        session = job.session
        forwards: dict[tuple[bytes, bytes], list[int]] = defaultdict(list)
        local: list[int] = []
        for index, args in enumerate(job.requests):
            if len(args) >= 4 and args[0].lower() == FORWARD and allowed(session, Access.PEER):
                forwards[(args[1], args[2])].append(index)
            else:
                local.append(index)
        if not forwards:
            await self.dispatcher.submit(job)
            return
        replies: list[object] = [None] * len(job.requests)

        async def run_local() -> None:
            sub = Job(session, job.table, [job.requests[i] for i in local], job.received_at, protocol=job.protocol)
            await self.dispatcher.submit(sub)
            for index, reply in zip(local, sub.replies):
                replies[index] = reply

        async def run_forwarded(label: bytes, level_text: bytes, indexes: list[int]) -> None:
            wire = self._wires.get(label.decode(errors="replace"))
            try:
                level = Levels.parse(level_text.decode(errors="replace"))
            except ValueError:
                wire = None
            if wire is None:
                for index in indexes:
                    replies[index] = Error("ERR TKV.FORWARD: unknown wire or level")
                return
            forward_session = self._forward_session(session, wire)
            sub = Job(forward_session, wire.table, [job.requests[i][3:] for i in indexes], job.received_at)
            await self.client_job(sub, level, forwarded=True)
            for index, reply in zip(indexes, sub.replies):
                replies[index] = wire.reply_to_bus(reply)

        async with trio.open_nursery() as nursery:
            if local:
                nursery.start_soon(run_local)
            for (label, level_text), indexes in forwards.items():
                nursery.start_soon(run_forwarded, label, level_text, indexes)
        job.replies = replies

    def _forward_session(self, bus_session: Session, wire: WireProtocol) -> Session:
        sessions = self._forward_sessions.setdefault(bus_session, {})
        session = sessions.get(wire.label)
        if session is None:
            session = Session(
                next_client_id(), self.store, self.control, wire=wire,
                address=bus_session.address, local_address=bus_session.local_address,
            )
            session.authenticated = True
            sessions[wire.label] = session
        return session
