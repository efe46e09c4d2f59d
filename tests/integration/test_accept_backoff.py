"""Accept errors that mean "overloaded" (EMFILE, ENFILE, ENOMEM, ENOBUFS) are
logged and retried after ACCEPT_BACKOFF_SECONDS instead of spinning; any
other accept error ends the accept loop. The listener is a fake that fails on
command; time is trio's MockClock, so the back-off is exact, not slept."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from trio_kv.config import Config
from trio_kv.server.listener import ACCEPT_BACKOFF_SECONDS, ConnectionRegistry, accept_connections
from trio_kv.store.engine import Store


class FailingListener(trio.abc.Listener):
    def __init__(self, errors: list[OSError]) -> None:
        self.errors = errors
        self.accept_times: list[float] = []
        self.closed = False

    async def accept(self):
        self.accept_times.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        await trio.sleep_forever()

    async def aclose(self) -> None:
        self.closed = True


async def _accept(listener, nursery):
    store = Store(Config(appendonly=False))
    await accept_connections(
        listener, store, ConnectionRegistry(10), nursery, open_connection=None, reject=None
    )


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS])
def test_overload_errors_back_off_and_retry(code):
    listener = FailingListener([OSError(code, "overloaded"), OSError(code, "overloaded")])

    async def main():
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_accept, listener, nursery)
                while len(listener.accept_times) < 3:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    first, second, third = listener.accept_times[:3]
    assert second - first == pytest.approx(ACCEPT_BACKOFF_SECONDS)
    assert third - second == pytest.approx(ACCEPT_BACKOFF_SECONDS)
    assert listener.closed


def test_other_accept_errors_end_the_loop():
    listener = FailingListener([OSError(errno.EBADF, "bad descriptor")])

    raised: list[OSError] = []

    async def main():
        with trio.fail_after(10):
            try:
                async with trio.open_nursery() as nursery:
                    await _accept(listener, nursery)
            except* OSError as group:
                raised.extend(group.exceptions)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert [error.errno for error in raised] == [errno.EBADF]
    assert len(listener.accept_times) == 1  # no retry
    assert listener.closed
