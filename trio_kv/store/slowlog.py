"""SLOWLOG: the most recent commands whose execution took longer than a
threshold, as Redis keeps them.

Bounded: at most ``max_len`` entries (``--slowlog-max-len``, default 128),
each with at most ``MAX_ARGS`` arguments of at most ``MAX_ARG_BYTES`` bytes
(Redis' limits and its "... (N more arguments)" / "... (N more bytes)"
markers). Both settings can change at run time (CONFIG SET). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

MAX_ARGS = 32
MAX_ARG_BYTES = 128


@dataclass(frozen=True, slots=True)
class SlowlogEntry:
    id: int
    timestamp_s: int
    duration_us: int
    args: list[bytes]
    client_address: str
    client_name: bytes


def _trim_args(args: list[bytes]) -> list[bytes]:
    kept = []
    for index, arg in enumerate(args):
        if index == MAX_ARGS - 1 and len(args) > MAX_ARGS:
            kept.append(b"... (%d more arguments)" % (len(args) - MAX_ARGS + 1))
            break
        if len(arg) > MAX_ARG_BYTES:
            arg = arg[:MAX_ARG_BYTES] + b"... (%d more bytes)" % (len(arg) - MAX_ARG_BYTES)
        kept.append(arg)
    return kept


class SlowLog:
    def __init__(self, threshold_us: int, max_len: int) -> None:
        # -1 disables; 0 logs every command.
        self.threshold_us = threshold_us
        self.max_len = max_len
        self._entries: deque[SlowlogEntry] = deque()
        self._next_id = 0
        self._lock = threading.Lock()

    def maybe_record(self, duration_us: int, args: list[bytes], address: str, name: bytes) -> None:
        threshold = self.threshold_us
        if threshold < 0 or duration_us < threshold:
            return
        with self._lock:
            entry = SlowlogEntry(self._next_id, int(time.time()), duration_us, _trim_args(args), address, name)
            self._next_id += 1
            self._entries.appendleft(entry)
            while len(self._entries) > self.max_len:
                self._entries.pop()

    def get(self, count: int | None = None) -> list[SlowlogEntry]:
        """Newest first; ``count`` None means Redis' default of 10, negative means all."""
        with self._lock:
            entries = list(self._entries)
        if count is None:
            count = 10
        return entries if count < 0 else entries[:count]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def set_max_len(self, max_len: int) -> None:
        with self._lock:
            self.max_len = max_len
            while len(self._entries) > max_len:
                self._entries.pop()
