"""``FileRingStore``: the ``cluster.ring_record.RingStore`` of a node with
a data directory: ``<data dir>/cluster-ring.json``.

Rules kept here:

* Written atomically and durably: ``cluster-ring.json.tmp``, fsync,
  rename, directory fsync (data_dir.py's rule for every creation; start-up
  recovery deletes a leftover ``*.tmp``). A reader sees the old ring or the
  new one, never a mix.
* Compare-and-set on the epoch (``check_compare_and_set``) under a lock:
  the data directory is locked to one process, so the lock makes the
  check-then-write atomic for this node.
* A file that is not a valid ring stops the start (``RingRecordError`` from
  ``load``): guessing would put this node in some other ring.

Blocking: call ``save`` from a worker thread (``trio.to_thread``);
``load`` runs once at start-up, before anything is served.
"""

from __future__ import annotations

import os
import threading

from ...cluster.ring import Ring
from ...cluster.ring_record import RingRecordError, check_compare_and_set, decode_ring, encode_ring
from ...store.durability.data_dir import fsync_directory

RING_FILE = "cluster-ring.json"


class FileRingStore:
    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = os.fspath(data_dir)
        self.path = os.path.join(self.data_dir, RING_FILE)
        self._lock = threading.Lock()

    def load(self) -> Ring | None:
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        try:
            return decode_ring(data)
        except RingRecordError as error:
            raise RingRecordError(f"{self.path}: {error}; restore it, or delete it to rejoin from --cluster-seeds") from None

    def save(self, ring: Ring, expected_epoch: int | None) -> None:
        with self._lock:
            check_compare_and_set(self.load(), ring, expected_epoch)
            os.makedirs(self.data_dir, exist_ok=True)
            tmp = self.path + ".tmp"
            with open(tmp, "wb") as file:
                file.write(encode_ring(ring))
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
            fsync_directory(self.data_dir)
