"""The latency monitor (Redis' latency.c): time series of latency spikes by event.

When ``threshold_ms`` is above 0, code that may be slow reports how long it
took (``add_sample_if_needed``); a duration at or above the threshold is
kept as a sample of its event's time series. Events recorded here:

* ``command``: a command without the ``fast`` flag, its execution time;
* ``fast-command``: a command with the ``fast`` flag;
* ``expire-cycle``: one pass of the active-expiry thread.

Rules kept (as Redis):

* A series holds at most ``SAMPLES_PER_EVENT`` samples (a ring: the oldest is
  overwritten), one per second: a second spike in the same second keeps the
  larger latency. ``max_ms`` is the worst sample ever, kept across the ring.
* At most ``MAX_EVENTS`` distinct event names (the names are this server's
  own, so the bound is never reached in practice; it keeps memory fixed).
* Thread-safe: worker threads add samples, commands read them. The
  threshold check happens before the lock, so with the monitor off (the
  default) or below the threshold a sample costs one comparison.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

SAMPLES_PER_EVENT = 160  # Redis' LATENCY_TS_LEN
MAX_EVENTS = 64


@dataclass(slots=True)
class EventSeries:
    # (unix time s, latency ms), oldest first; at most SAMPLES_PER_EVENT.
    samples: list[tuple[int, int]] = field(default_factory=list)
    max_ms: int = 0


@dataclass(frozen=True, slots=True)
class EventSummary:
    """What LATENCY DOCTOR reports for one event."""

    samples: int
    average_ms: int
    mean_deviation_ms: int
    period_s: int
    max_ms: int


class LatencyMonitor:
    def __init__(self, threshold_ms: int = 0) -> None:
        # 0: off. Read without the lock (an int assignment is atomic).
        self.threshold_ms = threshold_ms
        self._lock = threading.Lock()
        self._events: dict[str, EventSeries] = {}

    def add_sample_if_needed(self, event: str, latency_ms: int) -> None:
        threshold = self.threshold_ms
        if threshold and latency_ms >= threshold:
            self.add_sample(event, latency_ms)

    def add_sample(self, event: str, latency_ms: int, now_s: int | None = None) -> None:
        now_s = int(time.time()) if now_s is None else now_s
        with self._lock:
            series = self._events.get(event)
            if series is None:
                if len(self._events) >= MAX_EVENTS:
                    return
                series = self._events[event] = EventSeries()
            series.max_ms = max(series.max_ms, latency_ms)
            samples = series.samples
            if samples and samples[-1][0] == now_s:
                if latency_ms > samples[-1][1]:
                    samples[-1] = (now_s, latency_ms)
                return
            samples.append((now_s, latency_ms))
            if len(samples) > SAMPLES_PER_EVENT:
                del samples[0]

    def reset(self, events: list[str] | None = None) -> int:
        """Forget the named events (any case), or all; how many were forgotten."""
        with self._lock:
            if events is None:
                count = len(self._events)
                self._events.clear()
                return count
            wanted = {name.lower() for name in events}
            gone = [name for name in self._events if name.lower() in wanted]
            for name in gone:
                del self._events[name]
            return len(gone)

    def latest(self) -> list[tuple[str, int, int, int]]:
        """``(event, time s, latest latency ms, all-time max ms)`` per event."""
        with self._lock:
            return [
                (name, series.samples[-1][0], series.samples[-1][1], series.max_ms)
                for name, series in self._events.items()
                if series.samples
            ]

    def history(self, event: str) -> list[tuple[int, int]]:
        with self._lock:
            series = self._events.get(event)
            return list(series.samples) if series is not None else []

    def max_ms(self, event: str) -> int | None:
        with self._lock:
            series = self._events.get(event)
            return None if series is None else series.max_ms

    def events(self) -> list[str]:
        with self._lock:
            return list(self._events)

    def summary(self, event: str, now_s: int | None = None) -> EventSummary:
        """Redis' analyzeLatencyForEvent: average, mean absolute deviation,
        and the span from the oldest sample to now (at least 1 s)."""
        now_s = int(time.time()) if now_s is None else now_s
        with self._lock:
            series = self._events.get(event)
            samples = list(series.samples) if series is not None else []
            max_ms = series.max_ms if series is not None else 0
        if not samples:
            return EventSummary(0, 0, 0, 0, max_ms)
        average = sum(latency for _, latency in samples) // len(samples)
        deviation = sum(abs(average - latency) for _, latency in samples) // len(samples)
        period = max(1, now_s - min(at for at, _ in samples))
        return EventSummary(len(samples), average, deviation, period, max_ms)
