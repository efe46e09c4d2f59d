"""The cyclic garbage collector in a server process: freeze what start-up made.

Why: CPython's full collection (generation 2) walks every container object
the process holds. Once started, a server holds about 33,000 of them that
never become garbage: the modules, their functions and classes, the
command tables. On the 2-core machine of ``bench/cluster_bench.py`` one
full pass over them took 17-19 ms of CPU (more in wall time when the cores
are shared), and under load a node ran one every few seconds; every
request in flight waits for it, which put such passes in the p99.
``gc.freeze()`` moves every object alive at that moment to the permanent
generation, which no collection walks (they are still freed by reference
counting, as always); a full pass then walks only what was made since.

Rules:

* Only a process that is the server's own applies this (the command line,
  ``cli.main``, through ``serve(..., freeze_start_up=True)``): a process
  that runs servers in-process (the tests) keeps its collector as it is.
* The freeze comes after start-up (the data loaded, the listeners and the
  cluster's tasks started), after one full collection, so no start-up
  garbage is frozen (frozen garbage would never be freed).
* The thresholds stay CPython's: a young collection walks only the young
  objects still alive, so its pause stays small (well under a millisecond
  here) as long as the code makes no reference cycles per request. The
  data path keeps it that way: the cycles it made (two closures per quorum
  read in ``cluster/read_quorum.py``, a write and its batch in
  ``cluster/write_acks.py``) were the rest of the long passes, 20-36 ms
  of CPU each to free ~30,000 objects. Measured after both: a node's full
  pass about 3.5 ms of CPU, with nothing to free.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_start_up() -> int:
    """Collect once, then freeze every object alive; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("garbage collector: %d start-up objects frozen (never walked again)", frozen)
    return frozen
