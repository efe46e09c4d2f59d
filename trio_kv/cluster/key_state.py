"""A version's payload: what one write left a key as, in bytes.

Each value in a key's DVVSet (cluster/dvvset.py) carries the key's whole
*state* after the write, not the command, so any replica can materialize it
without the history before it (design: "sends the key's resulting state").

Payload kinds (the first byte)::

    0  tombstone                       the write deleted the key
    1  state      u8 type, data        a value without expiry
    3  state      u8 type, i64 at_ms, data    a value expiring at at_ms
    2  held       (nothing)             store-local, see below
    4  held       i64 at_ms

* ``type`` is 0 for a string (``data`` is the value) or a family's
  ``TYPE_CODE`` (commands/values.py: ``data`` is the family's update that
  builds the value from nothing, as in snapshots). ``at_ms`` is the
  absolute expiry in milliseconds since the epoch: every replica expires the
  key at the same moment, and expiry by time is never a new version.
* A state whose ``at_ms`` has passed means "absent", like a tombstone; a
  replica that no longer holds the value sends it as an *expired* state
  (``expired_state``: type 0, no data, the expiry it had).
* *Held* is how the store avoids keeping a key's value twice: the winning
  version of a key present in the keyspace says "the state is the one the
  keyspace holds" instead of copying it (store/versions.py). It never
  leaves the node: ``clock_of`` replaces it by the real state, and a held
  payload from a peer is refused (``is_wire_payload``).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

TOMBSTONE = b"\x00"
STRING_TYPE = 0

_STATE = 1
_HELD = 2
_STATE_EXPIRING = 3
_HELD_EXPIRING = 4

_pack_i64 = struct.Struct("<q").pack
_unpack_i64 = struct.Struct("<q").unpack_from

HELD = bytes((_HELD,))


class KeyState(NamedTuple):
    """A key's state as a version carries it (a named tuple: built for
    every value a replica receives, at half a frozen dataclass's cost)."""

    type_code: int
    data: bytes
    expire_at_ms: int | None = None

    def expired(self, now_ms: int) -> bool:
        return self.expire_at_ms is not None and self.expire_at_ms <= now_ms


class Held(NamedTuple):
    """The keyspace holds the state (store-local; see the module docstring)."""

    expire_at_ms: int | None = None


class PayloadFormatError(ValueError):
    """Bytes that are not a payload of this format."""


def encode_state(state: KeyState) -> bytes:
    if state.expire_at_ms is None:
        return bytes((_STATE, state.type_code)) + state.data
    return bytes((_STATE_EXPIRING, state.type_code)) + _pack_i64(state.expire_at_ms) + state.data


def encode_held(expire_at_ms: int | None) -> bytes:
    if expire_at_ms is None:
        return HELD
    return bytes((_HELD_EXPIRING,)) + _pack_i64(expire_at_ms)


def expired_state(expire_at_ms: int | None) -> KeyState:
    """What a held state whose key has expired travels as."""
    return KeyState(STRING_TYPE, b"", 0 if expire_at_ms is None else expire_at_ms)


def decode(payload: bytes) -> KeyState | Held | None:
    """The payload's meaning: a state, held, or None for a tombstone."""
    if not payload:
        raise PayloadFormatError("empty payload")
    kind = payload[0]
    if kind == 0 and len(payload) == 1:
        return None
    if kind == _STATE and len(payload) >= 2:
        return KeyState(payload[1], payload[2:])
    if kind == _STATE_EXPIRING and len(payload) >= 10:
        return KeyState(payload[1], payload[10:], _unpack_i64(payload, 2)[0])
    if kind == _HELD and len(payload) == 1:
        return Held()
    if kind == _HELD_EXPIRING and len(payload) == 9:
        return Held(_unpack_i64(payload, 1)[0])
    raise PayloadFormatError(f"bad payload (kind {kind}, {len(payload)} bytes)")


def is_held(payload: bytes) -> bool:
    return bool(payload) and payload[0] in (_HELD, _HELD_EXPIRING)


def is_wire_payload(payload: bytes) -> bool:
    """Whether a peer may send this payload: a tombstone or a state."""
    try:
        return not isinstance(decode(payload), Held)
    except PayloadFormatError:
        return False
