"""The hash family's stored value and its one kind of update (see commands/values.py).

Memory choice: a hash is a plain ``dict`` of ``bytes`` field -> ``bytes``
value, with no encoding switch (Redis keeps small hashes as a listpack). A
Python dict of small ``bytes`` costs about 100 bytes per field more than the
field and value themselves; a packed form would save that but make every
HGET a scan or a decode. ``size_bytes`` (the hash's share of STATS
``bytes``) is the total length of its fields and values, kept exact on every
update.

``HashUpdate`` sets some fields to values and deletes others: absolute per
field, so replaying it over a newer state is harmless. HINCRBY and
HINCRBYFLOAT are logged as the field's new value.

Log bytes of an update (little-endian): u32 number of pairs set, then per
pair u32 length + field, u32 length + value; u32 number of fields deleted,
then per field u32 length + field.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from .values import TypedValue, ValueUpdate

_U32 = struct.Struct("<I")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from


class HashUpdate(ValueUpdate):
    __slots__ = ("pairs", "deleted")

    def __init__(self, pairs: list[tuple[bytes, bytes]] | None = None, deleted: list[bytes] | None = None) -> None:
        # Fields set to values, in request order (a repeated field: the last wins).
        self.pairs = pairs or []
        # Fields removed (absent ones are no change).
        self.deleted = deleted or []

    def apply(self, value: TypedValue) -> int:
        assert isinstance(value, HashValue)
        fields = value.fields
        delta = 0
        for field, item in self.pairs:
            old = fields.get(field)
            delta += len(item) - (len(old) if old is not None else -len(field))
            fields[field] = item
        for field in self.deleted:
            old = fields.pop(field, None)
            if old is not None:
                delta -= len(field) + len(old)
        value.nbytes += delta
        return delta

    def encode(self) -> bytes:
        parts = [_pack_u32(len(self.pairs))]
        for field, item in self.pairs:
            parts += (_pack_u32(len(field)), field, _pack_u32(len(item)), item)
        parts.append(_pack_u32(len(self.deleted)))
        for field in self.deleted:
            parts += (_pack_u32(len(field)), field)
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> HashUpdate:
        """The update ``encode`` wrote; ``ValueError`` (struct.error) if cut short."""
        pos = 4
        pairs = []
        for _ in range(_unpack_u32(payload, 0)[0]):
            field, pos = _field(payload, pos)
            item, pos = _field(payload, pos)
            pairs.append((field, item))
        deleted = []
        count = _unpack_u32(payload, pos)[0]
        pos += 4
        for _ in range(count):
            field, pos = _field(payload, pos)
            deleted.append(field)
        if pos != len(payload):
            raise ValueError(f"hash update of {len(payload)} bytes holds {pos}")
        return cls(pairs, deleted)


def _field(payload: bytes, pos: int) -> tuple[bytes, int]:
    end = pos + 4 + _unpack_u32(payload, pos)[0]
    if end > len(payload):
        raise ValueError("hash update field runs past its end")
    return payload[pos + 4 : end], end


class HashValue(TypedValue):
    __slots__ = ("fields", "nbytes")

    TYPE_NAME: ClassVar[bytes] = b"hash"
    TYPE_CODE: ClassVar[int] = 1
    UPDATE: ClassVar[type[ValueUpdate]] = HashUpdate

    def __init__(self) -> None:
        self.fields: dict[bytes, bytes] = {}
        # Total length of fields and values (size_bytes), kept by HashUpdate.apply.
        self.nbytes = 0

    @classmethod
    def empty(cls) -> HashValue:
        return cls()

    def size_bytes(self) -> int:
        return self.nbytes

    def as_update(self) -> HashUpdate:
        return HashUpdate(list(self.fields.items()))

    def __bool__(self) -> bool:
        return bool(self.fields)


HashUpdate.VALUE_TYPE = HashValue
