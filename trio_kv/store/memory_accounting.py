"""What the keyspace's data costs, in bytes, counted as it changes.

INFO's ``used_memory`` (and the figure ``maxmemory`` is compared with) is
``Store.used_memory_bytes``: the process's resident size when the store was
made (the interpreter, the modules, the server's own objects: the
*baseline*) plus ``Keyspace.memory_bytes()``, the data's accounted bytes.
Unlike the resident size it falls when keys are deleted (pymalloc keeps its
arenas, so RSS does not), and it costs O(1) to read, so the engine can read
it before every write under a limit.

The model (CPython 3.11, 64-bit; checked against RSS after loading 1M keys
by bench/memory_accounting_bench.py and tests/integration/test_eviction.py):

* A ``bytes`` object of n bytes costs ``object_bytes(n)``: its header (33
  bytes with the trailing NUL) plus n, rounded up to pymalloc's 16-byte
  size classes; past pymalloc's 512-byte limit, malloc's 8-byte chunk
  header is added and rounded the same way. Keys are counted exactly this
  way as they enter and leave (``Keyspace.key_bytes``); values by their
  total length (``value_bytes``, already kept exact) plus
  ``VALUE_OBJECT_BYTES`` each (the header and the average rounding).
* The hash tables answer for their own structure (``HashTable.memory_bytes``:
  list cells, lists being built or released, access stamps); an expiry time
  is an ``int`` object of ``EXPIRY_OBJECT_BYTES``; the sorted index answers
  its estimate (``SortedKeyIndex.bytes_estimate``).
* Grown values (store/growable.py) add their spare capacity.
* Not counted: typed values beyond their ``size_bytes`` (a hash's dict),
  cluster versions, snapshot undo logs, connection buffers: they are
  outside the model (the baseline covers what exists at start).
"""

from __future__ import annotations

# sys.getsizeof(b"") on 64-bit CPython: the object header and the NUL.
BYTES_HEADER = 33
# pymalloc serves requests up to this many bytes, in 16-byte classes.
PYMALLOC_MAX_BYTES = 512
SIZE_CLASS_BYTES = 16
# glibc malloc's per-chunk header for larger objects.
MALLOC_CHUNK_HEADER_BYTES = 8
# A value's object beyond its length, on average (header + half a class).
VALUE_OBJECT_BYTES = BYTES_HEADER + SIZE_CLASS_BYTES // 2
# sys.getsizeof(an epoch-milliseconds int).
EXPIRY_OBJECT_BYTES = 32


def object_bytes(length: int) -> int:
    """What a ``bytes`` object of ``length`` bytes costs in the heap."""
    size = BYTES_HEADER + length
    if size > PYMALLOC_MAX_BYTES:
        size += MALLOC_CHUNK_HEADER_BYTES
    return (size + SIZE_CLASS_BYTES - 1) & -SIZE_CLASS_BYTES
