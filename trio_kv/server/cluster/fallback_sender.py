"""Sloppy quorum's sending side: the pairs a job owes a preference-list
member that cannot get them go to the member's fallback as
``TKV.HINT target key clock [key clock ...]`` (``--cluster-sloppy-quorum
yes``; the plan names the fallbacks, ``cluster/fallbacks.py``).

One request per (fallback, target) per job, queued on the fallback's
link without a task or a wait (``PeerLink.send_nowait``), as the
replicator's puts. The fallback answers once the hints are durable under
its appendfsync (``hints.HintedHandoff.take``): an array with a ``:1``
per pair, or one error for the whole request. Each pair's answer is
recorded on its ``Write`` *as the target's* (``Write.answered(target,
ok)``): the fallback stands in for the target, once per write, so W still
counts distinct nodes holding the write.

A refused request (no connected link, a full queue), a failed link or an
error answer: the pairs count as failed for the target and are hinted on
this node (``hint``), as a write the target missed without sloppy quorum.
A sloppy write is never sent to a fallback twice: the fallback is not
retried elsewhere (the write's plan gave each down member one).
"""

from __future__ import annotations

from collections.abc import Callable

from ...cluster.ring import Member
from ...protocol.replies import Error
from .replicator import Hint, SendNowait, repl_put
from .write_acks import Write


def hint_request(target: Member, pairs: list[tuple[bytes, bytes]]) -> bytes:
    """``TKV.HINT target k1 c1 k2 c2 ...``, encoded."""
    address = target.address.encode()
    parts = [b"*%d\r\n$8\r\nTKV.HINT\r\n$%d\r\n%b\r\n" % (2 + 2 * len(pairs), len(address), address)]
    parts += [b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(key), key, len(clock), clock) for key, clock in pairs]
    return b"".join(parts)


class FallbackSender:
    """Sends a job's pairs for down members to their fallbacks (see the module docstring)."""

    def __init__(self, send_nowait: Callable[[Member], SendNowait | None], hint: Hint | None,
                 counts: dict[str, int]) -> None:
        # A fallback's link's send_nowait (None: no link to it).
        self._send_nowait = send_nowait
        # HintedHandoff.hint: where a failed fallback's pairs go.
        self._hint = hint
        # The coordinator's counters: fallback_pairs sent, fallback_failed.
        self.counts = counts

    def send(self, fallback: Member, target: Member, pairs: list[tuple[bytes, bytes]], writes: list[Write]) -> None:
        """Hand ``pairs`` (``pairs[i]`` for ``writes[i]``) to ``fallback`` for ``target``."""
        self.counts["fallback_pairs"] += len(pairs)
        send_nowait = self._send_nowait(fallback)

        def answered(answers: list[object] | None) -> None:
            reply = None if answers is None else answers[0]
            if type(reply) is list and len(reply) == len(pairs):
                replies = reply
            else:
                replies = [reply] * len(pairs)  # the link failed, or one error for the whole request
            failed: list[tuple[bytes, bytes]] = []
            for pair, write, answer in zip(pairs, writes, replies):
                ok = answer is not None and type(answer) is not Error
                write.answered(target, ok)
                if not ok:
                    failed.append(pair)
            self._failed(target, failed)

        if send_nowait is None or not send_nowait(hint_request(target, pairs), 1, answered):
            for write in writes:
                write.answered(target, False)
            self._failed(target, pairs)

    def _failed(self, target: Member, pairs: list[tuple[bytes, bytes]]) -> None:
        if not pairs:
            return
        self.counts["fallback_failed"] += len(pairs)
        if self._hint is not None:
            self._hint(target, [repl_put(key, clock) for key, clock in pairs])
