"""Hinted handoff's async side (server/cluster/hints.py) against a fake
node and peer link: hints gathered on the event loop reach the files in
one write; a target seen up gets them in order and its files are deleted
only after every request was acked; a refused batch, a failed link or an
error answer keeps them for the next try; a down target gets nothing; the
in-memory part counts against the size bound."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.server.cluster import hints as hints_module
from trio_kv.server.cluster.hint_log import HintFiles
from trio_kv.server.cluster.hints import HintedHandoff
from trio_kv.server.cluster.replicator import repl_put

MYSELF = Member("127.0.0.1", 7001)
PEER = Member("127.0.0.2", 7001)


class FakeLink:
    """Answers each batch as ``answer`` says: "ok", "error", "fail" (link broke) or "refuse"."""

    def __init__(self) -> None:
        self.answer = "ok"
        self.connected = True
        self.received: list[bytes] = []

    def send_nowait(self, data: bytes, count: int, on_replies) -> bool:
        if self.answer == "refuse":
            return False
        self.received.append(data)
        if self.answer == "fail":
            on_replies(None)
        elif self.answer == "error":
            on_replies([1] * (count - 1) + [Error("ERR invalid clock: no")])
        else:
            on_replies([1] * count)
        return True


class FakeNode:
    def __init__(self, up: bool) -> None:
        self.link = FakeLink()
        self.links = {PEER: self.link}
        self.view_changed = trio.Event()
        self.set_up(up)

    def set_up(self, up: bool) -> None:
        members = (MYSELF, PEER)
        self._view = SimpleNamespace(myself=MYSELF, ring=SimpleNamespace(members=members),
                                     up=frozenset(members if up else (MYSELF,)))
        changed, self.view_changed = self.view_changed, trio.Event()
        changed.set()

    def view(self):
        return self._view


def _handoff(tmp_path, node: FakeNode, max_bytes: int = 1 << 20) -> HintedHandoff:
    files = HintFiles(str(tmp_path / "hints"), max_bytes=max_bytes, window_seconds=3600)
    files.open()
    return HintedHandoff(node, files)


def _requests(count: int) -> list[bytes]:
    return [repl_put(f"key{index}".encode(), b"state") for index in range(count)]


async def test_hints_are_written_by_the_writer_and_replayed_in_order_then_deleted(tmp_path) -> None:
    node = FakeNode(up=False)
    handoff = _handoff(tmp_path, node)
    requests = _requests(600)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run_writer)
            for first in range(0, 600, 100):
                handoff.hint(PEER, requests[first : first + 100])
            await handoff.flush()
            assert handoff.statistics()["written"] == 600
            assert handoff.pending()[PEER.address][0] == 600
            nursery.start_soon(handoff.run_replayer)
            await trio.sleep(0.05)
            assert node.link.received == []  # down: nothing sent
            node.set_up(True)
            while handoff.statistics()["replayed"] < 600:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert b"".join(node.link.received) == b"".join(requests)
    assert all(len(batch) <= hints_module.REPLAY_BATCH * max(map(len, requests)) for batch in node.link.received)
    assert handoff.pending() == {}
    assert not handoff.files.has_hints(PEER.address)


async def test_an_unacked_replay_keeps_the_hints_for_the_next_try(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(hints_module, "REFUSED_RETRIES", 2)
    node = FakeNode(up=True)
    handoff = _handoff(tmp_path, node)
    requests = _requests(10)
    with trio.fail_after(10):
        handoff.hint(PEER, requests)
        for answer in ("refuse", "fail", "error"):
            node.link.answer = answer
            assert not await handoff.replay(PEER)
            assert handoff.pending()[PEER.address][0] == 10, answer
        assert handoff.statistics()["replay_failed"] == 3
        node.link.answer = "ok"
        node.link.received.clear()
        assert await handoff.replay(PEER)
    assert node.link.received == [b"".join(requests)]
    assert handoff.pending() == {}
    assert handoff.statistics()["replayed"] == 10


async def test_hints_waiting_in_memory_count_against_the_size_bound(tmp_path) -> None:
    node = FakeNode(up=False)
    requests = _requests(100)
    handoff = _handoff(tmp_path, node, max_bytes=10 * (len(requests[0]) + 16))
    handoff.hint(PEER, requests)
    statistics = handoff.statistics()
    assert statistics["dropped_full"] == 90
    assert statistics["pending_records"] == 10
    with trio.fail_after(10):
        await handoff.flush()
    # On disk the file's header takes room too: what no longer fits is dropped there.
    statistics = handoff.statistics()
    assert statistics["written"] + statistics["dropped_full"] == 100
    assert statistics["pending_records"] == statistics["written"]
