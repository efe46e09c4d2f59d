"""Dotted version vector sets (DVVSet): one key's versions, Riak 2.x's way.

Riak's ``dvvset.erl`` (Gonçalves, Almeida et al., "Dotted Version Vectors:
Efficient Causality Tracking for Distributed Key-Value Stores", 2014) in
typed Python, with the same operations: ``new``, ``sync``, ``join``,
``update``, ``size``, ``ids``, ``values``, ``equal``, ``less``, ``map``
(``map_values``), ``last``, ``lww``. A *clock* is a causal history plus
the values (siblings) not yet superseded in it:

* ``entries``: one ``Entry(actor, counter, values)`` per actor that ever
  wrote, sorted by actor. The actor's history is the dots ``(actor, 1..counter)``;
  ``values`` are the siblings written by that actor that are still live,
  newest first, and they are its *latest* dots: ``values[i]`` is the dot
  ``(actor, counter - i)`` (the "compact" DVVSet: one counter stands for
  the whole history, and the live values are always the top ones, because
  only the actor itself issues its dots and always on top of everything it
  has seen).
* ``anonymous``: values without a dot (a client's new value in
  ``new(vector, value)`` before ``update`` gives it one). A server's stored
  clock has none.

Types, decided here:

* An actor id is ``bytes``: 20 bytes made from the node id (40 hex
  characters) and its incarnation (cluster/actor.py; the node id's own
  bytes until the node restarts uncleanly). Anything up to 255 bytes encodes.
* A value is a ``Version(timestamp, actor, payload)``: the hybrid logical
  clock timestamp of the write (cluster/hlc.py), the node that made it, and
  the key's state after it as opaque bytes (cluster/key_state.py: a state
  or a tombstone). ``last`` (what GET shows) is the greatest value by
  ``(timestamp, actor)``, ties (only the same write twice) broken by
  payload so every node picks the same one.

Deviations from dvvset.erl, both for determinism: ``anonymous`` is a set
(sorted, no duplicates; Erlang keeps the list order of ``new`` and unions
as a set in ``sync``), and a counter is at least 1 (Erlang accepts
``{b, 0, []}``, which no ``update`` produces).

The packed encoding (``encode`` / ``decode``; no pickle, all lengths
checked, a malformed clock from a peer is ``ClockFormatError``)::

    u8 format (1)
    varint actors, each: u8 length, the actor's bytes   (sorted, distinct)
    varint entries, each: varint actor index, varint counter,
                          varint values, each value
    varint anonymous values, each value
    value: u64 timestamp, varint actor index, varint payload length, payload

Actors are written once, in a table, and referred to by index (the value's
actor is usually its entry's). A key written once by one node with a small
payload is 39 bytes. The context a client gets (``encode_context``,
the ``join`` of a clock) is the vector alone, base64url without padding so
it is printable (``redis-cli``, ``curl``) and can be pasted back.

Rules kept here: pure functions of immutable values (named tuples: a
frozen dataclass costs twice as much to build, and decoding builds many),
no IO, no clocks; nothing here knows the store.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

FORMAT = 1
CONTEXT_FORMAT = 1
MAX_ACTOR_BYTES = 255

_pack_u64 = struct.Struct("<Q").pack
_unpack_u64 = struct.Struct("<Q").unpack_from


class Version(NamedTuple):
    """One written value: when (HLC), by whom (actor id), what (payload)."""

    timestamp: int
    actor: bytes
    payload: bytes


class Entry(NamedTuple):
    actor: bytes
    # The actor's history is its dots 1..counter.
    counter: int
    # Its live values, newest first: values[i] has the dot (actor, counter - i).
    values: tuple[Version, ...] = ()


class Clock(NamedTuple):
    # Sorted by actor, one per actor.
    entries: tuple[Entry, ...] = ()
    # Values with no dot yet: sorted, distinct.
    anonymous: tuple[Version, ...] = ()


# A version vector, the causal history alone: (actor, counter), sorted by actor.
VersionVector = tuple[tuple[bytes, int], ...]

EMPTY = Clock()


class ClockFormatError(ValueError):
    """Bytes that are not a well-formed packed clock or context."""


# --- construction --------------------------------------------------------------


def _anonymous(values: Iterable[Version]) -> tuple[Version, ...]:
    return tuple(sorted(set(values)))


def new(values: Version | Iterable[Version] = (), vector: VersionVector = ()) -> Clock:
    """A clock with the history of ``vector`` (a ``join`` result; none by
    default) and ``values`` as anonymous values: what a client's write is
    before ``update`` gives it a dot."""
    if isinstance(values, Version):
        values = (values,)
    entries: list[Entry] = []
    for actor, counter in sorted(vector):
        if counter < 1:
            raise ValueError(f"version vector counter {counter} for {actor!r}: counters start at 1")
        entries.append(Entry(actor, counter))
    return Clock(tuple(entries), _anonymous(values))


# --- the causal order ----------------------------------------------------------


def join(clock: Clock) -> VersionVector:
    """The causal history as a version vector (the context a client gets)."""
    return tuple((entry.actor, entry.counter) for entry in clock.entries)


def _vector_dict(clock: Clock) -> dict[bytes, int]:
    return {entry.actor: entry.counter for entry in clock.entries}


def less(a: Clock, b: Clock) -> bool:
    """``a``'s history is strictly contained in ``b``'s: every value of ``a``
    is outdated by ``b``."""
    older, newer = _vector_dict(a), _vector_dict(b)
    if older == newer:
        return False
    return all(newer.get(actor, 0) >= counter for actor, counter in older.items())


def equal(a: Clock, b: Clock) -> bool:
    """The same causal history and the same number of live values per actor
    (values themselves not compared, as in dvvset.erl)."""
    return len(a.entries) == len(b.entries) and all(
        x.actor == y.actor and x.counter == y.counter and len(x.values) == len(y.values)
        for x, y in zip(a.entries, b.entries)
    )


def descends(clock: Clock, vector: VersionVector) -> bool:
    """``clock``'s history contains every dot of ``vector``."""
    mine = _vector_dict(clock)
    return all(mine.get(actor, 0) >= counter for actor, counter in vector)


# --- merging -------------------------------------------------------------------


def _merge(actor: bytes, n1: int, l1: tuple[Version, ...], n2: int, l2: tuple[Version, ...]) -> Entry:
    """One actor's entry in two clocks: the longer history, with the values
    live on both sides (a value survives unless the other side has seen its
    dot and no longer holds it)."""
    if n1 >= n2:
        if n1 - len(l1) >= n2 - len(l2):
            return Entry(actor, n1, l1)
        return Entry(actor, n1, l1[: n1 - n2 + len(l2)])
    if n2 - len(l2) >= n1 - len(l1):
        return Entry(actor, n2, l2)
    return Entry(actor, n2, l2[: n2 - n1 + len(l1)])


def _sync_entries(e1: tuple[Entry, ...], e2: tuple[Entry, ...]) -> tuple[Entry, ...]:
    merged: list[Entry] = []
    i = j = 0
    while i < len(e1) and j < len(e2):
        a, b = e1[i], e2[j]
        if a.actor < b.actor:
            merged.append(a)
            i += 1
        elif a.actor > b.actor:
            merged.append(b)
            j += 1
        else:
            merged.append(_merge(a.actor, a.counter, a.values, b.counter, b.values))
            i += 1
            j += 1
    merged.extend(e1[i:])
    merged.extend(e2[j:])
    return tuple(merged)


def sync2(a: Clock, b: Clock) -> Clock:
    """Merge two clocks: the union of the histories, the values neither side
    has outdated. Commutative, associative, idempotent."""
    if less(a, b):
        anonymous = b.anonymous
    elif less(b, a):
        anonymous = a.anonymous
    else:
        anonymous = _anonymous(a.anonymous + b.anonymous)
    return Clock(_sync_entries(a.entries, b.entries), anonymous)


def sync(clocks: Iterable[Clock]) -> Clock:
    """``sync2`` over any number of clocks (none: the empty clock)."""
    result = EMPTY
    for clock in clocks:
        result = sync2(result, clock)
    return result


def _event(entries: tuple[Entry, ...], actor: bytes, value: Version) -> tuple[Entry, ...]:
    """``actor``'s next dot, holding ``value``, on top of ``entries``."""
    out: list[Entry] = []
    for index, entry in enumerate(entries):
        if entry.actor == actor:
            out.append(Entry(actor, entry.counter + 1, (value, *entry.values)))
            out.extend(entries[index + 1 :])
            return tuple(out)
        if entry.actor > actor:
            out.append(Entry(actor, 1, (value,)))
            out.extend(entries[index:])
            return tuple(out)
        out.append(entry)
    out.append(Entry(actor, 1, (value,)))
    return tuple(out)


def update(client: Clock, actor: bytes, local: Clock | None = None) -> Clock:
    """A write: ``client`` is ``new(context, value)`` (one anonymous value);
    ``actor`` (the node coordinating it) gives the value its next dot. With
    ``local`` (the node's own clock of the key) the result also keeps every
    local value the context has not seen: siblings. The new clock descends
    from both arguments."""
    if len(client.anonymous) != 1:
        raise ValueError(f"update takes a client clock with exactly one new value, got {len(client.anonymous)}")
    value = client.anonymous[0]
    if local is None:
        return Clock(_event(client.entries, actor, value))
    synced = sync2(Clock(client.entries), local)
    return Clock(_event(synced.entries, actor, value), synced.anonymous)


def overwrite(local: Clock, actor: bytes, value: Version) -> Clock:
    """``update(new(value, join(local)), actor, local)`` in one step: a
    write whose context is everything ``local`` has seen (a plain SET on the
    coordinator), so ``value`` is the only sibling left."""
    entries: list[Entry] = []
    placed = False
    for entry in local.entries:
        if not placed and entry.actor >= actor:
            placed = True
            if entry.actor == actor:
                entries.append(Entry(actor, entry.counter + 1, (value,)))
                continue
            entries.append(Entry(actor, 1, (value,)))
        entries.append(Entry(entry.actor, entry.counter) if entry.values else entry)
    if not placed:
        entries.append(Entry(actor, 1, (value,)))
    return Clock(tuple(entries))


# --- reading -------------------------------------------------------------------


def size(clock: Clock) -> int:
    """How many values (siblings) the clock holds."""
    return sum(len(entry.values) for entry in clock.entries) + len(clock.anonymous)


def ids(clock: Clock) -> list[bytes]:
    return [entry.actor for entry in clock.entries]


def values(clock: Clock) -> list[Version]:
    """Every value, anonymous ones first (dvvset.erl's order)."""
    out = list(clock.anonymous)
    for entry in clock.entries:
        out.extend(entry.values)
    return out


def dotted_values(clock: Clock) -> list[tuple[bytes, int, Version]]:
    """Every value that has a dot, as ``(actor, counter, value)``."""
    return [
        (entry.actor, entry.counter - index, value)
        for entry in clock.entries
        for index, value in enumerate(entry.values)
    ]


def last(clock: Clock) -> Version:
    """The winner: the greatest value by (timestamp, actor). ValueError if
    the clock holds no value."""
    candidates = values(clock)
    if not candidates:
        raise ValueError("a clock without values has no last value")
    return max(candidates)  # tuples compare as (timestamp, actor, payload)


def map_values(clock: Clock, function: Callable[[Version], Version]) -> Clock:
    """The same history with ``function`` applied to every value (dvvset.erl's ``map``)."""
    return Clock(
        tuple(Entry(e.actor, e.counter, tuple(map(function, e.values))) for e in clock.entries),
        _anonymous(map(function, clock.anonymous)),
    )


def lww(clock: Clock) -> Clock:
    """The same history with only the winner left: at the top of its
    actor's entry (as dvvset.erl, even when it was an older value there),
    or as the one anonymous value."""
    winner = last(clock)
    entries = [Entry(entry.actor, entry.counter) for entry in clock.entries]
    if winner in clock.anonymous:
        return Clock(tuple(entries), (winner,))
    for position, entry in enumerate(clock.entries):
        if winner in entry.values:
            entries[position] = Entry(entry.actor, entry.counter, (winner,))
            break
    return Clock(tuple(entries))


# --- the packed encoding -------------------------------------------------------


def _put_varint(out: bytearray, number: int) -> None:
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)


def varint_bytes(number: int) -> bytes:
    """``number`` as the encoding's varint."""
    if number < 0x80:
        return bytes((number,))
    out = bytearray()
    _put_varint(out, number)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it (for readers of
    a known prefix; ``IndexError`` if cut short)."""
    number = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            if not byte and shift:
                raise ClockFormatError("varint not in its shortest form")
            return number, pos
        shift += 7
        if shift > 63:
            raise ClockFormatError("varint too long")


_SMALL = [bytes((number,)) for number in range(0x80)]


def _varint(number: int) -> bytes:
    return _SMALL[number] if number < 0x80 else varint_bytes(number)


def encode(clock: Clock) -> bytes:
    """The packed bytes of ``clock`` (see the module docstring)."""
    actors = {entry.actor for entry in clock.entries}
    for entry in clock.entries:
        for value in entry.values:
            actors.add(value.actor)
    for value in clock.anonymous:
        actors.add(value.actor)
    table = sorted(actors)
    parts = [_SMALL[FORMAT], _varint(len(table))]
    for actor in table:
        if len(actor) > MAX_ACTOR_BYTES:
            raise ValueError(f"actor id of {len(actor)} bytes, at most {MAX_ACTOR_BYTES}")
        parts += (bytes((len(actor),)), actor)
    index = {actor: _varint(position) for position, actor in enumerate(table)}
    parts.append(_varint(len(clock.entries)))
    for entry in clock.entries:
        parts += (index[entry.actor], _varint(entry.counter), _varint(len(entry.values)))
        for value in entry.values:
            parts += (_pack_u64(value.timestamp), index[value.actor], _varint(len(value.payload)), value.payload)
    parts.append(_varint(len(clock.anonymous)))
    for value in clock.anonymous:
        parts += (_pack_u64(value.timestamp), index[value.actor], _varint(len(value.payload)), value.payload)
    return b"".join(parts)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ClockFormatError("clock cut short")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        number = shift = 0
        while True:
            byte = self.byte()
            number |= (byte & 0x7F) << shift
            if byte < 0x80:
                return number
            shift += 7
            if shift > 63:
                raise ClockFormatError("varint too long")

    def take(self, length: int) -> bytes:
        end = self.pos + length
        if end > len(self.data):
            raise ClockFormatError("clock cut short")
        piece = self.data[self.pos : end]
        self.pos = end
        return piece

    def u64(self) -> int:
        return int(_unpack_u64(self.take(8))[0])

    def count(self) -> int:
        """A count of items that each take at least one byte: bounded by what is left."""
        number = self.varint()
        if number > len(self.data) - self.pos:
            raise ClockFormatError(f"count {number} larger than the bytes left")
        return number


def _count(data: bytes, pos: int) -> tuple[int, int]:
    """A varint count of items that take at least a byte each: bounded by the bytes left."""
    byte = data[pos]
    number, pos = (byte, pos + 1) if byte < 0x80 else read_varint(data, pos)
    if number > len(data) - pos:
        raise ClockFormatError(f"count {number} larger than the bytes left")
    return number, pos


class Scan(NamedTuple):
    """A packed clock read without building its ``Clock`` (``scan``): what
    store/versions.py compares and splices on a write's fast path."""

    # One (actor, counter, number of values) per entry, sorted by actor.
    entries: list[tuple[bytes, int, int]]
    # Every value in the encoding's order: each entry's in turn (newest
    # first), then the anonymous ones.
    values: list[Version]
    # Where each value's payload is in the bytes, in the same order: (start
    # of its length varint, end of the payload).
    spans: list[tuple[int, int]]
    # How many of ``values`` (the last ones) are anonymous.
    anonymous: int
    # ``encode(decode(data)) == data``: the encoding's one freedom is an
    # actor in the table that nothing refers to (varints must be shortest,
    # tables and entries sorted), which ``encode`` would leave out.
    canonical: bool


def _scan_values(
    data: bytes, pos: int, count: int, actors: Sequence[bytes], used: bytearray,
    values: list[Version], spans: list[tuple[int, int]],
) -> int:
    size = len(data)
    for _ in range(count):
        timestamp = _unpack_u64(data, pos)[0]
        actor_index = data[pos + 8]
        pos += 9
        if actor_index >= 0x80:
            actor_index, pos = read_varint(data, pos - 1)
        start = pos
        length = data[pos]
        pos += 1
        if length >= 0x80:
            length, pos = read_varint(data, start)
        end = pos + length
        if end > size or actor_index >= len(actors):
            raise ClockFormatError("value runs past the end, or names no actor")
        used[actor_index] = 1
        values.append(Version(timestamp, actors[actor_index], data[pos:end]))
        spans.append((start, end))
        pos = end
    return pos


def _scan_one(data: bytes) -> Scan | None:
    """``scan``'s result for the usual clock, a key one node wrote: one
    actor, one entry (index 0), one value of that actor, no anonymous
    value; None for any other shape (or bytes cut short), which ``scan``
    reads the general way. Every such shape is well formed and canonical
    (varints are read shortest-only), so nothing ``scan`` would refuse
    passes here (tests/property/test_dvvset.py holds them equal)."""
    try:
        if data[0] != FORMAT or data[1] != 1:
            return None
        actor_end = 3 + data[2]
        if data[actor_end] != 1 or data[actor_end + 1] != 0:
            return None  # not one entry of actor 0
        counter = data[actor_end + 2]
        pos = actor_end + 3
        if counter >= 0x80:
            counter, pos = read_varint(data, pos - 1)
        if not counter or data[pos] != 1 or data[pos + 9] != 0:
            return None  # a counter of 0, not one value, or a value of another actor
        timestamp = _unpack_u64(data, pos + 1)[0]
        start = pos + 10
        length = data[start]
        pos = start + 1
        if length >= 0x80:
            length, pos = read_varint(data, start)
        end = pos + length
        if end + 1 != len(data) or data[end] != 0:
            return None
    except (IndexError, struct.error, ClockFormatError):
        return None
    actor = data[3:actor_end]
    return Scan([(actor, counter, 1)], [Version(timestamp, actor, data[pos:end])], [(start, end)], 0, True)


def scan(data: bytes) -> Scan:
    """``data`` read as a packed clock, with where each payload is;
    ``ClockFormatError`` unless it is well formed (sorted distinct actors,
    counters at least 1 and at least the number of values, nothing left
    over): exactly the bytes ``decode`` accepts."""
    one = _scan_one(data)
    if one is not None:
        return one  # the usual clock, read in a fraction of the general way's time
    return _scan_general(data)


def _scan_general(data: bytes) -> Scan:
    """``scan`` for any shape."""
    size = len(data)
    try:
        if data[0] != FORMAT:
            raise ClockFormatError("unknown clock format")
        count, pos = _count(data, 1)
        actors: list[bytes] = []
        for _ in range(count):
            end = pos + 1 + data[pos]
            if end > size:
                raise ClockFormatError("actor runs past the end")
            actor = data[pos + 1 : end]
            if actors and actor <= actors[-1]:
                raise ClockFormatError("actor table not sorted")
            actors.append(actor)
            pos = end
        used = bytearray(len(actors))
        values: list[Version] = []
        spans: list[tuple[int, int]] = []
        count, pos = _count(data, pos)
        entries: list[tuple[bytes, int, int]] = []
        for _ in range(count):
            actor_index = data[pos]
            if actor_index < 0x80:
                pos += 1
            else:
                actor_index, pos = read_varint(data, pos)
            if actor_index >= len(actors):
                raise ClockFormatError(f"actor index {actor_index} out of range")
            actor = actors[actor_index]
            if entries and actor <= entries[-1][0]:
                raise ClockFormatError("entries not sorted by actor")
            used[actor_index] = 1
            counter = data[pos]
            if counter < 0x80:
                pos += 1
            else:
                counter, pos = read_varint(data, pos)
            value_count, pos = _count(data, pos)
            if counter < 1 or value_count > counter:
                raise ClockFormatError(f"entry counter {counter} with {value_count} values")
            if value_count:
                pos = _scan_values(data, pos, value_count, actors, used, values, spans)
            entries.append((actor, counter, value_count))
        count, pos = _count(data, pos)
        dotted = len(values)
        if count:
            pos = _scan_values(data, pos, count, actors, used, values, spans)
    except (IndexError, struct.error):
        raise ClockFormatError("clock cut short") from None
    if count > 1:
        anonymous = values[dotted:]
        if anonymous != sorted(set(anonymous)):
            raise ClockFormatError("anonymous values not sorted and distinct")
    if pos != size:
        raise ClockFormatError(f"{size - pos} bytes after the clock")
    return Scan(entries, values, spans, count, 0 not in used)


def entries_of(data: bytes) -> tuple[list[tuple[bytes, int, int]], int]:
    """The entries of a packed clock this node wrote (no checks: a stored
    clock), as ``scan`` gives them, and its number of anonymous values;
    the values themselves are skipped."""
    count = data[1]
    pos = 2 if count < 0x80 else read_varint(data, 1)[1]
    actors = []
    for _ in range(count):
        end = pos + 1 + data[pos]
        actors.append(data[pos + 1 : end])
        pos = end
    entries = []
    count, pos = read_varint(data, pos)
    for _ in range(count):
        actor_index, pos = read_varint(data, pos)
        counter, pos = read_varint(data, pos)
        value_count, pos = read_varint(data, pos)
        entries.append((actors[actor_index], counter, value_count))
        for _ in range(value_count):
            pos += 8
            pos = pos + 1 if data[pos] < 0x80 else read_varint(data, pos)[1]
            length, pos = read_varint(data, pos)
            pos += length
    return entries, data[pos] if data[pos] < 0x80 else read_varint(data, pos)[0]


def from_scan(scanned: Scan) -> Clock:
    """The clock a ``scan`` read."""
    values = scanned.values
    entries: list[Entry] = []
    first = 0
    for actor, counter, count in scanned.entries:
        entries.append(Entry(actor, counter, tuple(values[first : first + count])))
        first += count
    return Clock(tuple(entries), tuple(values[first:]))


def decode(data: bytes) -> Clock:
    """The clock packed in ``data``; ``ClockFormatError`` unless it is
    well formed (``scan``)."""
    return from_scan(scan(bytes(data)))


# --- the client's context ------------------------------------------------------


def encode_context(vector: VersionVector) -> bytes:
    """The opaque, printable context of a version vector (``join``)."""
    out = bytearray((CONTEXT_FORMAT,))
    _put_varint(out, len(vector))
    for actor, counter in vector:
        out.append(len(actor))
        out += actor
        _put_varint(out, counter)
    return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=")


def decode_context(context: bytes) -> VersionVector:
    """The version vector of a context from ``encode_context``;
    ``ClockFormatError`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(bytes(context) + b"=" * (-len(context) % 4))
    except (binascii.Error, ValueError):
        raise ClockFormatError("context is not base64url") from None
    reader = _Reader(raw)
    if reader.byte() != CONTEXT_FORMAT:
        raise ClockFormatError("unknown context format")
    vector: list[tuple[bytes, int]] = []
    for _ in range(reader.count()):
        actor = reader.take(reader.byte())
        counter = reader.varint()
        if counter < 1 or (vector and actor <= vector[-1][0]):
            raise ClockFormatError("context entries must be sorted, distinct, with counters from 1")
        vector.append((actor, counter))
    if reader.pos != len(raw):
        raise ClockFormatError("bytes after the context")
    return tuple(vector)
