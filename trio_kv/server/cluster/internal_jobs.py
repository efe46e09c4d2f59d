"""The sessions and jobs the cluster makes for itself: a read's repair of
this node's copy (``read_quorum``), anti-entropy's local side
(``anti_entropy``), a peer's forwarded requests and transactions
(``forwarding``). One factory for all of them, so they are made alike.

Rules:

* ``Job.received_at`` is ``time.perf_counter()``, the clock a client job is
  stamped with (``server.connection`` stamps it when the request's bytes are
  read) and the one the engine subtracts it from for the latency stats
  (INFO latencystats, /metrics). Never ``trio.current_time()``: Trio's clock
  has an offset of its own (random, hours in production; a test's mock
  clock starts near 0), so every internal command's latency would be off by
  that much. A job made for a request that came in on a connection keeps
  that request's ``received_at`` (``internal_job(..., received_at=...)``).
* An internal session is authenticated (it runs for this node, not for a
  client) and gets a client id from the process's one sequence
  (``next_client_id``), so no two sessions share one; ``address`` says
  whose work it is (``cluster``, ``anti-entropy``, or the peer's address).
"""

from __future__ import annotations

import time
from ...commands.control import ServerControl
from ...commands.session import Session
from ...commands.table import CommandTable
from ...commands.wire import RESP, WireProtocol
from ...store.engine import Job, Store
from ..client_session import next_client_id


def internal_session(
    store: Store, control: ServerControl, *, address: str, local_address: str = "",
    wire: WireProtocol = RESP, protocol: int = 2,
) -> Session:
    """A session for work this node does itself (see the module's rules)."""
    session = Session(next_client_id(), store, control, wire=wire, address=address, local_address=local_address)
    session.authenticated = True
    session.protocol = protocol
    return session


def internal_job(
    session: Session, table: CommandTable, requests: list[list[bytes]], *,
    received_at: float | None = None, protocol: int | None = None,
) -> Job:
    """A job of ``requests`` in ``session``, received now
    (``time.perf_counter()``, as a client's) unless ``received_at`` says
    when its requests came in; in the session's RESP version unless
    ``protocol`` says otherwise."""
    return Job(
        session, table, requests,
        time.perf_counter() if received_at is None else received_at,
        protocol=session.protocol if protocol is None else protocol,
    )
