"""Replication to one peer: a coordinator job's ``TKV.REPL.PUT`` requests
for that peer go out as one batch on its link, without a task or a wait.

The coordinator hands ``send`` every request one job of its owes the peer
(``requests[i]`` for ``writes[i]``, each encoded once by ``repl_put``
however many peers it goes to); they are queued on the peer's link as one
batch (``PeerLink.send_nowait``: the link's writer sends whatever is
queued in one send, so the batches of concurrent jobs still travel
together), and when the peer's replies come back the link's reader records
each answer on its ``Write`` (late answers too: WAIT counts them). No task
per batch or per peer waits for the replies, so replication costs no task
switch of its own.

Rules: a batch is refused whole when the peer has no connected link or
its link's queue is full (``link.Link`` rule 6: the peer is that far
behind; its copy is repaired later by a read): ``send`` returns False and
the coordinator counts those writes failed for that peer at once, so a
client never waits on a full queue beyond its timeout. A link failure
fails every request of the batches queued or in flight on it.

Hints (``hints.py``): with a ``hint`` callback, the requests a peer did
not ack for sure (a refused batch, a failed link, an error answer) are
handed to it, to be replayed when the peer is seen up.
"""

from __future__ import annotations

from collections.abc import Callable

from ...cluster.ring import Member
from ...protocol.replies import Error
from .write_acks import Write

OnReplies = Callable[[list[object] | None], None]
# PeerLink.send_nowait: (encoded requests, how many, on_replies) -> queued.
SendNowait = Callable[[bytes, int, OnReplies], bool]
# HintedHandoff.hint: (the peer, the requests it did not ack).
Hint = Callable[[Member, list[bytes]], None]

# A three-argument request's header and its first argument, TKV.REPL.PUT.
_PUT_HEAD = b"*3\r\n$12\r\nTKV.REPL.PUT\r\n"


def repl_put(key: bytes, clock: bytes) -> bytes:
    """``TKV.REPL.PUT key clock``, encoded (``encode_requests``' bytes)."""
    return b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n" % (_PUT_HEAD, len(key), key, len(clock), clock)


class PeerReplicator:
    """Sends one peer its share of each replicated job."""

    __slots__ = ("member", "_send_nowait", "_hint")

    def __init__(self, member: Member, send_nowait: SendNowait, hint: Hint | None = None) -> None:
        self.member = member
        self._send_nowait = send_nowait
        self._hint = hint

    def send(self, requests: list[bytes], writes: list[Write]) -> bool:
        """Queue ``requests`` (encoded; ``requests[i]`` replicates part of
        ``writes[i]``) as one batch; False (nothing queued) when refused."""
        member = self.member
        hint = self._hint

        def answered(answers: list[object] | None) -> None:
            if answers is None:
                for write in writes:
                    write.answered(member, False)
                if hint is not None:
                    hint(member, requests)
                return
            failed: list[bytes] | None = None
            for index, (write, answer) in enumerate(zip(writes, answers)):
                ok = answer is not None and type(answer) is not Error
                write.answered(member, ok)
                if not ok and hint is not None:
                    if failed is None:
                        failed = []
                    failed.append(requests[index])
            if failed and hint is not None:
                hint(member, failed)

        data = requests[0] if len(requests) == 1 else b"".join(requests)
        if self._send_nowait(data, len(requests), answered):
            return True
        if hint is not None:
            hint(member, requests)
        return False
