"""Values that are not strings: the contract between a command family and the store.

The keyspace (``store/keyspace.py``) holds strings (``bytes``, or its own
``Growable``) and, for every other family, a ``TypedValue``. It knows no
family: a family (hashes today; lists, sets next) is a ``TypedValue``
subclass and a ``ValueUpdate`` subclass in ``commands/``, listed once in
``VALUE_TYPES`` of ``commands/redis.py``. Adding a family changes nothing in
``store/``.

The contract a family keeps:

* ``TypedValue`` subclass: ``TYPE_NAME`` (what TYPE answers and SCAN TYPE
  matches, ``b"hash"``) and ``TYPE_CODE`` (the byte that names the family in
  the log and snapshots: unique, never reused). ``size_bytes`` is the value's
  share of the keyspace's ``value_bytes`` (STATS ``bytes``). An empty value
  is never stored: ``bool(value)`` False makes the keyspace delete the key.
  ``as_update()`` is an update that builds the value from nothing (a
  snapshot, a RENAME), ``empty()`` makes the value an update starts from.
* ``ValueUpdate`` subclass: the only way a family changes a stored value
  (``Keyspace.update``). ``apply(value)`` changes ``value`` in place and
  returns the change in ``size_bytes``; ``encode()`` / ``decode()`` are its
  bytes in the log. The update must be *absolute per element* (HSET logs the
  field's new value, HINCRBY too: never "add 1"), so replaying it over a
  value that already holds later effects (a fuzzy snapshot) is harmless:
  ``Keyspace.apply_update`` says why that gives the exact state.
* Reads go through ``Keyspace.get_typed(key, HashValue)``; the value it
  returns is read, never changed, by the handler.

The WRONGTYPE rule, in one place: a keyspace accessor raises ``WrongType``
when the key holds a value of another kind (a string accessor on a typed
value, ``get_typed`` on a string or another family), before changing
anything. The engine (and EXEC) turn it into ``WRONGTYPE_ERROR``; handlers
never check types themselves.
"""

from __future__ import annotations

from typing import ClassVar

from ..protocol.replies import Error

WRONGTYPE_ERROR = Error("WRONGTYPE Operation against a key holding the wrong kind of value")


class WrongType(Exception):
    """A key holds a value of another kind than the command works on."""


class ValueUpdate:
    """A change to one typed value, absolute per element (see the module)."""

    __slots__ = ()

    VALUE_TYPE: ClassVar[type[TypedValue]]

    def apply(self, value: TypedValue) -> int:
        """Change ``value`` (of ``VALUE_TYPE``) in place; the change in its ``size_bytes``."""
        raise NotImplementedError

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, payload: bytes) -> ValueUpdate:
        raise NotImplementedError


class TypedValue:
    """A stored value of some family other than strings (see the module)."""

    __slots__ = ()

    TYPE_NAME: ClassVar[bytes]
    TYPE_CODE: ClassVar[int]
    UPDATE: ClassVar[type[ValueUpdate]]

    @classmethod
    def empty(cls) -> TypedValue:
        raise NotImplementedError

    def size_bytes(self) -> int:
        raise NotImplementedError

    def as_update(self) -> ValueUpdate:
        raise NotImplementedError

    def __bool__(self) -> bool:
        raise NotImplementedError


def value_types(*families: type[TypedValue]) -> dict[int, type[TypedValue]]:
    """``TYPE_CODE`` -> family, refusing two families with one code."""
    by_code: dict[int, type[TypedValue]] = {}
    for family in families:
        if family.TYPE_CODE in by_code or not 0 < family.TYPE_CODE < 256:
            raise ValueError(f"value type code {family.TYPE_CODE} of {family.__name__} is taken or out of range")
        by_code[family.TYPE_CODE] = family
    return by_code
