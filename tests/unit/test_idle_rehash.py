"""The expiry cycle finishes a resize that writes left half done (Redis'
activerehashing), on either table: with no write at all after the load,
repeated cycles leave one list (and, compact table, nothing to release)."""

from __future__ import annotations

import pytest

from trio_kv.config import Config
from trio_kv.store.expiry_cycle import active_expire_cycle
from trio_kv.store.store import Store


@pytest.mark.parametrize("table", ["objects", "compact"])
def test_cycles_finish_a_resize_when_writes_stop(table: str) -> None:
    store = Store(Config(appendonly=False, table=table))
    keyspace = store.keyspace
    i = 0
    while not (keyspace.slot_counts()[1] and keyspace.slot_counts()[0] >= 1 << 14):
        keyspace.set(b"key:%d" % i, b"v")
        i += 1
    cycles = 0
    while keyspace.slot_counts()[1] or keyspace.statistics()["table"].get("releasing"):  # type: ignore[attr-defined]
        active_expire_cycle(store)
        cycles += 1
        assert cycles < 10_000, "the idle rehash made no progress"
    assert keyspace.slot_counts()[1] == 0
    assert all(keyspace.get(b"key:%d" % j) == b"v" for j in range(i))
