"""Hinted handoff's edge cases (server/cluster/hints.py, hint_log.py) and
sloppy quorum's two sides, against a fake node and peer link:

* a hint the target keeps answering with an error does not block the
  target's replay: the other files are replayed at once, the errored
  file is retried, and after ``ERROR_TRIES`` replays its errored hints
  are dropped (counted) and the rest of it counted replayed;
* the hints of a member removed from the ring are dropped (files deleted,
  counted), those of members still in it kept;
* TKV.HINT (``take``): the pairs are held for the target, fsynced before
  the reply under ``appendfsync always``, left for the everysec task
  otherwise; refused for a non-member, this node itself, or past the size
  bound; replayed to the target as TKV.REPL.PUT;
* the coordinator's ``FallbackSender``: a fallback's answers count as the
  target's acks; a refused or failed fallback counts them failed and
  hints them on the coordinator.
"""

from __future__ import annotations

from types import SimpleNamespace

import trio

from trio_kv.cluster.quorum import AckCounter, Outcome, RequestPlan
from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.server.cluster import hint_log
from trio_kv.server.cluster import hints as hints_module
from trio_kv.server.cluster.fallback_sender import FallbackSender, hint_request
from trio_kv.server.cluster.hint_log import HintFiles
from trio_kv.server.cluster.hints import HintedHandoff
from trio_kv.server.cluster.replicator import repl_put
from trio_kv.server.cluster.write_acks import Write, WriteBatch

MYSELF = Member("127.0.0.1", 7001)
PEER = Member("127.0.0.2", 7001)
GONE = Member("127.0.0.3", 7001)
FALLBACK = Member("127.0.0.4", 7001)
_HEAD = b"*3\r\n$12\r\nTKV.REPL.PUT\r\n"


class PoisonLink:
    """Acks every TKV.REPL.PUT except those whose bytes hold ``poison``: an error answer."""

    connected = True

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def send_nowait(self, data: bytes, count: int, on_replies) -> bool:
        requests = [_HEAD + piece for piece in data.split(_HEAD)[1:]]
        assert len(requests) == count
        self.received += requests
        on_replies([Error("ERR invalid clock: poison") if b"poison" in request else 1 for request in requests])
        return True


class FakeNode:
    def __init__(self, members: tuple[Member, ...], up: bool = True) -> None:
        self.link = PoisonLink()
        self.links = {PEER: self.link}
        self.view_changed = trio.Event()
        self.set_view(members, up)

    def set_view(self, members: tuple[Member, ...], up: bool) -> None:
        self._view = SimpleNamespace(myself=MYSELF, ring=SimpleNamespace(members=members),
                                     up=frozenset(members if up else (MYSELF,)))
        changed, self.view_changed = self.view_changed, trio.Event()
        changed.set()

    def view(self):
        return self._view


def _handoff(tmp_path, node: FakeNode, *, max_bytes: int = 1 << 20, fsync_policy: str = "no") -> HintedHandoff:
    files = HintFiles(str(tmp_path / "hints"), max_bytes=max_bytes, window_seconds=3600)
    files.open()
    return HintedHandoff(node, files, fsync_policy=fsync_policy)


def _requests(prefix: str, count: int) -> list[bytes]:
    return [repl_put(f"{prefix}{index}".encode(), b"state") for index in range(count)]


async def test_a_hint_answered_an_error_is_skipped_after_bounded_tries_and_blocks_nothing(tmp_path) -> None:
    node = FakeNode((MYSELF, PEER))
    handoff = _handoff(tmp_path, node)
    first = [*_requests("a", 3), repl_put(b"poison", b"state"), *_requests("b", 3)]
    second = _requests("c", 5)
    with trio.fail_after(10):
        handoff.hint(PEER, first)
        await handoff.flush()
        await trio.to_thread.run_sync(handoff.files.seal, PEER.address)
        handoff.hint(PEER, second)
        # The first try: the poisoned file stays, the next file is replayed anyway.
        assert not await handoff.replay(PEER)
        assert node.link.received == first + second
        assert handoff.statistics()["replayed"] == 5
        assert handoff.pending()[PEER.address][0] == len(first)
        for _try in range(2, hints_module.ERROR_TRIES):
            assert not await handoff.replay(PEER)
        assert handoff.pending()[PEER.address][0] == len(first)
        # The last try: the errored hint is dropped, the file's others count as replayed.
        assert await handoff.replay(PEER)
    statistics = handoff.statistics()
    assert statistics["dropped_error"] == 1
    assert statistics["replayed"] == 5 + len(first) - 1
    assert handoff.pending() == {}
    assert not handoff.files.has_hints(PEER.address)


async def test_the_hints_of_a_member_removed_from_the_ring_are_dropped(tmp_path) -> None:
    node = FakeNode((MYSELF, PEER, GONE), up=False)
    handoff = _handoff(tmp_path, node)
    with trio.fail_after(10):
        handoff.hint(GONE, _requests("g", 4))
        handoff.hint(PEER, _requests("p", 2))
        await handoff.flush()
        handoff.hint(GONE, _requests("h", 3))  # waiting in memory, not yet written
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run_replayer)
            await trio.sleep(0.05)
            assert set(handoff.pending()) == {GONE.address, PEER.address}
            node.set_view((MYSELF, PEER), up=False)  # GONE removed; PEER still down
            while handoff.statistics()["dropped_removed"] < 7:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert set(handoff.pending()) == {PEER.address}
    assert not handoff.files.has_hints(GONE.address)
    assert not list((tmp_path / "hints").glob("127.0.0.3*"))


async def test_take_holds_the_pairs_durably_and_they_are_replayed_to_the_target(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = hint_log.os.fsync
    monkeypatch.setattr(hint_log.os, "fsync", lambda descriptor: (synced.append(descriptor), real_fsync(descriptor)))
    node = FakeNode((MYSELF, PEER), up=False)
    handoff = _handoff(tmp_path, node, fsync_policy="always")
    with trio.fail_after(10):
        reply = await handoff.take([b"TKV.HINT", PEER.address.encode(), b"k1", b"c1", b"k2", b"c2"])
        assert reply == [1, 1]
        assert len(synced) == 2  # the file, and its directory (a new file)
        assert handoff.statistics()["held"] == 2
        assert handoff.pending()[PEER.address][0] == 2
        assert await handoff.replay(PEER)
    assert node.link.received == [repl_put(b"k1", b"c1"), repl_put(b"k2", b"c2")]


async def test_take_under_everysec_leaves_the_fsync_to_the_syncer(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = hint_log.os.fsync
    monkeypatch.setattr(hint_log.os, "fsync", lambda descriptor: (synced.append(descriptor), real_fsync(descriptor)))
    node = FakeNode((MYSELF, PEER), up=False)
    handoff = _handoff(tmp_path, node, fsync_policy="everysec")
    with trio.fail_after(10):
        assert await handoff.take([b"TKV.HINT", PEER.address.encode(), b"k", b"c"]) == [1]
        assert synced == []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run_syncer)
            while not synced:
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert handoff.files.sync_dirty() == 0  # nothing left dirty


async def test_take_refuses_strangers_itself_and_past_the_bound(tmp_path) -> None:
    node = FakeNode((MYSELF, PEER), up=False)
    handoff = _handoff(tmp_path, node, max_bytes=4096)
    with trio.fail_after(10):
        for target in (GONE, MYSELF):
            reply = await handoff.take([b"TKV.HINT", target.address.encode(), b"k", b"c"])
            assert type(reply) is Error and "TKVREFUSED" in str(reply), reply
        assert type(await handoff.take([b"TKV.HINT", b"nonsense", b"k", b"c"])) is Error
        assert type(await handoff.take([b"TKV.HINT", PEER.address.encode(), b"k"])) is Error
        big = await handoff.take([b"TKV.HINT", PEER.address.encode(), b"k", b"x" * 5000])
        assert type(big) is Error and "full" in str(big)
    assert handoff.statistics()["dropped_full"] == 1
    assert handoff.statistics()["held"] == 0
    assert handoff.pending() == {}


# -- the coordinator's side ---------------------------------------------------------


def _sloppy_writes(count: int) -> list[Write]:
    """Writes whose plan has PEER down with a fallback (MYSELF coordinates, W=2)."""
    batch = WriteBatch()
    # MYSELF is the one live member, PEER's fallback stands in for it, GONE has none (hinted here).
    plan = RequestPlan(targets=(MYSELF,), spares=(), skipped=(GONE,), needed=2, fallbacks=((PEER, FALLBACK),))
    writes = []
    for _ in range(count):
        counter = AckCounter(plan)
        counter.take_sends()
        write = Write(counter, lambda: None, batch, here=True)
        write.owed[PEER] = 1
        write.acked_here(MYSELF)
        writes.append(write)
    return writes


PAIRS = [(b"a", b"1"), (b"b", b"2")]


def test_a_fallbacks_ack_counts_as_the_targets() -> None:
    sent: list[tuple[bytes, object]] = []
    hinted: list[tuple[Member, list[bytes]]] = []
    counts: dict[str, int] = {"fallback_pairs": 0, "fallback_failed": 0}
    sender = FallbackSender(lambda member: lambda data, n, on: sent.append((data, on)) is None,
                            lambda member, requests: hinted.append((member, requests)), counts)
    writes = _sloppy_writes(2)
    sender.send(FALLBACK, PEER, PAIRS, writes)
    [(data, on_replies)] = sent
    assert data == hint_request(PEER, PAIRS)
    assert data.startswith(b"*6\r\n$8\r\nTKV.HINT\r\n$14\r\n127.0.0.2:7001\r\n")
    on_replies([[1, Error("ERR TKV.HINT: full")]])
    assert writes[0].counter.outcome is Outcome.SUCCESS
    assert writes[0].counter.replies[PEER].value == "ok"
    assert writes[1].counter.outcome is Outcome.IMPOSSIBLE
    assert hinted == [(PEER, [repl_put(b"b", b"2")])]
    assert counts == {"fallback_pairs": 2, "fallback_failed": 1}


def test_a_refused_or_failed_fallback_hints_on_the_coordinator() -> None:
    for refuse in (True, False):
        hinted: list[tuple[Member, list[bytes]]] = []
        answers: list[object] = []
        counts: dict[str, int] = {"fallback_pairs": 0, "fallback_failed": 0}

        def send_nowait(data, n, on_replies, refuse=refuse):
            answers.append(on_replies)
            return not refuse

        sender = FallbackSender(lambda member: send_nowait, lambda member, requests: hinted.append((member, requests)),
                                counts)
        writes = _sloppy_writes(2)
        sender.send(FALLBACK, PEER, PAIRS, writes)
        if not refuse:
            answers[0](None)  # the link failed
        assert all(write.counter.outcome is Outcome.IMPOSSIBLE for write in writes)
        assert hinted == [(PEER, [repl_put(key, clock) for key, clock in PAIRS])]
        assert counts["fallback_failed"] == 2
