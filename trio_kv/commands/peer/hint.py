"""TKV.HINT target key clock [key clock ...]: sloppy quorum's fallback
side. A coordinator whose write could not reach ``target`` (a member of
the key's preference list believed down) asks this node, a healthy node
past the preference list, to hold the pairs for it; the reply (an array
with a ``:1`` per pair) means they are in this node's hint log for
``target``, durable under this node's appendfsync, and will be handed to
``target`` (as ``TKV.REPL.PUT``) once it is seen up.

The hint log is the async shell's (server/cluster/hints.py,
``HintedHandoff.take``): the coordinator takes these requests out of a
bus connection's batch before the table runs them. The handler here runs
only when it did not: this node keeps no hints (``--cluster-hinted-handoff
no`` or ``--appendonly no``), or the access check refused first. Its
error makes the coordinator count the pairs failed and hint them itself.
"""

from __future__ import annotations

from ...protocol.replies import Error
from ..session import Session

NO_HINTS = Error("ERR TKV.HINT: this node keeps no hints (hinted handoff off or --appendonly no)")


def cmd_hint(session: Session, args: list[bytes]) -> object:
    return NO_HINTS
