"""Values that grow in place: APPEND and SETRANGE in amortized O(1), as
Redis' sds strings.

A ``Growable`` is a buffer with spare capacity and a ``length``: the value is
``buffer[:length]``. The keyspace stores one instead of ``bytes`` once
APPEND or SETRANGE makes a value longer than ``SMALL_VALUE_BYTES`` (below
that, building a new ``bytes`` costs less than the object); SET replaces it
with plain ``bytes`` again.

Growth policy (Redis' ``sdsMakeRoomFor``): a buffer that must hold ``n``
bytes gets ``2 * n`` below 1 MiB and ``n + 1 MiB`` above. Buffers from
``MAPPED_MIN_BYTES`` up are anonymous private memory maps: untouched pages
(the spare capacity, the zeros of a SETRANGE far past the end) cost no RSS,
and when no view of the buffer is alive a map grows with ``mremap``, without
copying the value.

Aliasing rules (replies are encoded after the whole batch ran, maybe much
later, so a reply must never see a later write):

* ``view()`` hands out a read-only ``memoryview`` of ``buffer[:length]``.
  Bytes below ``length`` are never written while such a view may be alive:
  an append writes only past ``length`` (the spare capacity), and a write
  below ``length`` (SETRANGE inside the value) first moves the value to a new
  buffer when a view was handed out since the last move (copy-on-write),
  unless the buffer can prove no view is alive (a memory map refuses to
  resize while any is).
* Growing never reallocates a buffer a view points into: either the map is
  remapped (possible only with no view alive) or a new buffer is made and
  the old one stays as it was for the views that hold it.
* Every byte of the buffer at or past ``length`` is zero (new buffers are
  zero-filled, only bytes below the new length are ever written), so a
  SETRANGE past the end needs no zero-filling of its gap.
"""

from __future__ import annotations

import mmap

SMALL_VALUE_BYTES = 4096
MAPPED_MIN_BYTES = 1024 * 1024
GROWTH_DOUBLING_BELOW_BYTES = 1024 * 1024
GROWTH_STEP_BYTES = 1024 * 1024

_MAP_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS

Buffer = bytearray | mmap.mmap


def capacity_for(length: int) -> int:
    """The buffer size for a value that must hold ``length`` bytes (sds' greedy rule)."""
    if length < GROWTH_DOUBLING_BELOW_BYTES:
        return max(2 * length, 1)
    return length + GROWTH_STEP_BYTES


def _new_buffer(capacity: int) -> Buffer:
    if capacity >= MAPPED_MIN_BYTES:
        return mmap.mmap(-1, capacity, flags=_MAP_FLAGS)
    return bytearray(capacity)


class Growable:
    __slots__ = ("buffer", "length", "shared")

    def __init__(self, initial: bytes | memoryview, capacity: int) -> None:
        """A value holding ``initial`` in a buffer of ``capacity`` bytes (at
        least ``len(initial)``): one copy of ``initial``."""
        self.buffer: Buffer = _new_buffer(capacity)
        self.length = len(initial)
        self.buffer[: self.length] = initial
        # A view may be alive (set by view(), cleared when the value moves
        # to a buffer nobody has seen, or the map proves no view is alive).
        self.shared = False

    def __len__(self) -> int:
        return self.length

    @property
    def capacity(self) -> int:
        return len(self.buffer)

    def view(self) -> memoryview:
        """The value now, as a read-only view that never changes."""
        self.shared = True
        return memoryview(self.buffer)[: self.length].toreadonly()

    def tobytes(self) -> bytes:
        """The value now, copied into ``bytes``."""
        with memoryview(self.buffer) as whole:
            return whole[: self.length].tobytes()

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """``value[offset:offset + len(data)] = data``; past the end the gap
        reads as zero bytes (SETRANGE; APPEND when ``offset == length``)."""
        end = offset + len(data)
        if end > len(self.buffer):
            self._grow(capacity_for(end))
        elif offset < self.length and self.shared and not self._unshared():
            self._move(len(self.buffer))  # copy-on-write: a view holds these bytes
        self.buffer[offset:end] = data
        if end > self.length:
            self.length = end

    def _unshared(self) -> bool:
        """Whether no view of the buffer is alive (only a map can tell: it
        refuses to resize while one is). Clears ``shared`` when so."""
        buffer = self.buffer
        if type(buffer) is not mmap.mmap:
            return False
        try:
            buffer.resize(len(buffer))
        except BufferError:
            return False
        self.shared = False
        return True

    def _grow(self, capacity: int) -> None:
        buffer = self.buffer
        if type(buffer) is mmap.mmap:
            try:
                buffer.resize(capacity)  # mremap: the value is not copied
            except BufferError:
                pass  # a view holds the buffer: leave it to the view
            else:
                self.shared = False
                return
        self._move(capacity)

    def _move(self, capacity: int) -> None:
        """Copy the value into a new buffer of ``capacity`` bytes that no view has seen."""
        new = _new_buffer(capacity)
        with memoryview(self.buffer) as old:
            new[: self.length] = old[: self.length]
        self.buffer = new
        self.shared = False
