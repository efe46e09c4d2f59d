"""Replication to one peer: the ``TKV.REPL.PUT`` pairs a coordinator owes
a peer go out on its link without a task or a wait, gathered into one
multi-key request per send.

The coordinator hands ``send`` the (key, clock) pairs one job of its owes
the peer (``pairs[i]`` for ``writes[i]``). They join the peer's *open* put:
the request queued on the peer's link (``PeerLink.send_nowait``) that the
link's writer has not taken yet; only when there is none (or it holds
``MAX_PAIRS_PER_PUT``) is a new one queued. The writer encodes a put when
it takes it (``_Put.seal``: ``TKV.REPL.PUT k1 c1 k2 c2 ...``), so the
writes of every job whose hop ended before the writer ran (the dispatcher
calls each job's ``on_applied`` in one go) travel as one request: the peer
parses one request, runs one command (one lock hold, one log record) and
sends one reply, an array with each pair's own answer
(commands/peer/repl.py), instead of one of each per key. When the reply
comes back the link's reader records each pair's answer on its ``Write``
(late answers too: WAIT counts them). No task per put or per peer waits
for the replies, so replication costs no task switch of its own.

Rules: a put is refused whole when the peer has no connected link or its
link's queue is full (``link.Link`` rule 6: the peer is that far behind;
its copy is repaired later by a read): ``send`` returns False and the
coordinator counts those writes failed for that peer at once, so a client
never waits on a full queue beyond its timeout. Pairs that join an open
put are never refused (they take no queue room: a put is one request of
the link's bounds, at most ``MAX_PAIRS_PER_PUT`` pairs). A link failure
fails every pair of the puts queued or in flight on it. An error answer
fails the pairs it answers (an error for the whole request, all of them).

Hints (``hints.py``): with a ``hint`` callback, the pairs a peer did not
ack for sure (a refused put, a failed link, an error answer) are handed
to it, each as its own one-pair ``TKV.REPL.PUT`` (``repl_put``), to be
replayed when the peer is seen up. With a ``divert`` callback (sloppy
quorum), the pairs of a put whose link failed go to it instead: the
coordinator hands them to fallbacks, whose answers decide their writes
for this peer (an error answer is still failed and hinted: the peer is
up and refused them).
"""

from __future__ import annotations

from collections.abc import Callable

from ...cluster.ring import Member
from ...protocol.replies import Error
from .write_acks import Write

OnReplies = Callable[[list[object] | None], None]
# PeerLink.send_nowait: (encoded requests or their encoder, how many, on_replies) -> queued.
SendNowait = Callable[[bytes | Callable[[], bytes], int, OnReplies], bool]
# HintedHandoff.hint: (the peer, the requests it did not ack).
Hint = Callable[[Member, list[bytes]], None]
# Coordinator._divert_failed: (the peer, the pairs of a failed put, their writes).
Divert = Callable[[Member, list[tuple[bytes, bytes]], list[Write]], None]

# Most (key, clock) pairs in one put: a put is one request of the link's
# bounds (link.Link rule 2), so this keeps them bounds on pairs too.
MAX_PAIRS_PER_PUT = 64

# A three-argument request's header and its first argument, TKV.REPL.PUT.
_PUT_HEAD = b"*3\r\n$12\r\nTKV.REPL.PUT\r\n"


def repl_put(key: bytes, clock: bytes) -> bytes:
    """``TKV.REPL.PUT key clock``, encoded (``encode_requests``' bytes)."""
    return b"%b$%d\r\n%b\r\n$%d\r\n%b\r\n" % (_PUT_HEAD, len(key), key, len(clock), clock)


def repl_put_many(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """``TKV.REPL.PUT k1 c1 k2 c2 ...``, encoded (one pair: ``repl_put``'s bytes)."""
    if len(pairs) == 1:
        return repl_put(*pairs[0])
    parts = [b"*%d\r\n$12\r\nTKV.REPL.PUT\r\n" % (1 + 2 * len(pairs))]
    parts += [b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(clock), clock) for key, clock in pairs]
    return b"".join(parts)



class PeerReplicator:
    """Sends one peer the pairs its writes owe it (one put per send of the link)."""

    __slots__ = ("member", "_send_nowait", "_hint", "_divert", "_open")

    def __init__(self, member: Member, send_nowait: SendNowait, hint: Hint | None = None,
                 divert: Divert | None = None) -> None:
        self.member = member
        self._send_nowait = send_nowait
        self._hint = hint
        # Sloppy quorum: where the pairs of a put whose link failed go
        # instead (their writes answered by fallbacks; None: failed and hinted).
        self._divert = divert
        # The put queued on the link and not yet taken by its writer (None: none).
        self._open: _Put | None = None

    def send(self, pairs: list[tuple[bytes, bytes]], writes: list[Write], *, hint_refused: bool = True) -> bool:
        """Queue ``pairs`` (``pairs[i]`` replicates part of ``writes[i]``),
        in the open put if there is one with room; False (nothing queued,
        the pairs hinted unless ``hint_refused`` is False: sloppy quorum
        hands them to a fallback instead) when refused."""
        put = self._open
        if put is not None and len(put.pairs) + len(pairs) <= MAX_PAIRS_PER_PUT:
            put.pairs += pairs
            put.writes += writes
            return True
        put = _Put(self, pairs, writes)
        if self._send_nowait(put.seal, 1, put.answered):
            self._open = put
            return True
        if hint_refused:
            self.hint(pairs)
        return False

    def hint(self, pairs: list[tuple[bytes, bytes]]) -> None:
        """The peer did not ack ``pairs`` for sure: hand them to the hints, if any."""
        if self._hint is not None and pairs:
            self._hint(self.member, [repl_put(key, clock) for key, clock in pairs])


class _Put:
    """One ``TKV.REPL.PUT`` of one or more pairs, queued on a peer's link."""

    __slots__ = ("replicator", "pairs", "writes")

    def __init__(self, replicator: PeerReplicator, pairs: list[tuple[bytes, bytes]], writes: list[Write]) -> None:
        self.replicator = replicator
        self.pairs = list(pairs)
        self.writes = list(writes)

    def _close(self) -> None:
        """No more pairs join this put (it is being sent, or failed first)."""
        if self.replicator._open is self:
            self.replicator._open = None

    def seal(self) -> bytes:
        """The link's writer takes the put: its bytes, and no pair joins it now."""
        self._close()
        return repl_put_many(self.pairs)

    def answered(self, answers: list[object] | None) -> None:
        """The link's reader: the put's reply (None: the link failed first)."""
        self._close()
        replicator = self.replicator
        member = replicator.member
        writes = self.writes
        if answers is None:
            if replicator._divert is not None:
                replicator._divert(member, self.pairs, writes)
                return
            for write in writes:
                write.answered(member, False)
            replicator.hint(self.pairs)
            return
        (reply,) = answers
        if len(writes) == 1:
            replies = answers
        elif type(reply) is list and len(reply) == len(writes):
            replies = reply
        else:
            replies = [reply] * len(writes)  # one answer for the whole request (an error)
        failed: list[tuple[bytes, bytes]] | None = None
        for index, (write, answer) in enumerate(zip(writes, replies)):
            ok = answer is not None and type(answer) is not Error
            write.answered(member, ok)
            if not ok:
                if failed is None:
                    failed = []
                failed.append(self.pairs[index])
        if failed is not None:
            replicator.hint(failed)
