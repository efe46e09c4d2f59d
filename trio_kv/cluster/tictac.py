"""Tictac Merkle trees: what one replica holds of a partition, in 1024
64-bit numbers, kept up to date in O(1) per change.

Riak 3's active anti-entropy (``leveled_tictac``, ``kv_index_tictactree``)
is the model. A *tree* is ``SEGMENT_COUNT`` segments; a key belongs to
segment ``segment_of(key)`` (from the key alone, so every replica puts it
in the same one) and adds ``entry_hash(key, digest)`` to it, where
``digest`` is ``version_digest`` of the key's clock. A segment is the XOR
of its keys' entry hashes, the *root* the XOR of the segments. XOR makes
every change O(1) whatever the order (XOR the old entry out, the new one
in, at the segment and at the root) and makes a tree depend only on the
set of (key, digest) pairs, not on the order they came in: two replicas
holding the same versions of the same keys have equal trees. Riak's tree
combines its levels the same way (a level-1 entry is the XOR of its
branch's segments). A hash of the segment hashes would need the 1024
segments hashed again after every write, or a dirty flag and a rehash per
read; the XOR root costs nothing, and two different trees have the same
root only if their differing entry hashes XOR to zero, a 2**-64 chance
for hash outputs.

Comparing: equal roots, equal trees (but for that chance); otherwise
``differing_segments`` names the segments to look into, and only the keys
of those segments (``TictacTree.entries``) are compared, key by key.

The hashes are stable across processes and machines (Python's ``hash`` is
randomized per process, so it is never used): the segment is the low 10
bits of the key's CRC-32 (uniform over a partition's keys, measured: a
partition's 31,000 ``key:N`` keys fill all 1024 segments, 16 to 43
each; well under a microsecond a key), the entry hash the first 8 bytes of
BLAKE2b over the key's length, the key and the digest.

The version digest is canonical: it names the logical versions a replica
holds, never their bytes. A DVVSet's siblings are its entries' top dots
(cluster/dvvset.py: ``values[i]`` is the dot ``(actor, counter - i)``) and
a dot names one write forever (an actor never issues a dot twice: its
incarnation changes when it could have), so the list of ``(actor,
counter, number of values)`` of a clock without anonymous values names
exactly its history and its siblings. Two replicas holding the same
versions hold them in bytes that may differ (a *held* payload on one, the
state copied out on the other; an expired state; the stored header):
the digest reads none of that, only the entries. This is Riak's choice
too (its tree hashes the vector clock, not the object).

Rules kept here: pure functions and one plain class; no IO, no clock,
nothing of the store; not thread-safe (the store updates a tree under its
write lock and reads it under either lock).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from hashlib import blake2b
from zlib import crc32

from . import dvvset

SEGMENT_COUNT = 1024
SEGMENT_MASK = SEGMENT_COUNT - 1
# The bytes of one hash on the wire (TKV.AAE.*): little-endian u64.
HASH_BYTES = 8

_ENTRY_MASK = (1 << 64) - 1
_u32 = struct.Struct("<I").pack
_SEGMENTS = struct.Struct(f"<{SEGMENT_COUNT}Q")


def segment_of(key: bytes) -> int:
    """The key's segment (0..1023), the same on every node."""
    return crc32(key) & SEGMENT_MASK


def entry_hash(key: bytes, digest: bytes) -> int:
    """The 64-bit hash a key holding versions ``digest`` adds to its segment."""
    return int.from_bytes(blake2b(_u32(len(key)) + key + digest, digest_size=HASH_BYTES).digest(), "little")


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    return (byte, pos + 1) if byte < 0x80 else dvvset.read_varint(data, pos)


def version_digest(data: bytes, offset: int = 0) -> bytes:
    """The canonical digest of the packed clock at ``data[offset:]`` (see
    the module docstring): each entry's actor (with its length byte), its
    counter and its number of values, as shortest varints, in the
    clock's actor order. A well-formed clock is assumed (a stored one);
    ``ValueError`` for one with anonymous values (a client's, never
    stored), which the entries alone do not name."""
    if data[offset] != dvvset.FORMAT:
        raise ValueError("unknown clock format")
    actor_count, pos = _varint_at(data, offset + 1)
    if actor_count == 1:
        # The usual clock: one actor, so one entry (index 0) or none.
        end = pos + 1 + data[pos]
        actors = [data[pos:end]]
        pos = end
    else:
        actors = []
        for _ in range(actor_count):
            end = pos + 1 + data[pos]
            actors.append(data[pos:end])
            pos = end
    entry_count, pos = _varint_at(data, pos)
    parts: list[bytes] = []
    for _ in range(entry_count):
        index, pos = _varint_at(data, pos)
        counter, pos = _varint_at(data, pos)
        values, pos = _varint_at(data, pos)
        parts += (actors[index], dvvset.varint_bytes(counter), dvvset.varint_bytes(values))
        for _ in range(values):
            _, pos = _varint_at(data, pos + 8)  # the timestamp, then the value's actor index
            length, pos = _varint_at(data, pos)
            pos += length
    if data[pos]:
        raise ValueError("a clock with anonymous values has no version digest")
    return b"".join(parts)


def stored_entry_hash(key: bytes, data: bytes, offset: int = 0) -> int:
    """``entry_hash(key, version_digest(data, offset))`` for a stored clock
    (no anonymous values: a store never keeps one), in one step: the
    store's per-write cost. A clock of one actor with one entry and
    one-byte counts (the usual key) is read without a loop."""
    if data[offset + 1] == 1:
        pos = offset + 3 + data[offset + 2]
        if data[pos] == 1 and data[pos + 2] < 0x80 and data[pos + 3] < 0x80:
            # actor count 1, the actor, entry count 1, actor index 0, counter, value count.
            return int.from_bytes(
                blake2b(b"".join((_u32(len(key)), key, data[offset + 2 : pos], data[pos + 2 : pos + 4])),
                        digest_size=HASH_BYTES).digest(),
                "little",
            )
    return entry_hash(key, version_digest(data, offset))


class TictacTree:
    """One partition's tree on one replica: its segments and root, and the
    entry hash of every key in it (what ``entries`` lists and what a change
    XORs out), in one dict per tree whose values carry the key's segment
    above the entry's 64 bits (a dict per segment would be 65,536 small
    containers for a store's 64 trees, each tracked by the garbage
    collector). Memory: one dict slot and one int per key, about 90 bytes.
    ``entries`` walks the tree's keys: O(keys in the partition), about
    1.5 ms for 15,000 keys (a million keys' partition), once per exchange
    step that needs it."""

    __slots__ = ("segments", "root", "_entries")

    def __init__(self) -> None:
        # Each segment's XOR of entry hashes (0: empty, or cancelled out).
        self.segments: list[int] = [0] * SEGMENT_COUNT
        # The XOR of the segments.
        self.root = 0
        # key -> segment << 64 | entry hash.
        self._entries: dict[bytes, int] = {}

    @property
    def key_count(self) -> int:
        return len(self._entries)

    def put(self, key: bytes, segment: int, entry: int) -> None:
        """``key`` (in ``segment``: ``segment_of(key)``) now has ``entry``:
        added, or its old entry replaced. O(1)."""
        entries = self._entries
        old = entries.get(key)
        delta = entry if old is None else (old & _ENTRY_MASK) ^ entry
        entries[key] = segment << 64 | entry
        self.segments[segment] ^= delta
        self.root ^= delta

    def remove(self, key: bytes, segment: int) -> None:
        """``key`` leaves the tree (nothing if it was not in it). O(1)."""
        old = self._entries.pop(key, None)
        if old is None:
            return
        old &= _ENTRY_MASK
        self.segments[segment] ^= old
        self.root ^= old

    def get(self, key: bytes, segment: int) -> int | None:
        packed = self._entries.get(key)
        return None if packed is None else packed & _ENTRY_MASK

    def entries(self, segments: Iterable[int]) -> list[tuple[bytes, int]]:
        """Every (key, entry hash) of ``segments`` (in no particular order)."""
        wanted = set(segments)
        if len(wanted) == SEGMENT_COUNT:
            return [(key, packed & _ENTRY_MASK) for key, packed in self._entries.items()]
        return [(key, packed & _ENTRY_MASK) for key, packed in self._entries.items() if packed >> 64 in wanted]

    def clear(self) -> None:
        self.segments = [0] * SEGMENT_COUNT
        self.root = 0
        self._entries = {}


def differing_segments(mine: Sequence[int], theirs: Sequence[int]) -> list[int]:
    """The segments whose hashes differ, in order."""
    if len(mine) != SEGMENT_COUNT or len(theirs) != SEGMENT_COUNT:
        raise ValueError(f"a tree has {SEGMENT_COUNT} segments")
    return [segment for segment, (a, b) in enumerate(zip(mine, theirs)) if a != b]


def differing_keys(mine: Iterable[tuple[bytes, int]], theirs: Iterable[tuple[bytes, int]]) -> list[bytes]:
    """The keys held on one side only or with different entry hashes,
    sorted (the entries of the same segments on two replicas)."""
    left = dict(mine)
    right = dict(theirs)
    return sorted(key for key in left.keys() | right.keys() if left.get(key) != right.get(key))


# --- the wire form (TKV.AAE.*) ---------------------------------------------


def pack_hashes(hashes: Sequence[int]) -> bytes:
    """Hashes as little-endian u64s, one after another."""
    if len(hashes) == SEGMENT_COUNT:
        return _SEGMENTS.pack(*hashes)
    return struct.pack(f"<{len(hashes)}Q", *hashes)


def unpack_hashes(data: bytes) -> list[int]:
    """``pack_hashes`` read back; ``ValueError`` if the length is not a multiple of 8."""
    if len(data) % HASH_BYTES:
        raise ValueError(f"{len(data)} bytes are not whole {HASH_BYTES}-byte hashes")
    if len(data) == SEGMENT_COUNT * HASH_BYTES:
        return list(_SEGMENTS.unpack(data))
    return list(struct.unpack(f"<{len(data) // HASH_BYTES}Q", data))
