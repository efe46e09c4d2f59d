"""A small Trio TCP proxy that injects faults into one link: delay, blackhole, reset.

``FaultProxy(target_host, target_port)`` forwards every connection it accepts
to the target, byte for byte, and the test changes what the link does while
it runs:

* ``delay_seconds = D``: every chunk, each direction, is held D seconds
  before it is forwarded (order kept: one pump per direction sleeps, then
  sends).
* ``blackhole()``: bytes in both directions are read and dropped, and the
  connections stay open, as a link whose packets vanish (the peer sees no
  error, only silence; its timeouts decide).
* ``reset()``: every open connection is closed with a TCP RST (``SO_LINGER``
  0), and new connections are reset as soon as they are accepted.
* ``heal()``: back to forwarding at once (delay 0); connections that were
  reset stay gone.

``async with FaultProxy(...) as proxy`` (inside a nursery it makes) listens
on ``listen_host`` at a free port (``proxy.port``); leaving the block closes
every connection. ``run_in_thread`` runs one on its own thread with its own
``trio.run`` for synchronous tests (started from the thread that entered a
network namespace, it lives in that namespace).

Every pump is cancelled with its connection; a failure of one connection
(the target refusing, a reset from either side) closes that connection only.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import trio

CHUNK_BYTES = 65536
FORWARD, BLACKHOLE, RESET = "forward", "blackhole", "reset"
THREAD_START_SECONDS = 10.0


def _linger_zero(stream: trio.SocketStream) -> None:
    """Make the coming close send an RST rather than a FIN."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # already closed by the other side: nothing to reset


class FaultProxy(AbstractAsyncContextManager["FaultProxy"]):
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port = 0
        self.mode = FORWARD
        self.delay_seconds = 0.0
        self.accepted = 0
        # The (client, upstream) pairs open now, with the scope that cancels their pumps.
        self._open: set[tuple[trio.SocketStream, trio.SocketStream, trio.CancelScope]] = set()
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> FaultProxy:
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        listeners = await trio.open_tcp_listeners(0, host=self.listen_host)
        self.port = listeners[0].socket.getsockname()[1]
        self._nursery.start_soon(trio.serve_listeners, self._handle, listeners)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> bool | None:
        assert self._nursery is not None and self._nursery_manager is not None
        self._nursery.cancel_scope.cancel()
        return await self._nursery_manager.__aexit__(exc_type, exc, traceback)

    def blackhole(self) -> None:
        self.mode = BLACKHOLE

    def reset(self) -> None:
        self.mode = RESET
        for client, upstream, scope in list(self._open):
            _linger_zero(client)
            _linger_zero(upstream)
            scope.cancel()  # its handler closes both

    def heal(self) -> None:
        self.mode = FORWARD
        self.delay_seconds = 0.0

    async def _handle(self, client: trio.SocketStream) -> None:
        self.accepted += 1
        if self.mode == RESET:
            _linger_zero(client)
            await trio.aclose_forcefully(client)
            return
        try:
            upstream = await trio.open_tcp_stream(*self.target)
        except OSError:
            _linger_zero(client)
            await trio.aclose_forcefully(client)
            return
        with trio.CancelScope() as scope:
            entry = (client, upstream, scope)
            self._open.add(entry)
            try:
                async with trio.open_nursery() as pumps:
                    pumps.start_soon(self._pump, client, upstream, scope)
                    pumps.start_soon(self._pump, upstream, client, scope)
            finally:
                self._open.discard(entry)
                await trio.aclose_forcefully(client)
                await trio.aclose_forcefully(upstream)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
        """Copy ``source`` to ``sink`` as the mode says; either end closing or failing ends the connection."""
        try:
            while True:
                chunk = await source.receive_some(CHUNK_BYTES)
                if not chunk:
                    break
                if self.delay_seconds > 0:
                    await trio.sleep(self.delay_seconds)
                if self.mode == FORWARD:
                    await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # this connection is over; the other pump is cancelled below
        scope.cancel()


class ThreadedFaultProxy:
    """A ``FaultProxy`` on its own thread (``trio.run``), for synchronous tests.

    ``start()`` returns once it listens; the fault switches (``blackhole``,
    ``reset``, ``heal``, ``set_delay``) run on the proxy's thread; ``stop()``
    ends it and joins the thread."""

    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.proxy = FaultProxy(target_host, target_port, listen_host=listen_host)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")

    @property
    def port(self) -> int:
        return self.proxy.port

    def start(self) -> ThreadedFaultProxy:
        self._thread.start()
        if not self._ready.wait(THREAD_START_SECONDS):
            raise TimeoutError("the fault proxy did not start")
        if self._errors:
            raise self._errors[0]
        return self

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread
            self._errors.append(error)
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with self.proxy:
            self._ready.set()
            await self._stop.wait()

    def _call(self, action: Callable[[], object]) -> None:
        assert self._token is not None
        trio.from_thread.run_sync(action, trio_token=self._token)

    def blackhole(self) -> None:
        self._call(self.proxy.blackhole)

    def reset(self) -> None:
        self._call(self.proxy.reset)

    def heal(self) -> None:
        self._call(self.proxy.heal)

    def set_delay(self, seconds: float) -> None:
        self._call(lambda: setattr(self.proxy, "delay_seconds", seconds))

    def stop(self) -> None:
        if self._token is not None and self._thread.is_alive():
            assert self._stop is not None
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass  # already ended
        self._thread.join(THREAD_START_SECONDS)

    def __enter__(self) -> ThreadedFaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
