"""The ring-change lock: how two admins changing the ring at the same
moment, on two nodes, cannot make two different rings of one epoch.

A ring file's compare-and-set is per node; two nodes at epoch E could
each make their own epoch E + 1. So a change first locks *every* member
(``TKV.RING.LOCK epoch token seconds``, the admin tool sends it), each a
compare-and-set on the epoch that member is at:

* a member grants the lock only if its ring is at ``epoch`` and no other
  unexpired lock holds it at that epoch (the same token again: granted);
* the node asked to make the change (``TKV.RING.CHANGE ... LOCKED token``)
  makes it only while it holds that token's lock at its epoch, and the
  ring it makes carries the token (``ring_record``'s ``change``);
* a locked member adopts no ring of epoch + 1 made by another change
  (another token); rings without a token (a staged change's FINISH,
  computed alike by every node from the one staged ring) are not changes.

Members are locked one at a time in address order, the same order for
every admin: of two changes, the one that locks the lowest member first
wins, and the other is refused there ("another ring change holds ...")
before it holds anything, so one wins and the other is refused cleanly,
never both refused by holding one member each. A member that is being
removed and does not answer may be skipped (a dead node can be removed);
every other member must grant the lock. Any two changes' lock sets then
share a member (with three members or more), and a member grants one.

A lock lasts ``seconds`` (the tool asks for ``DEFAULT_SECONDS``), is
released by ``TKV.RING.UNLOCK token``, and is moot once the member adopts
a later epoch. Thread-safe: peer handlers call it from worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_SECONDS = 30.0
MAX_SECONDS = 600.0


@dataclass(frozen=True)
class _Held:
    epoch: int
    token: str
    until: float


class ChangeLock:
    def __init__(self, epoch: Callable[[], int], clock: Callable[[], float] = time.monotonic) -> None:
        # The epoch this node's ring is at (the adopted ring's).
        self._epoch = epoch
        self._clock = clock
        self._mutex = threading.Lock()
        self._held: _Held | None = None

    def _current(self) -> _Held | None:
        held = self._held
        if held is None or held.until <= self._clock() or held.epoch != self._epoch():
            return None
        return held

    def acquire(self, epoch: int, token: str, seconds: float) -> str | None:
        """Lock this node for ``token``'s change of ``epoch``; None when
        granted, else why not (a sentence)."""
        with self._mutex:
            mine = self._epoch()
            if epoch != mine:
                return f"this node is at ring epoch {mine}, not {epoch} (the ring changed: look again)"
            held = self._current()
            if held is not None and held.token != token:
                left = held.until - self._clock()
                return f"another ring change holds this node at epoch {mine} ({left:.0f} s more at most)"
            self._held = _Held(epoch, token, self._clock() + min(max(seconds, 0.0), MAX_SECONDS))
            return None

    def release(self, token: str) -> bool:
        """Drop ``token``'s lock; False if it did not hold this node."""
        with self._mutex:
            if self._held is None or self._held.token != token:
                return False
            self._held = None
            return True

    def holds(self, token: str, epoch: int) -> bool:
        """Whether ``token``'s lock holds this node at ``epoch`` now."""
        with self._mutex:
            held = self._current()
            return held is not None and held.token == token and held.epoch == epoch

    def refuses(self, epoch: int, change: str | None) -> str | None:
        """Why a ring of ``epoch`` made by change ``change`` may not be
        adopted now (None: it may): another change's lock holds this node."""
        with self._mutex:
            held = self._current()
            if held is None or change is None or epoch != held.epoch + 1 or change == held.token:
                return None
            return f"epoch {epoch} comes from another change than the one holding this node's lock"
