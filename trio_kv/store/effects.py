"""The one door effects leave through: what every applied write did, in order.

Redis sends each write to the AOF and to the replicas from one place
(``propagateNow``); trio_kv does the same here. The keyspace emits one
*effect* for every change it applies, the engine marks where each write
command ends, and every subscriber receives each command's effects as one
*unit*. The append-only log subscribes today (``Persistence.log``: one log
record per unit), and in cluster mode the versions' stamper and
anti-entropy's Tictac trees (store/key_trees.py, which read the VERSION
effects); snapshot undo records, keyspace notifications or replication
to peers subscribe the same way, without touching the keyspace or the
engine. (The sorted key index does not: it needs only keys entering and
leaving the table, expiry included, so the keyspace feeds it at those
points, store/sorted_index.py; an overwrite then costs it nothing.)

Effects are tuples of absolute facts (the byte format is
``store/durability/records.py``'s):

* ``("SET", key, value, expire_at_ms | None)``: the key now holds exactly
  this value and this absolute expiry (the expiry in force: KEEPTTL
  included).
* ``("PATCH", key, old_length, offset, data, expire_at_ms | None)``: APPEND or
  SETRANGE on an existing key (or SETRANGE creating one, from length 0), the
  request's bytes and not the value (``Keyspace.apply_patch``).
* ``("UPDATE", key, type_code, created, update_bytes, expire_at_ms | None)``:
  a typed value (a hash...) changed by its family's update
  (``Keyspace.update``, ``apply_update``; a rename carries the whole value).
* ``("DEL", key)`` only when something was deleted; ``("EXPIRE", key,
  at_ms)`` and ``("PERSIST", key)`` only when applied; ``("CLEAR",)``
  (FLUSHALL, FLUSHDB).
* ``("VERSION", key, stored_clock)``: cluster mode only, the key's versions
  after the unit (``store/versions.py``; never emitted by the keyspace).

The contract:

* **Once, in apply order.** Every change a write applies is emitted exactly
  once, right after it is applied, so the effects are in the order the
  keyspace went through them. A write that changes nothing emits nothing.
* **Under the write lock.** Effects are emitted, and units delivered, only by
  code holding the store's write lock (a write command, or the write slice
  of a sliced one). So a subscriber sees the writes of all connections in
  one total order, the keyspace's, and the keyspace is exactly the state its
  units describe when it is called.
* **Units are the atomic boundaries.** ``end_command`` delivers what was
  emitted since the last boundary as one unit: one write command, a whole
  MULTI/EXEC, a whole MSET (the log writes one record per unit, so a replay
  never applies half of one). The engine calls it after every write command
  that emitted something, and after each write slice of a sliced command
  (FLUSHALL's CLEAR). A unit is never empty.
* **Expiry emits nothing.** Keys deleted because their time ran out (lazily
  by a write, or by the active sweep) emit no DEL: the absolute expiry in the
  SET, PATCH or EXPIRE effect that gave the key its TTL already implies the
  deletion, for any subscriber that reads a clock, and the log relies on it
  (recovery drops expired keys after replaying). Redis propagates a DEL
  instead; a subscriber that cannot keep time (a replica applying effects
  blindly) would need the active sweep to emit and end units of its own.
* **What a subscriber may do.** It is called on the worker thread that holds
  the write lock, with the unit's list, which it may keep (the sink starts a
  new one). It may read the keyspace. It must not block (no IO: the log only
  appends to an in-memory buffer that other threads write out), must not
  take the store lock, must not write to the keyspace (that would emit
  effects inside the delivery), and must be quick: every write waits for
  it. It must not raise, with one exception: a unit it cannot keep (the log:
  a record over the format's size limit) raises ``ValueError`` before it
  kept any part of it; the other subscribers still get the unit, then
  ``end_command`` raises the first such error, and the engine answers that
  command with an error instead of its reply (the write stays applied in
  memory). Anything else raised is a bug that stops the batch.
* **The stamper goes first.** In cluster mode the store's versions
  (``store/versions.py``) subscribe with ``first=True`` and are the one
  subscriber that may change the unit: they append one ``("VERSION", key,
  clock)`` effect per key the unit changed (a new dot, or the clock a
  remote state or a context write already emitted), so the subscribers
  after them (the log) get the data and its version as one unit. A
  subscriber that keeps the list must therefore not assume it ends with
  the keyspace's last effect.
* **Nobody subscribed costs one test.** With no subscriber ``pending`` is
  None and an emitter pays one ``is not None`` test per change. While
  recovery replays the log nobody is subscribed: a replay is not a new
  write.

The keyspace appends to ``pending`` itself (the inline form of ``emit``),
which keeps a plain SET to one list append.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Effect = tuple[Any, ...]
# Called with one unit: the effects of one write command, in apply order.
Subscriber = Callable[[list[Effect]], object]


class EffectSink:
    """See the module docstring. Owned by the keyspace (``Keyspace.effects``)."""

    __slots__ = ("pending", "_subscribers")

    def __init__(self) -> None:
        # The effects emitted since the last unit boundary; None while
        # nobody is subscribed (emitting then costs one test).
        self.pending: list[Effect] | None = None
        self._subscribers: list[Subscriber] = []

    @property
    def subscribed(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber, *, first: bool = False) -> None:
        """From the next effect on, ``subscriber`` gets every unit (write
        lock held, or nothing writing yet); ``first``: before every other
        subscriber (the versions' stamper, which appends to the unit)."""
        if first:
            self._subscribers.insert(0, subscriber)
        else:
            self._subscribers.append(subscriber)
        if self.pending is None:
            self.pending = []

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop delivering to ``subscriber`` (write lock held, or nothing
        writing). Effects pending at that moment go to the others."""
        self._subscribers.remove(subscriber)
        if not self._subscribers:
            self.pending = None

    def emit(self, effect: Effect) -> None:
        """Record one applied change (write lock held)."""
        pending = self.pending
        if pending is not None:
            pending.append(effect)

    def end_command(self) -> None:
        """A unit boundary: deliver the pending effects, as one unit, to every
        subscriber in subscription order (write lock held). Nothing pending:
        nothing delivered. Raises the first ``ValueError`` a subscriber raised
        for a unit it could not keep, after every subscriber was called."""
        unit = self.pending
        if not unit:
            return
        self.pending = []
        subscribers = self._subscribers
        if len(subscribers) == 1:
            subscribers[0](unit)  # the usual case (only the log): no loop
            return
        refused: ValueError | None = None
        for subscriber in subscribers:
            try:
                subscriber(unit)
            except ValueError as error:
                refused = refused or error
        if refused is not None:
            raise refused
