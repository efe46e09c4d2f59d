"""``server/cluster/peer_link.py`` rule 4, without a connection: while the
owner believes the peer down a request fails at once with ``LinkDown``;
while it believes the peer up (the link only reconnecting) a request waits
for the connection, and fails as soon as the owner marks the peer down.
The wait with a connection that comes back is the simulated cluster's
``tests/cluster_sim/test_sim_link_backoff.py``."""

from __future__ import annotations

import pytest
import trio

from trio_kv.cluster.ring import Member
from trio_kv.server.cluster.link import LinkDown
from trio_kv.server.cluster.peer_link import PeerLink

PEER = Member("10.0.0.2", 7001)


def unstarted_link() -> PeerLink:
    # Never run: it never connects (the owner is never asked anything).
    return PeerLink(PEER, owner=None, node_timeout_seconds=2.0)  # type: ignore[arg-type]


async def test_a_peer_believed_up_is_waited_for_within_the_callers_scope(autojump_clock) -> None:
    link = unstarted_link()
    link.set_up(True)
    start = trio.current_time()
    with trio.fail_after(5), trio.move_on_after(1.5) as scope:
        await link.request_many([[b"TKV.REPL.GET", b"k"]])
    assert scope.cancelled_caught and trio.current_time() - start == 1.5


async def test_a_waiting_request_fails_once_the_peer_is_believed_down(autojump_clock) -> None:
    link = unstarted_link()
    link.set_up(True)
    outcome: list[str] = []

    async def ask() -> None:
        try:
            await link.request([b"TKV.REPL.GET", b"k"])
        except LinkDown:
            outcome.append(f"LinkDown after {trio.current_time() - start:g} s")

    start = trio.current_time()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.sleep(0.3)
            assert outcome == []
            link.set_up(False)
    assert outcome == ["LinkDown after 0.3 s"]


async def test_believed_down_a_request_fails_at_once_and_believed_up_again_it_waits(autojump_clock) -> None:
    link = unstarted_link()
    with trio.fail_after(5):
        for _ in range(2):
            link.set_up(False)
            start = trio.current_time()
            with pytest.raises(LinkDown):
                await link.request_many([[b"TKV.REPL.GET", b"k"]])
            with pytest.raises(LinkDown):
                await link.request([b"TKV.REPL.GET", b"k"])
            assert trio.current_time() == start
            link.set_up(True)
            with trio.move_on_after(0.5) as scope:
                await link.request([b"TKV.REPL.GET", b"k"])
            assert scope.cancelled_caught
