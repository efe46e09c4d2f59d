"""The pipelined bus link (server.cluster.link) against a scripted peer on a
real TCP connection: replies in order, a cancelled wait that leaves the
link in sync, a bounded queue whose callers wait, a broken link failing
everything pending at once, one send for a batch."""

from __future__ import annotations

import functools

import trio
import trio.testing

from trio_kv.protocol.replies import SimpleString
from trio_kv.protocol.resp_pack import pack_commands
from trio_kv.protocol.resp_reply import NEED_DATA, ReplyParser
from trio_kv.server.cluster.link import Link, LinkClosed

WAIT_SECONDS = 10


def _encoded(requests: list[list[bytes]]) -> tuple[bytes, int]:
    """send_nowait's first two arguments for ``requests``."""
    return pack_commands(requests), len(requests)


class ScriptedPeer:
    """Answers ``ECHO x`` with ``+x``, but only while ``answering`` is set."""

    def __init__(self) -> None:
        self.answering = trio.Event()
        self.answering.set()
        self.requests: list[list[bytes]] = []
        self.receives = 0
        self.stream: trio.SocketStream | None = None

    async def serve(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        parser = ReplyParser()
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            self.receives += 1
            parser.receive_data(data)
            while (request := parser.next_reply()) is not NEED_DATA:
                assert isinstance(request, list)
                self.requests.append(request)
                await self.answering.wait()
                await stream.send_all(b"+" + request[1] + b"\r\n")


async def _linked(nursery: trio.Nursery, peer: ScriptedPeer, **limits: int) -> Link:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, peer.serve, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    link = Link(stream, "scripted", **limits)
    nursery.start_soon(link.run)
    return link


async def test_replies_come_back_in_order_and_a_batch_is_one_send() -> None:
    peer = ScriptedPeer()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer)
            replies = await link.request_many([[b"ECHO", str(i).encode()] for i in range(200)])
            assert replies == [SimpleString(str(i)) for i in range(200)]
            assert await link.request([b"ECHO", b"one"]) == SimpleString("one")
            assert link.traffic.sent_messages == 201 and link.traffic.received_messages == 201
            assert peer.receives <= 3  # the batch went out in one send (the kernel may split it)
            nursery.cancel_scope.cancel()


async def test_a_cancelled_wait_leaves_the_link_in_sync() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()  # hold replies back
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer)
            with trio.move_on_after(0.2) as scope:
                await link.request([b"ECHO", b"first"])
            assert scope.cancelled_caught
            assert link.in_flight == 1  # sent: its slot stays in the FIFO
            second = None

            async def ask_second() -> None:
                nonlocal second
                second = await link.request([b"ECHO", b"second"])

            nursery.start_soon(ask_second)
            await trio.testing.wait_all_tasks_blocked()
            peer.answering.set()
            while second is None:
                await trio.sleep(0.01)
            assert second == SimpleString("second")  # not the late "first"
            assert link.traffic.late_replies == 1
            assert await link.request([b"ECHO", b"third"]) == SimpleString("third")
            nursery.cancel_scope.cancel()


async def test_a_full_send_queue_makes_callers_wait_within_their_own_scope() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            # One request in flight at a time, two queued: the fourth caller waits for room.
            link = await _linked(nursery, peer, max_queued_requests=2, max_in_flight_requests=1)
            done: list[bytes] = []

            async def ask(name: bytes) -> None:
                reply = await link.request([b"ECHO", name])
                assert reply == SimpleString(name.decode())
                done.append(name)

            for name in (b"a", b"b", b"c"):
                nursery.start_soon(ask, name)
                await trio.testing.wait_all_tasks_blocked()
            assert (link.in_flight, link.queued) == (1, 2)
            with trio.move_on_after(0.2) as waited:
                await link.request([b"ECHO", b"d"])
            assert waited.cancelled_caught  # no room: it waited, and its own scope ended the wait
            assert link.queued == 2  # and it was never queued
            peer.answering.set()
            assert await link.request([b"ECHO", b"e"]) == SimpleString("e")
            assert done == [b"a", b"b", b"c"]
            assert [request[1] for request in peer.requests] == [b"a", b"b", b"c", b"e"]
            nursery.cancel_scope.cancel()


async def test_a_broken_link_fails_pending_requests_at_once_with_a_typed_error() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer)
            errors: list[LinkClosed] = []

            async def ask() -> None:
                try:
                    await link.request([b"ECHO", b"x"])
                except LinkClosed as error:
                    errors.append(error)

            nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            assert peer.stream is not None
            await peer.stream.aclose()  # the peer goes away with the request in flight
            while not errors:
                await trio.sleep(0.01)
            assert errors[0].sent  # it may have reached the peer
            try:
                await link.request([b"ECHO", b"after"])
            except LinkClosed as error:
                assert not error.sent
            else:
                raise AssertionError("a closed link answered")
            nursery.cancel_scope.cancel()


async def test_the_oldest_unanswered_request_has_an_age_until_answered() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()  # hold replies back
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer)
            assert link.oldest_request_age_seconds is None  # nothing waits: no lag
            answered = trio.Event()

            async def ask() -> None:
                await link.request_many([[b"ECHO", b"a"], [b"ECHO", b"b"]])
                answered.set()

            nursery.start_soon(ask)
            while link.in_flight < 2:
                await trio.sleep(0.01)
            first = link.oldest_request_age_seconds
            assert first is not None and first >= 0
            await trio.sleep(0.01)
            later = link.oldest_request_age_seconds
            assert later is not None and later >= first  # the same request, older
            peer.answering.set()
            await answered.wait()
            assert link.oldest_request_age_seconds is None
            nursery.cancel_scope.cancel()


async def test_a_batch_is_one_slot_sent_whole_even_past_the_in_flight_bound() -> None:
    peer = ScriptedPeer()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer, max_in_flight_requests=2)
            assert await link.request_many([]) == []  # nothing to send, nothing to wait for
            replies = await link.request_many([[b"ECHO", str(i).encode()] for i in range(5)])
            assert replies == [SimpleString(str(i)) for i in range(5)]
            # Alone on the link, the batch of 5 went in one send (the bound
            # of 2 held it back only behind other requests).
            assert peer.receives == 1 and link.traffic.sends == 1
            assert (link.in_flight, link.queued) == (0, 0)
            nursery.cancel_scope.cancel()


async def test_send_nowait_calls_back_with_the_replies_or_none_when_the_link_fails() -> None:
    peer = ScriptedPeer()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer, max_queued_requests=4)
            got: list[list[object] | None] = []
            assert link.send_nowait(*_encoded([[b"ECHO", b"a"], [b"ECHO", b"b"]]), got.append)
            assert link.send_nowait(*_encoded([[b"ECHO", b"c"]]), got.append)
            while len(got) < 2:
                await trio.sleep(0.01)
            assert got == [[SimpleString("a"), SimpleString("b")], [SimpleString("c")]]
            peer.answering = trio.Event()  # hold replies back: the next batch stays in flight
            assert link.send_nowait(*_encoded([[b"ECHO", b"d"]]), got.append)
            while link.in_flight < 1:
                await trio.sleep(0.01)
            for _ in range(4):
                assert link.send_nowait(*_encoded([[b"ECHO", b"q"]]), got.append)  # queued behind nothing: sent too
            while link.in_flight < 5:
                await trio.sleep(0.01)
            link.close("test")
            assert got[2:] == [None] * 5  # every batch in flight failed, once
            assert not link.send_nowait(*_encoded([[b"ECHO", b"e"]]), got.append)  # closed: refused
            nursery.cancel_scope.cancel()


async def test_send_nowait_is_refused_when_the_queue_is_full() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer, max_queued_requests=2, max_in_flight_requests=1)
            got: list[list[object] | None] = []
            assert link.send_nowait(*_encoded([[b"ECHO", b"a"]]), got.append)
            while link.in_flight < 1:
                await trio.sleep(0.01)
            assert link.send_nowait(*_encoded([[b"ECHO", b"b"], [b"ECHO", b"c"]]), got.append)
            assert not link.send_nowait(*_encoded([[b"ECHO", b"d"]]), got.append)  # 2 queued: full, nothing queued
            assert link.queued == 2
            peer.answering.set()
            while len(got) < 2:
                await trio.sleep(0.01)
            assert got == [[SimpleString("a")], [SimpleString("b"), SimpleString("c")]]
            nursery.cancel_scope.cancel()


async def test_send_nowait_encodes_a_batch_given_as_a_function_when_the_writer_takes_it() -> None:
    peer = ScriptedPeer()
    peer.answering = trio.Event()
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            link = await _linked(nursery, peer, max_in_flight_requests=1)
            got: list[list[object] | None] = []
            assert link.send_nowait(*_encoded([[b"ECHO", b"a"]]), got.append)
            while link.in_flight < 1:
                await trio.sleep(0.01)
            # The writer waits for room in flight: what the function encodes may still change.
            names = [b"b"]
            sealed: list[int] = []

            def encode() -> bytes:
                sealed.append(len(names))
                return pack_commands([[b"ECHO", b"".join(names)]])

            assert link.send_nowait(encode, 1, got.append)
            assert link.queued == 1 and link.queued_bytes == 0  # not encoded yet
            names.append(b"c")
            assert sealed == []
            peer.answering.set()
            while len(got) < 2:
                await trio.sleep(0.01)
            assert sealed == [2] and got == [[SimpleString("a")], [SimpleString("bc")]]
            # A link that fails first never encodes it.
            peer.answering = trio.Event()
            assert link.send_nowait(*_encoded([[b"ECHO", b"d"]]), got.append)
            while link.in_flight < 1:
                await trio.sleep(0.01)
            assert link.send_nowait(encode, 1, got.append)
            link.close("test")
            assert got[2:] == [None, None] and sealed == [2]
            nursery.cancel_scope.cancel()
