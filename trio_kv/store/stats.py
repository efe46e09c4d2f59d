"""Server-wide counters and latency histograms, exact under any concurrency,
with no lock on the hot path.

In CPython ``x += 1`` from several threads can lose updates, and commands
run on several worker threads (readers in parallel). Instead of a lock per
update, every thread writes only its own *shard* (found through
``threading.local``): no two threads ever write the same counter, so no
update is lost. Readers sum the shards; a reader sees every update that
finished before it looked. ``reset`` (CONFIG RESETSTAT) never writes another
thread's shard: it records the current sums as a baseline that readers
subtract, so it is exact too.

What is counted:

* ``gets``/``sets``/``dels``: commands whose table entry names that counter
  (the text protocol's ``STATS`` fields), successful or not.
* ``errors``: every error reply, from any protocol, including framing errors
  raised before a command exists; and per error code (Redis' ``INFO
  errorstats``): the reply's first word when a space comes within its first
  32 characters, else ``ERR`` (Redis' afterErrorReply). At most
  ``MAX_ERROR_CODES`` codes are kept per thread; errors with a new code past
  that count in ``errors`` only (the codes are this server's own words, so
  the bound keeps memory fixed without losing anything in practice).
* per command name (``client|id`` for a subcommand, as Redis): calls, failed
  calls (ran and answered an error), rejected calls (refused before running:
  wrong arity, refused inside MULTI, writes refused by MISCONF), total
  execution microseconds (Redis' ``INFO commandstats``) and a latency
  histogram of the time from the moment the request was read to the moment
  its reply was ready (queueing, the thread hop and execution: everything
  but the send). Histograms are kept only while ``latency_tracking`` is on
  (``CONFIG SET latency-tracking``); the counters always.
"""

from __future__ import annotations

import threading

from .histogram import Histogram

COUNTERS = (
    "gets",
    "sets",
    "dels",
    "errors",
    "keyspace_hits",
    "keyspace_misses",
    "rejected_connections",
    "total_connections",
    "total_commands",
)


DEFAULT_INFO_PERCENTILES = (50.0, 99.0, 99.9)
# Distinct error codes counted per thread (Redis 7.2 caps its errorstats at 128 too).
MAX_ERROR_CODES = 128
# An error code is the reply's first word if a space comes this early.
ERROR_CODE_MAX_CHARS = 32


def error_code(message: str) -> str:
    """Redis' errorstats key for an error reply's text (without the ``-``)."""
    space = message.find(" ", 0, ERROR_CODE_MAX_CHARS)
    return message[:space] if space > 0 else "ERR"


class CommandStats:
    __slots__ = ("calls", "failed_calls", "rejected_calls", "usec", "latency")

    def __init__(self) -> None:
        self.calls = 0
        self.failed_calls = 0
        self.rejected_calls = 0
        self.usec = 0
        self.latency = Histogram()

    def merge(self, other: CommandStats) -> None:
        self.calls += other.calls
        self.failed_calls += other.failed_calls
        self.rejected_calls += other.rejected_calls
        self.usec += other.usec
        self.latency.merge(other.latency)

    def minus(self, baseline: CommandStats | None) -> CommandStats:
        if baseline is None:
            return self
        result = CommandStats()
        result.calls = self.calls - baseline.calls
        result.failed_calls = self.failed_calls - baseline.failed_calls
        result.rejected_calls = self.rejected_calls - baseline.rejected_calls
        result.usec = self.usec - baseline.usec
        result.latency = self.latency.minus(baseline.latency)
        return result


class StatsShard:
    """One thread's counters. Only its own thread writes it."""

    __slots__ = ("counts", "commands", "error_codes", "_owner")

    def __init__(self, owner: Stats | None = None) -> None:
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.commands: dict[str, CommandStats] = {}
        # errorstats: error code -> error replies with it.
        self.error_codes: dict[str, int] = {}
        # The Stats this shard belongs to: its latency_tracking switch.
        self._owner = owner

    def record_error(self, message: str) -> None:
        """One error reply (``message``: its text without the ``-``)."""
        self.counts["errors"] += 1
        code = error_code(message)
        codes = self.error_codes
        if code in codes:
            codes[code] += 1
        elif len(codes) < MAX_ERROR_CODES:
            codes[code] = 1

    def record_rejected(self, name: str) -> None:
        """A call of ``name`` refused before it ran (its error is recorded apart)."""
        entry = self.commands.get(name)
        if entry is None:
            entry = self.commands[name] = CommandStats()
        entry.rejected_calls += 1

    def record_command(
        self, name: str, counter: str | None, failed: bool, exec_us: int, latency_us: int,
        error_message: str = "ERR",
    ) -> None:
        if failed:
            self.record_error(error_message)
        self.record_calls(name, counter, 1, int(failed), exec_us, latency_us)

    def record_calls(
        self, name: str, counter: str | None, calls: int, failed_calls: int, usec: int, latency_us: int
    ) -> None:
        """``calls`` executions of one command that all ended ``latency_us``
        after their requests were read (the engine records a run of one
        command at once). The ``errors`` counter is the caller's: it counts
        error replies one by one."""
        counts = self.counts
        counts["total_commands"] += calls
        if counter is not None:
            counts[counter] += calls
        entry = self.commands.get(name)
        if entry is None:
            entry = self.commands[name] = CommandStats()
        entry.calls += calls
        entry.failed_calls += failed_calls
        entry.usec += usec
        owner = self._owner
        if owner is None or owner.latency_tracking:
            entry.latency.record_n(latency_us, calls)


class Stats:
    def __init__(self) -> None:
        self._local = threading.local()
        # Guards only the list of shards (a new thread registering).
        self._shards_lock = threading.Lock()
        self._shards: list[StatsShard] = []
        self._baseline_counts = dict.fromkeys(COUNTERS, 0)
        self._baseline_commands: dict[str, CommandStats] = {}
        self._baseline_errors: dict[str, int] = {}
        # CONFIG SET latency-tracking: record latency histograms or not.
        self.latency_tracking = True
        # CONFIG SET latency-tracking-info-percentiles: what INFO latencystats
        # reports (each in [0, 100]; commands.runtime_config bounds the count).
        self.latency_percentiles: tuple[float, ...] = DEFAULT_INFO_PERCENTILES

    def shard(self) -> StatsShard:
        """The calling thread's shard (the engine fetches it once per batch)."""
        try:
            return self._local.shard
        except AttributeError:
            shard = self._local.shard = StatsShard(self)
            with self._shards_lock:
                self._shards.append(shard)
            return shard

    # --- writers (any thread; each writes its own shard) -----------------------

    def record_command(
        self, name: str, counter: str | None, failed: bool, exec_us: int, latency_us: int,
        error_message: str = "ERR",
    ) -> None:
        self.shard().record_command(name, counter, failed, exec_us, latency_us, error_message)

    def record_error(self, message: str = "ERR") -> None:
        """An error reply that no command produced (framing, limits)."""
        self.shard().record_error(message)

    def add(self, counter: str, amount: int = 1) -> None:
        self.shard().counts[counter] += amount

    # --- readers -------------------------------------------------------------

    def _shards_now(self) -> list[StatsShard]:
        with self._shards_lock:
            return list(self._shards)

    def _raw_counts(self) -> dict[str, int]:
        totals = dict.fromkeys(COUNTERS, 0)
        for shard in self._shards_now():
            # dict(...) copies in one C call, so the owner cannot change it mid-copy.
            for name, value in dict(shard.counts).items():
                totals[name] += value
        return totals

    def _raw_commands(self) -> dict[str, CommandStats]:
        merged: dict[str, CommandStats] = {}
        for shard in self._shards_now():
            for name, entry in list(shard.commands.items()):
                total = merged.get(name)
                if total is None:
                    total = merged[name] = CommandStats()
                total.merge(entry)
        return merged

    def _raw_errors(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for shard in self._shards_now():
            for code, count in dict(shard.error_codes).items():
                totals[code] = totals.get(code, 0) + count
        return totals

    def error_counts(self) -> dict[str, int]:
        """``code -> error replies`` since the start or CONFIG RESETSTAT, by code."""
        baseline = self._baseline_errors
        result = {}
        for code, count in sorted(self._raw_errors().items()):
            count -= baseline.get(code, 0)
            if count:
                result[code] = count
        return result

    def counters(self) -> dict[str, int]:
        raw = self._raw_counts()
        return {name: raw[name] - self._baseline_counts[name] for name in COUNTERS}

    def _commands(self) -> dict[str, CommandStats]:
        result = {}
        for name, entry in sorted(self._raw_commands().items()):
            entry = entry.minus(self._baseline_commands.get(name))
            if entry.calls or entry.rejected_calls:
                result[name] = entry
        return result

    def latency_summary(self) -> list[tuple[str, int, int, int, int]]:
        """``(name, count, p50_us, p95_us, p99_us)`` per command, by name."""
        return [
            (
                name,
                entry.latency.total,
                entry.latency.percentile(0.50),
                entry.latency.percentile(0.95),
                entry.latency.percentile(0.99),
            )
            for name, entry in self._commands().items()
            if entry.latency.total
        ]

    def command_table(self) -> dict[str, tuple[int, int, int]]:
        """``name -> (calls, failed_calls, usec)``."""
        return {
            name: (entry.calls, entry.failed_calls, entry.usec) for name, entry in self._commands().items()
        }

    def command_rejections(self) -> dict[str, int]:
        """``name -> rejected_calls`` (0 left out)."""
        return {name: entry.rejected_calls for name, entry in self._commands().items() if entry.rejected_calls}

    def latency_cumulative(self, name: str, bounds_us: list[int]) -> tuple[int, list[int]]:
        entry = self._commands().get(name)
        if entry is None:
            return 0, [0] * len(bounds_us)
        return entry.latency.total, entry.latency.cumulative(bounds_us)

    def latency_histograms(self, bounds_us: list[int]) -> dict[str, tuple[int, int, list[int]]]:
        """``name -> (count, sum_us, samples <= each bound)`` for every command,
        from one merge of the shards (Prometheus histograms, see http.prometheus)."""
        return {
            name: (entry.latency.total, entry.latency.sum_us, entry.latency.cumulative(bounds_us))
            for name, entry in self._commands().items()
            if entry.latency.total
        }

    def reset(self) -> None:
        """CONFIG RESETSTAT: every counter and histogram reads zero from now on."""
        self._baseline_counts = self._raw_counts()
        self._baseline_commands = self._raw_commands()
        self._baseline_errors = self._raw_errors()
