"""Versions: the DVVSet clock of every key, for a store in cluster mode.

A store built with an actor id (the node id in its incarnation,
cluster/actor.py) and a hybrid logical clock
(``Store(config, actor_id=..., hlc=...)``) keeps, beside the keyspace, one
clock per key (cluster/dvvset.py) whose values are ``Version(timestamp,
actor, payload)`` and whose payloads are key states or tombstones
(cluster/key_state.py). Without an actor id there is no ``Versions`` and
nothing here runs.

How the clocks change:

* **Local writes.** ``Versions`` is the first subscriber of the keyspace's
  effects sink (store/effects.py): every unit a write command produced,
  whatever the command, reaches ``_stamp`` before the log. Each key the
  unit changed gets one new dot from this node whose context is everything
  this replica has seen of the key (``dvvset.overwrite``: Redis' overwrite
  semantics, a plain SET supersedes the local siblings), with the key's
  resulting state as payload: the state if the key is present, a tombstone
  if the unit left it absent. ``_stamp`` appends one ``("VERSION", key,
  stored clock)`` effect per key to the unit, so the log writes the data
  and its version in one record. Expiry by time emits no effect and makes
  no dot (every replica expires at the same absolute time). A unit that
  leaves a key absent whose versions already say "deleted" (one tombstone)
  makes no dot.
* **Remote states** (``apply_remote``, TKV.REPL.PUT): the peer's clock is
  synced with the local one, the winner is materialized into the keyspace
  through the keyspace's ordinary methods (so the log and WATCH see it),
  and the merged clock is emitted as the unit's VERSION effect: no new dot.
  A peer's clock that supersedes the local one (the key is new here, or the
  write descends from all this node holds: the usual replicated write) is
  stored as the bytes it came in, the winner's payload spliced to held; a
  duplicate of the local clock is found by comparing bytes. Only concurrent
  histories are decoded, synced and encoded again.
* **A client's delete of a key the keyspace does not hold**
  (``delete_hidden``; DEL, UNLINK, GETDEL, a multi-node cluster's FLUSHDB):
  the keyspace holds only the
  winner, and a live value can sit behind a tombstone (or an expired
  winner) as a concurrent sibling. Such a delete still deletes: a DEL
  effect, so ``_stamp`` gives the key a tombstone dot superseding every
  version this replica holds (after the write's gathering, every version
  of a read quorum), as Riak's delete puts a tombstone with the context of
  the fetch before it; the command counts the key as deleted. Without a
  live sibling nothing happens (no effect, no dot).
* **A write with a context** (``put_with_context``, TKV.PUTCTX): the new dot
  supersedes only what the context saw; other siblings stay.
* A key whose unit already holds a VERSION effect (written by
  ``apply_remote`` or ``put_with_context``) is stamped again only if the
  unit changed it after that effect (a MULTI with TKV.PUTCTX then SET):
  otherwise one dot per key per unit.
* FLUSHALL / FLUSHDB (the CLEAR effect) is a delete of every key: each key
  with versions gets a tombstone dot (O(keys) under the write lock, in one
  unit). A node-local wipe would be resurrected by the first read repair.

The stored form (what the table, the log and snapshots hold;
store/versions_stored.py) is one header byte, then the packed clock: bit 7 set when the winner is *held* (the key is
in the keyspace and the winner's payload says so instead of copying the
value, key_state.py: a key written once keeps its value once), the low 7
bits the number of siblings (capped at 127). ``clock_of`` gives the wire
form: the packed clock with the held payload replaced by the state. The
invariant: a key's winner is held exactly when the keyspace holds the key
(until it expires by time); every other value carries its payload.

Memory: a key written once costs its clock (40 bytes for a 20-byte node id
and no TTL, 48 with one) in a ``bytes`` object (33 bytes of header) plus
its slot in the table (the key object is the keyspace's own). A deleted
key keeps its tombstone clock, the same size, until it is purged.

**Purging a tombstone** (``purgeable``, ``purge``; the cluster's reaper,
server/cluster/tombstone_reaper.py, decides when): a key whose versions
are exactly one tombstone loses its versions altogether, only if they
are still exactly the clock the reaper confirmed on every replica. The
purge is a ``("VERSION", key, b"")`` effect: the log records it (replay
drops the key's versions, ``load``), the Tictac trees drop the key
(store/key_trees.py), and it makes no dot (``_stamp`` sees a VERSION).

For the coordinator (the replicated data path): ``unit_delta()`` gives
the keys the last unit changed (those with a VERSION effect in it) with
their wire clocks, under the write lock that unit ran under. The engine collects it
for a job that asks (``Job.version_deltas``, store/engine.py): one
``(reply index, [(key, packed clock), ...])`` per write command that
changed something, ready for TKV.REPL.PUT to each replica.

Rules kept here:

* Called under the store's write lock (reads: ``clock_of``, ``siblings``,
  ``stored``, under either lock). ``_stamp`` keeps the effects contract: no
  IO, no lock, no write to the keyspace.
* The hybrid clock sees every timestamp this node stores: a new local dot
  carries a timestamp above every sibling of its key, so the local write
  is the winner here, even just after a restart.
* Nothing is decoded on a read of the key's value (GET reads the keyspace);
  clocks are decoded only by writes, sibling reads and replication.
* A replica's clock arrives untrusted: malformed bytes, anonymous values,
  held payloads and states this build cannot hold are refused
  (``ClockFormatError`` / ``PayloadFormatError``, both ``ValueError``)
  before anything changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ..cluster import dvvset, key_state
from ..cluster.dvvset import Clock, ClockFormatError, Version, VersionVector
from ..cluster.hlc import HybridClock, physical_ms_of
from ..cluster.key_state import STRING_TYPE, TOMBSTONE, Held, KeyState
from ..cluster.ring import DEFAULT_PARTITION_COUNT
from .durability.records import CLEAR, DEL, SET, VERSION, Effect
from .key_trees import KeyTrees
from .keyspace import Keyspace
from .versions_state import current_state, expiry_of, materialize, prepare
from .versions_stored import (
    HELD_FLAG,
    HELD_ONE,
    LONE_TOMBSTONE_TAIL,
    SIBLING_COUNT_MASK,
    STATE_AFTER,
    UNHELD_ONE,
    pack,
    pack_u64,
    top_timestamp,
    unpack,
    unpack_u64,
)

log = logging.getLogger(__name__)

# The stored clock of a VERSION effect that purges the key's versions.
PURGED = b""
# Candidate keys ``purgeable`` looks at in one call at most.
PURGE_SCAN_KEYS = 1000

# A key with more siblings than this is logged (issue 10: "a warning log above 25").
SIBLINGS_WARNING = 25


def _supersedes(remote: dvvset.Scan, local: list[tuple[bytes, int, int]]) -> bool:
    """Whether syncing ``remote`` into the stored clock whose entries are
    ``local`` (no anonymous value) gives ``remote`` itself
    (``dvvset._merge`` keeps each remote entry), and that differs from the
    local clock. Entry by entry, every local one is in
    ``remote``, either further on with every dot ``remote`` no longer
    holds also gone here, or the same history where ``remote`` holds no
    value (local values of it are then outdated); some remote entry is not
    the local one. Values are never compared: a history both sides hold
    values of goes the slow way."""
    if not remote.entries:
        return False
    theirs = {actor: (counter, count) for actor, counter, count in remote.entries}
    unchanged = 0
    for actor, counter, count in local:
        their = theirs.get(actor)
        if their is None:
            return False
        their_counter, their_count = their
        if their_counter == counter:
            if their_count:
                return False  # both hold values of the same history: compare them the slow way
            unchanged += not count
        elif their_counter < counter or their_counter - their_count < counter - count:
            return False
    return unchanged < len(remote.entries)


class Versions:
    """See the module docstring."""

    def __init__(
        self, keyspace: Keyspace, actor: bytes, hlc: HybridClock, *, partitions: int = DEFAULT_PARTITION_COUNT,
    ) -> None:
        if not 0 < len(actor) <= dvvset.MAX_ACTOR_BYTES:
            raise ValueError(f"an actor id is 1 to {dvvset.MAX_ACTOR_BYTES} bytes")
        self.keyspace = keyspace
        # This node's actor in the clocks (cluster/actor.py: the node id in
        # this run's incarnation).
        self.actor = actor
        self.hlc = hlc
        # The stored clock of a key only this node wrote starts with this
        # (after the header byte): format, one actor (this one), one entry.
        self._own_prefix = bytes((dvvset.FORMAT, 1, len(actor))) + actor + b"\x01\x00"
        # key -> stored clock (header byte + packed clock). A plain dict (a
        # third of the project's table's cost per insert, in C); snapshots
        # walk a list of its keys taken at one moment (``keys``).
        self._clocks: dict[bytes, bytes] = {}
        # The last unit stamped (unit_delta reads its VERSION effects).
        self._last_unit: list[Effect] = []
        # The figures ``statistics()`` shows, kept exact as each stored clock
        # changes (``_note``; O(1) per write, never a walk): keys holding more
        # than one sibling now; keys per sibling count (index: the header's
        # count, 0 to 127) so the largest count now is a scan of 128 slots; the most ever seen on one key; keys whose
        # winner the keyspace does not hold (deletions kept as tombstones);
        # the bytes of every stored clock.
        self.keys_with_siblings = 0
        self._keys_by_siblings = [0] * (SIBLING_COUNT_MASK + 1)
        self.largest_siblings_peak = 0
        self.tombstone_keys = 0
        self.stored_bytes = 0
        keyspace.effects.subscribe(self._stamp, first=True)
        # Anti-entropy's Tictac tree of every partition over these clocks
        # (store/key_trees.py): a subscriber after the stamper.
        self.trees = KeyTrees(self, partitions)

    # --- reads (read or write lock) --------------------------------------------

    def __len__(self) -> int:
        return len(self._clocks)

    def stored(self, key: bytes) -> bytes | None:
        """The stored form of the key's clock (see the module docstring)."""
        stored: bytes | None = self._clocks.get(key)
        return stored

    def clock_of(self, key: bytes) -> bytes | None:
        """The key's clock in wire form (every payload a state or a
        tombstone), for a peer; None if the key has no versions."""
        stored = self.stored(key)
        if stored is None:
            return None
        if not stored[0] & HELD_FLAG:
            return stored[1:]
        return self._wire(key, stored)

    def _wire(self, key: bytes, stored: bytes) -> bytes:
        """The wire form of a held stored clock: its packed bytes with each
        held payload's span replaced by the key's state (what
        ``encode(_copy_out_held(decode(...)))`` gives, without building the
        clock: a stored clock is canonical, this node encoded it)."""
        packed = stored[1:]
        spans = None
        prefix = self._own_prefix
        if stored[0] == HELD_ONE[0] and packed.startswith(prefix):
            # A key only this node wrote, one sibling (the usual key): after
            # the counter, one value (count 1, u64, actor index 0), then its
            # payload's length, the payload, and no anonymous value.
            pos = len(prefix)
            pos = pos + 1 if packed[pos] < 0x80 else dvvset.read_varint(packed, pos)[1]
            if packed[pos] == 1 and packed[-1] == 0:
                spans = [(pos + 10, len(packed) - 1)]
        if spans is None:
            spans = dvvset.scan(packed).spans
        pieces: list[bytes] = []
        done = 0
        for start, end in spans:
            length_bytes = 1 if packed[start] < 0x80 else dvvset.read_varint(packed, start)[1] - start
            payload = packed[start + length_bytes : end]
            if not key_state.is_held(payload):
                continue
            state = current_state(self.keyspace, key)
            if state is None:
                held = key_state.decode(payload)
                assert isinstance(held, Held)
                state = key_state.expired_state(held.expire_at_ms)
            explicit = key_state.encode_state(state)
            pieces += (packed[done:start], dvvset.varint_bytes(len(explicit)), explicit)
            done = end
        pieces.append(packed[done:])
        return b"".join(pieces)

    def siblings(self, key: bytes) -> tuple[bytes, list[tuple[Version, KeyState | None]]]:
        """TKV.SIBLINGS: the opaque context of the key's history and every
        sibling with its state (None: a deletion), the winner first. A key
        without versions (written before cluster mode) is one sibling with
        an empty context."""
        stored = self.stored(key)
        if stored is None:
            state = current_state(self.keyspace, key)
            empty = dvvset.encode_context(())
            return empty, [] if state is None else [(Version(0, b"", key_state.encode_state(state)), state)]
        clock = self._copy_out_held(key, dvvset.decode(stored[1:]))
        ranked = sorted(dvvset.values(clock), reverse=True)
        states: list[tuple[Version, KeyState | None]] = []
        for value in ranked:
            decoded = key_state.decode(value.payload)
            assert not isinstance(decoded, Held)  # copied out above
            states.append((value, decoded))
        return dvvset.encode_context(dvvset.join(clock)), states

    def unit_delta(self) -> list[tuple[bytes, bytes]]:
        """The keys the last unit changed with their wire clocks (the
        coordinator's seam; write lock, the one that unit ran under)."""
        unit = self._last_unit
        if len(unit) == 2 and unit[0][0] == SET and unit[1][0] == VERSION and unit[1][1] == unit[0][1]:
            wire = self._set_wire(unit[0], unit[1][2])
            if wire is not None:
                return [(unit[0][1], wire)]
        delta = []
        for key in dict.fromkeys(effect[1] for effect in self._last_unit if effect[0] == VERSION):
            clock = self.clock_of(key)
            if clock is not None:
                delta.append((key, clock))
        return delta

    def _set_wire(self, effect: Effect, stored: bytes) -> bytes | None:
        """The wire clock after a unit of one SET that ``_overwrite`` wrote
        straight as bytes (a key only this node wrote: the usual
        coordinator's write), built from the effect's value and expiry, not
        read back from the keyspace (``_wire``: about half the delta's
        cost); None for any other clock (``clock_of`` then). Exactly
        ``clock_of``'s bytes: the held payload, the last thing before the
        no-anonymous-values byte, replaced by the string's state."""
        at_ms = effect[3]
        if (
            stored[0] != HELD_ONE[0] or not stored.startswith(self._own_prefix, 1)
            or (at_ms is not None and at_ms <= self.keyspace.now_ms())  # expired since: clock_of's way
        ):
            return None
        held = key_state.encode_held(at_ms)
        cut = len(stored) - 2 - len(held)  # the held payload's length byte
        if stored[cut] != len(held) or not stored.endswith(held, cut + 1, len(stored) - 1):
            return None  # not the one-value layout _overwrite writes
        explicit = key_state.encode_state(KeyState(STRING_TYPE, effect[2], at_ms))
        return b"".join((stored[1:cut], dvvset.varint_bytes(len(explicit)), explicit, b"\x00"))

    def keys(self) -> list[bytes]:
        """Every key with versions, now (for snapshots: O(keys), read lock)."""
        return list(self._clocks)

    def _copy_out_held(self, key: bytes, clock: Clock) -> Clock:
        """``clock`` with a held payload replaced by the keyspace's state of
        the key (an expired state if the key has expired)."""

        def explicit(value: Version) -> Version:
            held = key_state.decode(value.payload)
            if not isinstance(held, Held):
                return value
            state = current_state(self.keyspace, key)
            if state is None:
                state = key_state.expired_state(held.expire_at_ms)
            return value._replace(payload=key_state.encode_state(state))

        return dvvset.map_values(clock, explicit)

    # --- writes (write lock) ----------------------------------------------------

    def _timestamp(self, clock: Clock) -> int:
        """A timestamp above every sibling of ``clock`` and everything before."""
        top = top_timestamp(clock)
        return self.hlc.observe(top) if top else self.hlc.now()

    def _put(self, key: bytes, clock: Clock, old: bytes | None) -> bytes:
        """Store ``clock`` for ``key``; keeps the sibling counts. Returns the
        stored form."""
        stored = pack(clock)
        self._note(key, old, stored)
        self._clocks[key] = stored
        return stored

    def _note(self, key: bytes, old: bytes | None, stored: bytes) -> None:
        """Keep the figures of ``statistics()`` as ``key``'s stored clock goes
        from ``old`` (None: no versions) to ``stored``; every write to
        ``_clocks`` calls this, except ``_overwrite``'s one-sibling path,
        which inlines it."""
        if old is None:
            self.stored_bytes += len(stored)
            self.tombstone_keys += not stored[0] & HELD_FLAG
            self._note_siblings(key, None, stored)
        else:
            self.stored_bytes += len(stored) - len(old)
            self.tombstone_keys += (not stored[0] & HELD_FLAG) - (not old[0] & HELD_FLAG)
            self._note_siblings(key, old, stored)

    def _note_siblings(self, key: bytes, old: bytes | None, stored: bytes) -> None:
        """Keep the sibling counts as ``key``'s clock goes from ``old`` to ``stored``."""
        before = None if old is None else old[0] & SIBLING_COUNT_MASK
        after = stored[0] & SIBLING_COUNT_MASK
        if before == after:
            return
        by_siblings = self._keys_by_siblings
        if before is not None:
            by_siblings[before] -= 1
            self.keys_with_siblings -= before > 1
        by_siblings[after] += 1
        self.keys_with_siblings += after > 1
        if after > self.largest_siblings_peak:
            self.largest_siblings_peak = after
        if after > SIBLINGS_WARNING and (before is None or after > before):
            # The key's first 64 bytes as a Python bytes literal: bounded, and
            # control characters escaped, whatever a client put in the key.
            log.warning("key %r has %d siblings: resolve them with TKV.SIBLINGS and TKV.PUTCTX", key[:64], after)

    def _stamp(self, unit: list[Effect]) -> None:
        """The effects subscriber: one new local dot for each key the unit
        changed that has no VERSION effect in it yet (module docstring)."""
        self._last_unit = unit
        if len(unit) == 1:
            effect = unit[0]  # the usual unit: one write of one key
            state = STATE_AFTER.get(effect[0])
            if state is not None:
                key = effect[1]
                present, at_ms = state(effect)
                if present and at_ms is not None and at_ms <= self.keyspace.now_ms():
                    present = False  # stored already expired (SET ... PXAT in the past)
                stored = self._overwrite(key, present, at_ms)
                if stored is not None:
                    unit.append((VERSION, key, stored))
                return
        # key -> changed since its last VERSION effect in this unit (if any).
        dirty: dict[bytes, bool] = {}
        for effect in unit:
            op = effect[0]
            if op == VERSION:
                dirty[effect[1]] = False
            elif op == CLEAR:
                dirty.update(dict.fromkeys(self._clocks, True))
            else:
                dirty[effect[1]] = True
        keyspace = self.keyspace
        for key, changed in dirty.items():
            if changed:
                present = keyspace.exists(key)
                stored = self._overwrite(key, present, expiry_of(keyspace, key) if present else None)
                if stored is not None:
                    unit.append((VERSION, key, stored))

    def _overwrite(self, key: bytes, present: bool, at_ms: int | None) -> bytes | None:
        """A new local dot for ``key`` holding its current state (``present``,
        expiring at ``at_ms``), superseding every version known here; None
        when nothing is to be recorded (the key is absent and already a
        lone tombstone). Written straight as bytes when the key's clock
        holds only this node's entry (a key only this node wrote: the usual
        case); ``_overwrite_clock`` otherwise."""
        old = self._clocks.get(key)
        prefix = self._own_prefix
        if old is None:
            counter, timestamp = 1, self.hlc.now()
        elif old.startswith(prefix, 1):
            pos = 1 + len(prefix)
            counter = old[pos]
            if counter < 0x80:
                pos += 1
            else:
                counter, pos = dvvset.read_varint(old, pos)
            values = old[pos]
            if values >= 0x80:
                return self._overwrite_clock(key, old, present, at_ms)  # 128 siblings or more: rare
            if not present and old[0] == 1 and old.endswith(LONE_TOMBSTONE_TAIL) and len(old) == pos + 13:
                return None
            # Values of one actor are newest first: the first has the top timestamp.
            timestamp = self.hlc.observe(unpack_u64(old, pos + 1)[0]) if values else self.hlc.now()
            counter += 1
        else:
            return self._overwrite_clock(key, old, present, at_ms)
        payload = key_state.encode_held(at_ms) if present else TOMBSTONE
        stored = b"".join((
            HELD_ONE if present else UNHELD_ONE, prefix, dvvset.varint_bytes(counter), b"\x01", pack_u64(timestamp),
            bytes((0, len(payload))), payload, b"\x00",
        ))
        # ``_note`` inlined (the usual write): the new clock has one sibling.
        if old is None:
            self.stored_bytes += len(stored)
            self.tombstone_keys += not present
            self._keys_by_siblings[1] += 1
        else:
            self.stored_bytes += len(stored) - len(old)
            self.tombstone_keys += (not present) - (not old[0] & HELD_FLAG)
            if old[0] & SIBLING_COUNT_MASK != 1:
                self._note_siblings(key, old, stored)
        self._clocks[key] = stored
        return stored

    def _overwrite_clock(self, key: bytes, old: bytes | None, present: bool, at_ms: int | None) -> bytes | None:
        """``_overwrite`` through the decoded clock (several actors)."""
        local = unpack(old)
        if not present and old is not None and old[0] == 1 and dvvset.values(local)[0].payload == TOMBSTONE:
            return None
        payload = key_state.encode_held(at_ms) if present else TOMBSTONE
        version = Version(self._timestamp(local), self.actor, payload)
        return self._put(key, dvvset.overwrite(local, self.actor, version), old)

    def delete_hidden(self, key: bytes) -> bool:
        """After a client's delete found ``key`` absent from the keyspace:
        whether a live value is still among its siblings (one that lost to a
        tombstone or to a winner that expired); if so, delete it too (a DEL
        effect: ``_stamp`` makes a tombstone dot superseding every version
        here) and answer True, the key counts as deleted. Only a clock with
        several siblings can hide one (a lone winner is held exactly when
        the keyspace holds the key), so the usual miss decodes nothing."""
        stored = self._clocks.get(key)
        if stored is None or stored[0] & SIBLING_COUNT_MASK < 2:
            return False
        now_ms = self.keyspace.now_ms()
        for value in dvvset.scan(stored[1:]).values:
            # A held payload here is an expired winner (a live one is in the keyspace: the delete found it).
            state = key_state.decode(value.payload)
            if isinstance(state, KeyState) and not state.expired(now_ms):
                self.keyspace.effects.emit((DEL, key))
                return True
        return False

    def put_with_context(self, key: bytes, context: VersionVector, value: bytes) -> None:
        """TKV.PUTCTX: set ``key`` to the string ``value`` (no TTL) with a new
        local dot that supersedes exactly what ``context`` saw; siblings it
        has not seen stay."""
        old = self.stored(key)
        # The held value's state leaves the keyspace now: keep it as a copy.
        local = self._copy_out_held(key, unpack(old))
        version = Version(self._timestamp(local), self.actor, key_state.HELD)
        clock = dvvset.update(dvvset.new(version, context), self.actor, local)
        self.keyspace.set(key, value)
        self.keyspace.effects.emit((VERSION, key, self._put(key, clock, old)))

    def apply_remote(self, key: bytes, packed: bytes) -> bool:
        """TKV.REPL.PUT: sync a replica's clock (wire form) into the key's,
        make the keyspace hold the winner (or not hold the key, for a
        tombstone), no new dot. Returns whether anything changed.
        ``ValueError`` (nothing changed) for a clock this node refuses.

        Two fast paths give exactly the slow path's result (a property test
        holds them to it) without building clocks: the merge is the remote
        clock itself (the key is new here, or the write descends from all
        this node holds: the usual replicated write), so its bytes are
        stored as they came, the winner's payload spliced to *held*; and
        the remote clock is the one held here (a duplicate), so nothing
        changes."""
        packed = bytes(packed)
        remote = dvvset.scan(packed)
        if remote.anonymous:
            raise ClockFormatError("a replica's clock has no anonymous values")
        states: list[KeyState | None] = []
        for value in remote.values:
            state = key_state.decode(value.payload)  # PayloadFormatError if damaged
            if isinstance(state, Held):
                raise ClockFormatError("a held payload never leaves its node")
            if state is not None:
                prepare(state)  # PayloadFormatError for a state this node could not hold
            states.append(state)
        old = self._clocks.get(key)
        local_entries, local_anonymous = ([], 0) if old is None else dvvset.entries_of(old[1:])
        if remote.canonical and not local_anonymous and _supersedes(remote, local_entries):
            self.hlc.observe(max((value.timestamp for value in remote.values), default=0))
            self.keyspace.effects.emit((VERSION, key, self._take(key, packed, remote, states, old)))
            return True
        if (
            old is not None and local_entries == remote.entries
            and packed == (old[1:] if not old[0] & HELD_FLAG else self._wire(key, old))
        ):
            return False  # a duplicate: the sync below would give the local clock back
        local = unpack(old)
        remote_clock = dvvset.from_scan(remote)
        merged = dvvset.sync2(local, remote_clock)
        if merged == local:
            return False
        self.hlc.observe(top_timestamp(remote_clock))
        merged = self._settle(key, merged)
        self.keyspace.effects.emit((VERSION, key, self._put(key, merged, old)))
        return True

    def _take(self, key: bytes, packed: bytes, remote: dvvset.Scan, states: list[KeyState | None], old: bytes | None) -> bytes:
        """``apply_remote`` when the merge is the remote clock: ``_settle``
        and ``_put`` on its bytes (canonical: what encoding its clock gives).
        Returns the stored form."""
        values = remote.values
        present = False
        if values:
            winner = max(values)  # dvvset.last
            state = states[values.index(winner)]
            present = materialize(self.keyspace, key, state, None if state is None else prepare(state))
        else:
            state = None  # a history without values: nothing to hold
            materialize(self.keyspace, key, None, None)
        if present:
            assert state is not None
            held = key_state.encode_held(state.expire_at_ms)
            spliced = bytes((len(held),)) + held
            pieces: list[bytes] = []
            done = 0
            for value, (start, end) in zip(values, remote.spans):
                if value == winner:  # every copy of the winner, as map_values would
                    pieces += (packed[done:start], spliced)
                    done = end
            pieces.append(packed[done:])
            packed = b"".join(pieces)
        stored = bytes(((HELD_FLAG if present else 0) | min(len(values), SIBLING_COUNT_MASK),)) + packed
        self._note(key, old, stored)
        self._clocks[key] = stored
        return stored

    def _settle(self, key: bytes, clock: Clock) -> Clock:
        """Make the keyspace hold ``clock``'s winner; the clock with its
        payloads right (only a winner the keyspace holds is held)."""
        candidates = dvvset.values(clock)
        if candidates:
            winner = dvvset.last(clock)
            if key_state.is_held(winner.payload):
                return clock  # the local value still wins: the keyspace is right
            state = key_state.decode(winner.payload)
            assert not isinstance(state, Held)
        else:
            winner, state = None, None  # a history without values: nothing to hold
        update = None if state is None else prepare(state)
        clock = self._copy_out_held(key, clock)
        if not materialize(self.keyspace, key, state, update):
            return clock
        assert state is not None and winner is not None
        held = key_state.encode_held(state.expire_at_ms)
        return dvvset.map_values(clock, lambda value: value._replace(payload=held) if value == winner else value)

    def touch(self, key: bytes) -> None:
        """Emit the key's current clock again (a TKV.REPL.PUT that changed
        nothing still answers only once its state is in the log)."""
        stored = self.stored(key)
        if stored is not None:
            self.keyspace.effects.emit((VERSION, key, stored))

    def purgeable(self, partition: int, before_ms: int, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` keys of ``partition`` whose versions are one
        tombstone written before ``before_ms`` (physical milliseconds of
        its hybrid timestamp), with their wire clocks: the reaper's
        candidates. Walks the partition's candidate keys oldest first
        (``KeyTrees.tombstones``), at most ``PURGE_SCAN_KEYS`` of them (a
        bounded slice under the read lock)."""
        found: list[tuple[bytes, bytes]] = []
        clocks = self._clocks
        for scanned, key in enumerate(self.trees.tombstones[partition]):
            if scanned >= PURGE_SCAN_KEYS or len(found) >= limit:
                break
            stored = clocks.get(key)
            if stored is None or stored[0] != UNHELD_ONE[0]:
                continue
            values = dvvset.scan(stored[1:]).values
            if len(values) == 1 and values[0].payload == TOMBSTONE and physical_ms_of(values[0].timestamp) < before_ms:
                found.append((key, stored[1:]))
        return found

    def purge(self, key: bytes, clock: bytes) -> bool:
        """Drop ``key``'s versions if they are exactly ``clock`` (wire form)
        and that is one tombstone (module docstring); whether it did. Write lock."""
        stored = self._clocks.get(key)
        if stored is None or stored[0] != UNHELD_ONE[0] or stored[1:] != clock:
            return False
        values = dvvset.scan(clock).values
        if len(values) != 1 or values[0].payload != TOMBSTONE:
            return False
        self._forget(key, stored)
        self.keyspace.effects.emit((VERSION, key, PURGED))
        return True

    def _forget(self, key: bytes, stored: bytes) -> None:
        """Drop ``key``'s versions (``stored``) and their share of the figures."""
        del self._clocks[key]
        self.stored_bytes -= len(stored)
        self.tombstone_keys -= not stored[0] & HELD_FLAG
        self._keys_by_siblings[stored[0] & SIBLING_COUNT_MASK] -= 1
        self.keys_with_siblings -= stored[0] & SIBLING_COUNT_MASK > 1

    # --- loading (nothing subscribed, expiry paused) ---------------------------

    def load(self, key: bytes, stored: bytes) -> None:
        """Replay a VERSION effect. The keyspace holds the key's winner when
        the header says it is held (the SET before it in the same record or
        snapshot chunk put it there); otherwise the key must be absent.
        ``PURGED`` (empty) replays a purge: the key's versions go."""
        if stored == PURGED:
            old = self._clocks.get(key)
            if old is not None:
                self._forget(key, old)
            return
        if len(stored) < 2:
            raise ClockFormatError("short stored clock")
        old = self.stored(key)
        self._note(key, old, stored)
        self._clocks[key] = stored
        if not stored[0] & HELD_FLAG:
            self.keyspace.delete(key)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No stamping inside the block (loading: a replay is not a write),
        and no tree updates: the trees are rebuilt when it ends."""
        effects = self.keyspace.effects
        effects.unsubscribe(self._stamp)
        self.trees.stop()
        try:
            yield
        finally:
            effects.subscribe(self._stamp, first=True)
            # Loading set clocks without effects: the trees are made again.
            self.trees.rebuild()
            self.trees.start()

    def statistics(self) -> dict[str, int]:
        """INFO cluster and /metrics (O(1): 128 slots scanned, no key walked):

        * ``versioned_keys``: keys with versions (tombstones included);
        * ``keys_with_siblings``: keys holding more than one sibling now;
        * ``largest_siblings``: the most siblings one key holds now (1 when
          no key has siblings, 0 when no key has any value; 127 means 127 or
          more, the stored header's cap);
        * ``largest_siblings_peak``: the most one key held since start
          (recovery's replay included);
        * ``tombstone_keys``: keys with versions that the keyspace does not
          hold: deletions kept as tombstones (also a winner that had expired
          when it arrived; a key expired by time here keeps its held winner);
        * ``version_bytes``: the stored clocks' bytes (not the Python
          objects' overhead nor the keys).
        """
        by_siblings = self._keys_by_siblings
        largest = next((count for count in range(SIBLING_COUNT_MASK, 0, -1) if by_siblings[count]), 0)
        return {
            "versioned_keys": len(self._clocks),
            "keys_with_siblings": self.keys_with_siblings,
            "largest_siblings": largest,
            # The fast path never raises the peak (its clocks have one sibling).
            "largest_siblings_peak": max(self.largest_siblings_peak, largest),
            "tombstone_keys": self.tombstone_keys,
            "version_bytes": self.stored_bytes,
        }
