"""``server/cluster/read_quorum.py``: how a quorum read asks the other
members for a key's clock, with fake links on trio's autojump clock.

The usual read (one key, one member to hear from) asks that member in the
caller's task; a member that fails, answers an error or stays silent past
the spare delay is replaced by a spare, the silent one asked again beside
it (its late answer counts); without spares the read ends at its
deadline. A read leaves no reference cycle behind (the cyclic collector
never has to free its objects)."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import trio

from trio_kv.cluster.quorum import RequestPlan
from trio_kv.cluster.ring import Member
from trio_kv.protocol.replies import Error
from trio_kv.server.cluster.link import LinkDown
from trio_kv.server.cluster.read_quorum import SPARE_AFTER_FRACTION, ReadQuorum

TIMEOUT_SECONDS = 1.0
ME, B, C = Member("10.0.0.1", 7001), Member("10.0.0.2", 7001), Member("10.0.0.3", 7001)


class FakeLink:
    """Answers ``TKV.REPL.GET key`` with ``clock``, after ``delay_seconds``
    (None: never), or fails (``fail``), or answers ``error``; records what it was asked."""

    def __init__(self, clock: bytes | None = b"clock", *, delay_seconds: float | None = 0.0,
                 fail: bool = False, error: bool = False) -> None:
        self.clock = clock
        self.delay_seconds = delay_seconds
        self.fail = fail
        self.error = error
        self.asked: list[list[bytes]] = []

    async def request_many(self, requests: list[list[bytes]]) -> list[object]:
        self.asked.append([request[1] for request in requests])
        if self.fail:
            raise LinkDown("no link")
        if self.delay_seconds is None:
            await trio.sleep_forever()
        await trio.sleep(self.delay_seconds)
        if self.error:
            return [Error("ERR refused")] * len(requests)
        return [self.clock] * len(requests)


def quorum(links: dict[Member, FakeLink]) -> ReadQuorum:
    node = SimpleNamespace(links=links)
    return ReadQuorum(node, None, None, None, {}, TIMEOUT_SECONDS)  # type: ignore[arg-type]


def plan(spares: tuple[Member, ...] = (C,)) -> RequestPlan:
    return RequestPlan(targets=(ME, B), spares=spares, skipped=(), needed=2)


async def ask(reads: ReadQuorum, keys: list[bytes], spares: tuple[Member, ...] = (C,)) -> dict:
    clocks: dict[bytes, dict[Member, bytes | None]] = {key: {} for key in keys}
    await reads.remote_clocks({index: (key, plan(spares)) for index, key in enumerate(keys)}, ME, clocks)
    return clocks


async def test_the_target_answers_and_no_spare_is_asked(autojump_clock) -> None:
    links = {B: FakeLink(b"b"), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k"]) == {b"k": {B: b"b"}}
    assert links[B].asked == [[b"k"]] and links[C].asked == []


async def test_an_absent_key_is_an_answer(autojump_clock) -> None:
    links = {B: FakeLink(None), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k"]) == {b"k": {B: None}}


async def test_a_failed_target_is_replaced_by_the_spare(autojump_clock) -> None:
    links = {B: FakeLink(fail=True), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k"]) == {b"k": {C: b"c"}}
    assert links[B].asked == [[b"k"]] and links[C].asked == [[b"k"]]


async def test_a_target_answering_an_error_is_replaced_by_the_spare(autojump_clock) -> None:
    links = {B: FakeLink(error=True), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k"]) == {b"k": {C: b"c"}}


async def test_a_silent_target_is_joined_by_the_spare_after_the_spare_delay(autojump_clock) -> None:
    links = {B: FakeLink(delay_seconds=None), C: FakeLink(b"c")}
    start = trio.current_time()
    assert await ask(quorum(links), [b"k"]) == {b"k": {C: b"c"}}
    assert trio.current_time() - start == TIMEOUT_SECONDS * SPARE_AFTER_FRACTION
    # Asked again beside the spare: a late answer of its would count too.
    assert links[B].asked == [[b"k"], [b"k"]]


async def test_a_slow_targets_late_answer_counts_when_the_spare_is_silent(autojump_clock) -> None:
    links = {B: FakeLink(b"b", delay_seconds=TIMEOUT_SECONDS / 2), C: FakeLink(delay_seconds=None)}
    assert await ask(quorum(links), [b"k"]) == {b"k": {B: b"b"}}
    assert links[C].asked == [[b"k"]]


async def test_without_spares_a_silent_target_ends_the_read_at_its_deadline(autojump_clock) -> None:
    links = {B: FakeLink(delay_seconds=None)}
    start = trio.current_time()
    assert await ask(quorum(links), [b"k"], spares=()) == {b"k": {}}
    assert trio.current_time() - start == TIMEOUT_SECONDS
    assert links[B].asked == [[b"k"]]


async def test_without_spares_a_failed_target_ends_the_read_at_once(autojump_clock) -> None:
    links = {B: FakeLink(fail=True)}
    start = trio.current_time()
    assert await ask(quorum(links), [b"k"], spares=()) == {b"k": {}}
    assert trio.current_time() == start


async def test_several_keys_are_asked_in_one_request_per_member(autojump_clock) -> None:
    links = {B: FakeLink(b"b"), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k1", b"k2"]) == {b"k1": {B: b"b"}, b"k2": {B: b"b"}}
    assert links[B].asked == [[b"k1", b"k2"]]


async def test_several_keys_with_a_silent_target_are_joined_by_the_spare(autojump_clock) -> None:
    links = {B: FakeLink(delay_seconds=None), C: FakeLink(b"c")}
    assert await ask(quorum(links), [b"k1", b"k2"]) == {b"k1": {C: b"c"}, b"k2": {C: b"c"}}


async def test_reads_leave_no_reference_cycles(autojump_clock) -> None:
    """Every object of a read is freed by reference counting: a closure
    pair calling each other (one per read) made ~20 objects of cyclic
    garbage per read, which the collector had to find and free."""
    reads = quorum({B: FakeLink(b"b"), C: FakeLink(b"c")})
    slow = quorum({B: FakeLink(delay_seconds=None), C: FakeLink(b"c")})
    await ask(reads, [b"warm"])
    gc.collect()
    gc.disable()
    try:
        for index in range(100):
            await ask(reads, [b"k%d" % index])
            await ask(reads, [b"a%d" % index, b"b%d" % index])
            await ask(slow, [b"s%d" % index])
        garbage = gc.collect()
    finally:
        gc.enable()
    assert garbage < 100, garbage


async def test_a_read_needing_two_other_members_asks_both(autojump_clock) -> None:
    """Level ALL (R=3): not the usual read; both other members are asked."""
    links = {B: FakeLink(b"b"), C: FakeLink(b"c")}
    clocks: dict[bytes, dict[Member, bytes | None]] = {b"k": {}}
    everyone = RequestPlan(targets=(ME, B, C), spares=(), skipped=(), needed=3)
    await quorum(links).remote_clocks({0: (b"k", everyone)}, ME, clocks)
    assert clocks == {b"k": {B: b"b", C: b"c"}}


async def test_asked_in_another_task_the_event_is_set_once_the_ask_ended(autojump_clock) -> None:
    links = {B: FakeLink(b"b", delay_seconds=0.1), C: FakeLink(b"c")}
    clocks: dict[bytes, dict[Member, bytes | None]] = {b"k": {}}
    async with trio.open_nursery() as nursery:
        asked = quorum(links).start_remote_clocks(nursery, {0: (b"k", plan())}, ME, clocks)
        assert not asked.is_set()
        await asked.wait()
        assert clocks == {b"k": {B: b"b"}}


async def test_asked_in_another_task_the_event_is_set_when_that_task_is_cancelled(autojump_clock) -> None:
    links = {B: FakeLink(delay_seconds=None)}
    clocks: dict[bytes, dict[Member, bytes | None]] = {b"k": {}}
    async with trio.open_nursery() as nursery:
        asked = quorum(links).start_remote_clocks(nursery, {0: (b"k", plan(spares=()))}, ME, clocks)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert asked.is_set() and clocks == {b"k": {}}
