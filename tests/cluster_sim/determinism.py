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
* ``os.fsync`` and ``os.fdatasync`` do nothing: what a crash keeps is
  decided from the log writer's own ``synced_offset`` (``node.SimNode.crash``),
  so a real fsync would only cost wall time (a few ms each on this disk).
* Time: ``trio.testing.MockClock(autojump_threshold=0)``, so sleeps and
  timeouts cost no wall time; wall-clock readings the nodes make for data
  (the hybrid logical clock, TTLs) come from the mock clock too
  (``SimNode.clock_ms``).

Node ids are derived from the seed; the handshake's nonces are random but
only their (fixed) length reaches the event log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import trio
import trio.testing
import trio._core._run as trio_run

log = logging.getLogger(__name__)


async def inline_run_sync(function: Callable[..., Any], *args: Any, **_options: Any) -> Any:
    with trio.CancelScope(shield=True):
        await trio.lowlevel.checkpoint()
    return function(*args)


def _no_sync(fd: int) -> None:
    os.fstat(fd)  # still an error on a closed descriptor, as the real call


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    flag = trio_run._ALLOW_DETERMINISTIC_SCHEDULING
    scheduler_state = trio_run._r.getstate()
    global_state = random.getstate()
    run_sync = trio.to_thread.run_sync
    fsync, fdatasync = os.fsync, os.fdatasync
    os.fsync = os.fdatasync = _no_sync
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    trio_run._r.seed(seed)
    random.seed(seed)
    trio.to_thread.run_sync = inline_run_sync  # type: ignore[assignment]
    try:
        yield
    finally:
        trio.to_thread.run_sync = run_sync
        os.fsync, os.fdatasync = fsync, fdatasync
        random.setstate(global_state)
        trio_run._r.setstate(scheduler_state)
        trio_run._ALLOW_DETERMINISTIC_SCHEDULING = flag  # type: ignore[misc]


def _frames(coroutine: Any) -> list[str]:
    out = []
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        if frame is None:
            break
        out.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "gi_yieldfrom", None)
    return out


def task_tree(task: trio.lowlevel.Task, depth: int = 0) -> list[str]:
    """Every task under ``task`` with where it waits (innermost last)."""
    lines = ["  " * depth + f"{task.name}: " + " -> ".join(_frames(task.coro))]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            lines += task_tree(child, depth + 1)
    return lines


class StuckReporter(trio.abc.Instrument):
    """A simulation where every task waits and no deadline is left cannot
    move again (the mock clock has nowhere to jump): the loop only polls.
    After ``IDLE_POLLS`` such polls in a row this logs every task and where
    it waits, once, so a hang in CI says why."""

    IDLE_POLLS = 100_000

    def __init__(self) -> None:
        self.idle = 0
        self.reported = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.idle = 0

    def before_io_wait(self, timeout: float) -> None:
        self.idle += 1
        if self.idle == self.IDLE_POLLS and not self.reported:
            self.reported = True
            tree = "\n".join(task_tree(trio.lowlevel.current_root_task()))
            log.error("simulation stuck at mock time %.6f: no task can run, no deadline left\n%s",
                      trio.current_time(), tree)


def run(seed: int, main: Callable[[], Any]) -> Any:
    """``trio.run(main)`` on a mock clock, deterministically for ``seed``."""
    with deterministic(seed):
        return trio.run(
            main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[StuckReporter()]
        )
