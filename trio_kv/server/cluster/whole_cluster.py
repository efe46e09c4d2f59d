"""HTTP's ``/keys`` and key count over the whole cluster.

Cluster clients fan SCAN and DBSIZE out themselves (each node answers for
the partitions it is listed first for); an HTTP client cannot, so its
SCAN and DBSIZE go to every live member here. The cursor packs the
member: the member's own cursor times the member count plus the member's
index in ring order; 0 starts at the first member and means "done".
"""

from __future__ import annotations

from ...cluster.ring import Member
from ...protocol.replies import Error
from ...store.engine import Job
from ..dispatch import Dispatcher
from .forwarding import FORWARD, FORWARD_FAILED
from .link import LinkError
from .node import ClusterNode


async def whole_cluster(node: ClusterNode, dispatcher: Dispatcher, job: Job, args: list[bytes]) -> object:
    """HTTP's SCAN and DBSIZE over every live member, each answering for
    the partitions it is first for. SCAN's cursor is the member's own
    cursor times the member count plus the member's index (in ring
    order): 0 starts at the first member and means "done"."""
    view = node.view()
    members = view.ring.members
    count = len(members)
    if args[0].lower() == b"dbsize":
        totals = [await _run_on(node, dispatcher, job, member, args) for member in members if member in view.up]
        errors = [total for total in totals if type(total) is Error]
        return errors[0] if errors else sum(total for total in totals if isinstance(total, int))
    if len(args) < 2 or not args[1].isdigit():
        return await _run_on(node, dispatcher, job, view.myself, args)
    index, cursor = int(args[1]) % count, int(args[1]) // count
    while True:
        if members[index] not in view.up:
            reply: object = [b"0", []]
        else:
            reply = await _run_on(node, dispatcher, job, members[index], [args[0], b"%d" % cursor, *args[2:]])
        if type(reply) is Error or not isinstance(reply, list) or len(reply) != 2:
            return reply
        next_cursor = int(reply[0])
        if next_cursor:
            return [b"%d" % (next_cursor * count + index), reply[1]]
        if index + 1 == count:
            return [b"0", reply[1]]
        if reply[1] or members[index + 1] in view.up:
            return [b"%d" % (index + 1), reply[1]]
        index, cursor = index + 1, 0

async def _run_on(node: ClusterNode, dispatcher: Dispatcher, job: Job, member: Member, args: list[bytes]) -> object:
    """One keyless request on ``member`` (here, or forwarded)."""
    if member == node.myself:
        sub = Job(job.session, job.table, [args], job.received_at, protocol=job.protocol)
        await dispatcher.submit(sub)
        return sub.replies[0] if sub.replies else None
    try:
        return await node.links[member].request(
            [FORWARD, job.session.wire.label.encode(), b"QUORUM", *args]
        )
    except LinkError as error:
        return Error(FORWARD_FAILED.format(peer=member.address, reason=error))
