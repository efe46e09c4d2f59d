"""``TxBuffer``: what a transaction keeps between its snapshot and its
commit (the sync and the Trio transactions share it; no IO, no lock).

Rules kept here:

* Writes are buffered, the last one per key wins; a read of a buffered key
  is answered from the buffer (a transaction sees its own writes), any
  other read from the snapshot and its key noted (the read set).
* A scan notes its whole range ``[start, end)`` whatever its ``limit``
  (conservative: a commit may report a conflict just past what was seen,
  never miss one), and merges the buffered writes into the snapshot's
  pairs in key order.
* Arguments are checked when the call is made, so ``commit`` applies only
  checked operations.
"""

from __future__ import annotations

from ..store.direct import Delete, Put, check_key, check_put, check_scan


class TxBuffer:
    __slots__ = ("writes", "reads", "ranges")

    def __init__(self) -> None:
        # key -> its last buffered write (Put or Delete).
        self.writes: dict[bytes, Put | Delete] = {}
        # Keys read from the snapshot.
        self.reads: set[bytes] = set()
        # Scanned ranges, (start, end), end exclusive, None open.
        self.ranges: list[tuple[bytes | None, bytes | None]] = []

    def put(self, key: bytes, value: bytes, ttl_ms: int | None) -> None:
        check_put(key, value, ttl_ms)
        self.writes[key] = Put(key, value, ttl_ms)

    def delete(self, key: bytes) -> None:
        check_key(key)
        self.writes[key] = Delete(key)

    def buffered(self, key: bytes) -> tuple[bool, bytes | None]:
        """(True, value or None if deleted) for a buffered key; else (False,
        None) and the key is noted as read (the caller reads the snapshot)."""
        check_key(key)
        op = self.writes.get(key)
        if op is None:
            self.reads.add(key)
            return False, None
        return True, op.value if type(op) is Put else None

    def start_scan(self, start: bytes | None, end: bytes | None, limit: int | None) -> int | None:
        """Note the range; the limit to ask the snapshot for (enough for
        the buffered deletions in range to hide some of its keys)."""
        check_scan(start, end, limit)
        self.ranges.append((start, end))
        if limit is None:
            return None
        return limit + sum(1 for key in self.writes if _in(key, start, end))

    def merge(
        self, pairs: list[tuple[bytes, bytes]], start: bytes | None, end: bytes | None, limit: int | None,
        reverse: bool, asked: int | None,
    ) -> list[tuple[bytes, bytes]]:
        """The snapshot's ``pairs`` of a scan (``asked``: the limit
        ``start_scan`` gave for them) with the buffered writes in range laid
        over them, in order, at most ``limit``."""
        merged = dict(pairs)
        for key, op in self.writes.items():
            if _in(key, start, end):
                if type(op) is Put:
                    merged[key] = op.value
                else:
                    merged.pop(key, None)
        if pairs and asked is not None and len(pairs) >= asked:
            # The snapshot's answer was cut at its limit: a buffered key past
            # its last key might not be the next one in order.
            last = pairs[-1][0]
            merged = {k: v for k, v in merged.items() if (k >= last if reverse else k <= last)}
        keys = sorted(merged, reverse=reverse)
        if limit is not None:
            keys = keys[:limit]
        return [(key, merged[key]) for key in keys]

    def keys(self) -> set[bytes]:
        """Every key read or written (the commit checks them)."""
        return self.reads | self.writes.keys()

    def ops(self) -> list[Put | Delete]:
        return list(self.writes.values())


def _in(key: bytes, start: bytes | None, end: bytes | None) -> bool:
    return (start is None or key >= start) and (end is None or key < end)
