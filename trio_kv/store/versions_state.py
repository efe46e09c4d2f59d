"""A key's state between the keyspace and a version's payload.

``current_state`` reads what the keyspace holds for a key as a
``KeyState`` (cluster/key_state.py); ``prepare`` checks a state that came
from elsewhere (a peer) and ``materialize`` makes the keyspace hold it,
through the keyspace's ordinary methods, so every change is emitted to the
effects sink like any write (store/effects.py) and WATCH sees it.

Rules kept here: the caller holds the store lock (read for
``current_state``, write for ``materialize``); ``prepare`` raises
``PayloadFormatError`` for a state this build cannot hold (an unknown
family, damaged bytes) before anything is changed.
"""

from __future__ import annotations

import struct

from ..cluster.key_state import STRING_TYPE, KeyState, PayloadFormatError
from ..commands.redis import VALUE_TYPES
from ..commands.values import TypedValue, ValueUpdate
from .keyspace import NO_EXPIRY, Keyspace


def expiry_of(keyspace: Keyspace, key: bytes) -> int | None:
    """The key's absolute expiry, None if it has none (or is absent)."""
    at_ms = keyspace.expire_at_ms(key)
    return None if at_ms is None or at_ms == NO_EXPIRY else at_ms


def current_state(keyspace: Keyspace, key: bytes) -> KeyState | None:
    """What the keyspace holds for ``key`` (None: absent or expired)."""
    for _, value in keyspace.live_values((key,)):
        at_ms = expiry_of(keyspace, key)
        if isinstance(value, TypedValue):
            return KeyState(value.TYPE_CODE, value.as_update().encode(), at_ms)
        return KeyState(STRING_TYPE, bytes(value), at_ms)
    return None


def prepare(state: KeyState) -> ValueUpdate | None:
    """The update that builds a typed state's value (None for a string);
    ``PayloadFormatError`` if this build cannot hold the state."""
    if state.type_code == STRING_TYPE:
        return None
    family = VALUE_TYPES.get(state.type_code)
    if family is None:
        raise PayloadFormatError(f"unknown value type {state.type_code}")
    try:
        return family.UPDATE.decode(state.data)
    except (ValueError, IndexError, struct.error) as error:
        raise PayloadFormatError(f"damaged {family.TYPE_NAME.decode()} state: {error}") from None


def materialize(keyspace: Keyspace, key: bytes, state: KeyState | None, update: ValueUpdate | None) -> bool:
    """Make ``key`` hold ``state`` (None, or a state already expired: make it
    absent), ``update`` being ``prepare(state)``. Returns whether the key is
    present afterwards."""
    if state is None or state.expired(keyspace.now_ms()):
        keyspace.delete(key)
        return False
    if update is None:
        keyspace.set(key, state.data, state.expire_at_ms)
        return True
    keyspace.delete(key)  # the update builds the value from nothing
    keyspace.update(key, update)
    if not keyspace.exists(key):
        return False  # an empty value is never stored
    if state.expire_at_ms is not None:
        keyspace.set_expire_at(key, state.expire_at_ms)
    return True
