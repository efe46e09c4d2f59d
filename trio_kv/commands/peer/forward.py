"""TKV.FORWARD wire level command args...: a peer hands this node a client
request to coordinate (the key's preference list holds this node and not
the peer). The coordinator (server/cluster/coordinator.py) takes these
requests out of a bus connection's batch before the table runs them; the
handler here runs only when it did not (a cluster without a coordinator,
or a request the access check refuses first).
"""

from __future__ import annotations

from ...protocol.replies import Error
from ..session import Session

NOT_COORDINATING = Error("ERR TKV.FORWARD: this node has no coordinator running")


def cmd_forward(session: Session, args: list[bytes]) -> object:
    return NOT_COORDINATING
