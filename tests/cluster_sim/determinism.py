"""What makes one ``trio.run`` replay exactly from a seed.

* Trio's scheduler: its run-queue order comes from a module-level
  ``random.Random`` (``trio._core._run._r``), shuffled after a sort by task
  creation order when ``_ALLOW_DETERMINISTIC_SCHEDULING`` is on (what
  pytest-trio and Hypothesis turn on); here it is turned on and seeded.
  Deadline ties are harmless: tasks woken together are sorted first.
* The global ``random`` module is seeded: ``PeerLink``'s backoff jitter
  draws from it.
* Worker threads are replaced by running the function inline on the Trio
  thread (``trio.to_thread.run_sync``): a thread's timing is the OS's,
  and a mock clock that autojumps while a thread runs would jump early.
  The inline hop is shielded, as a real hop with ``abandon_on_cancel=False``
  cannot be cancelled once started: a command is never half-applied.
* Time: ``trio.testing.MockClock(autojump_threshold=0)``, so sleeps and
  timeouts cost no wall time; wall-clock readings the nodes make for data
  (the hybrid logical clock, TTLs) come from the mock clock too
  (``SimNode.clock_ms``).

Node ids are derived from the seed; the handshake's nonces are random but
only their (fixed) length reaches the event log.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import trio
import trio.testing
import trio._core._run as trio_run


async def inline_run_sync(function: Callable[..., Any], *args: Any, **_options: Any) -> Any:
    with trio.CancelScope(shield=True):
        await trio.lowlevel.checkpoint()
    return function(*args)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    flag = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    scheduler_state = trio_run._r.getstate()
    global_state = random.getstate()
    run_sync = trio.to_thread.run_sync
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    trio_run._r.seed(seed)
    random.seed(seed)
    trio.to_thread.run_sync = inline_run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        trio.to_thread.run_sync = run_sync
        random.setstate(global_state)
        trio_run._r.setstate(scheduler_state)
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = flag  # type: ignore[misc]


def run(seed: int, main: Callable[[], Any]) -> Any:
    """``trio.run(main)`` on a mock clock, deterministically for ``seed``."""
    with deterministic(seed):
        return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
