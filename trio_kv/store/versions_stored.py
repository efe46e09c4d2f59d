"""The stored form of a key's clock (store/versions.py), and what the
stamper reads from a unit of one effect.

A stored clock is one header byte, then the packed DVVSet clock
(cluster/dvvset.py): bit 7 set when the winner is *held* (the keyspace
holds the key's state and the winner's payload says so instead of copying
it: cluster/key_state.py), the low 7 bits the number of siblings (capped at
127). The table, the log's VERSION effects and snapshots all hold this
form; peers get the wire form (``Versions.clock_of``).

The constants below let ``Versions._overwrite`` write the next clock of a
key only this node wrote straight as bytes; a test checks it against the
decoded path byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..cluster import dvvset, key_state
from ..cluster.dvvset import EMPTY, Clock
from .durability.records import DEL, EXPIRE, PATCH, PERSIST, SET, UPDATE, Effect

HELD_FLAG = 0x80
SIBLING_COUNT_MASK = 0x7F


pack_u64 = struct.Struct("<Q").pack
unpack_u64 = struct.Struct("<Q").unpack_from
# Header bytes of a one-sibling clock, held or not.
HELD_ONE = bytes((HELD_FLAG | 1,))
UNHELD_ONE = b"\x01"
# How a one-value entry's stored clock ends after the value's timestamp when
# that value is a tombstone: actor index 0, payload of 1 byte (0), no anonymous values.
LONE_TOMBSTONE_TAIL = b"\x00\x01\x00\x00"


def _set_state(effect: Effect) -> tuple[bool, int | None]:
    return True, effect[3]


def _patch_or_update_state(effect: Effect) -> tuple[bool, int | None]:
    return True, effect[5]


def _del_state(effect: Effect) -> tuple[bool, int | None]:
    return False, None


def _expire_state(effect: Effect) -> tuple[bool, int | None]:
    return True, effect[2]


def _persist_state(effect: Effect) -> tuple[bool, int | None]:
    return True, None


# What a key is after a unit of one effect, read from the effect itself
# (present, absolute expiry): the keyspace is not asked (effects are absolute
# facts, store/effects.py).
STATE_AFTER: dict[str, Callable[[Effect], tuple[bool, int | None]]] = {
    SET: _set_state, PATCH: _patch_or_update_state, UPDATE: _patch_or_update_state,
    DEL: _del_state, EXPIRE: _expire_state, PERSIST: _persist_state,
}


def header(stored: bytes) -> tuple[bool, int]:
    """(winner held, sibling count) of a stored clock."""
    return bool(stored[0] & HELD_FLAG), stored[0] & SIBLING_COUNT_MASK


def pack(clock: Clock) -> bytes:
    """The stored form of ``clock``."""
    values = dvvset.values(clock)
    held = any(key_state.is_held(value.payload) for value in values)
    return bytes(((HELD_FLAG if held else 0) | min(len(values), SIBLING_COUNT_MASK),)) + dvvset.encode(clock)


def unpack(stored: bytes | None) -> Clock:
    return EMPTY if stored is None else dvvset.decode(stored[1:])


def top_timestamp(clock: Clock) -> int:
    return max((value.timestamp for value in dvvset.values(clock)), default=0)
