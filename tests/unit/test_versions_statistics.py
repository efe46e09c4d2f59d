"""``Versions.statistics()`` (INFO cluster, /metrics): the figures kept per
write equal a walk of every stored clock after any sequence of mutations:
local writes (SET, DEL, HSET, EXPIRE, MULTI), FLUSHALL, siblings arriving
from replicas (``apply_remote``), resolved by TKV.PUTCTX or a plain SET,
and a restart that replays the log (``Versions.load``). Also the warning
log above 25 siblings."""

from __future__ import annotations

import logging
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_kv.cluster import dvvset
from trio_kv.commands.session import Session
from trio_kv.protocol.replies import OK
from trio_kv.store.versions import SIBLINGS_WARNING, Versions
from trio_kv.store.versions_stored import HELD_FLAG, SIBLING_COUNT_MASK

from ..fake_clock import FakeClock
from .cluster_store import NODE_A, NODE_B, NODE_C, close_durable, cluster_session, open_durable, versions_of
from .redis_session import call, run

KEYS = [b"k0", b"k1", b"k2", b"k3"]


def cmd(*words: bytes | str) -> list[bytes]:
    return [word if isinstance(word, bytes) else word.encode() for word in words]


def walked(versions: Versions) -> dict[str, int]:
    """The figures from scratch: every stored clock read."""
    stored = [versions.stored(key) for key in versions.keys()]
    assert all(clock is not None for clock in stored)
    counts = [clock[0] & SIBLING_COUNT_MASK for clock in stored if clock is not None]
    return {
        "versioned_keys": len(stored),
        "keys_with_siblings": sum(count > 1 for count in counts),
        "largest_siblings": max(counts, default=0),
        "tombstone_keys": sum(not clock[0] & HELD_FLAG for clock in stored if clock is not None),
        "version_bytes": sum(len(clock) for clock in stored if clock is not None),
    }


def figures(versions: Versions) -> dict[str, int]:
    statistics = versions.statistics()
    assert statistics["largest_siblings_peak"] >= statistics["largest_siblings"]
    return {name: value for name, value in statistics.items() if name != "largest_siblings_peak"}


def ship(source: Session, target: Session, key: bytes) -> None:
    packed = versions_of(source).clock_of(key)
    if packed is not None:
        versions_of(target).apply_remote(key, packed)
        target.keyspace.effects.end_command()


def check(node: Session) -> None:
    versions = versions_of(node)
    assert figures(versions) == walked(versions)
    # No TTLs here: a tombstone is exactly a versioned key the keyspace lacks.
    absent = sum(not node.keyspace.exists(key) for key in versions.keys())
    assert versions.statistics()["tombstone_keys"] == absent


key_index = st.integers(0, len(KEYS) - 1)
node_index = st.integers(0, 2)
operation = st.one_of(
    st.tuples(st.just("set"), node_index, key_index),
    st.tuples(st.just("del"), node_index, key_index),
    st.tuples(st.just("hset"), node_index, key_index),
    st.tuples(st.just("expire"), node_index, key_index),
    st.tuples(st.just("multi"), node_index, key_index),
    st.tuples(st.just("flushall"), node_index, st.just(0)),
    st.tuples(st.just("ship"), node_index, key_index, node_index),
    st.tuples(st.just("putctx"), node_index, key_index),
    st.tuples(st.just("putctx_stale"), node_index, key_index),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=40))
def test_figures_equal_a_walk_after_any_mutations(operations) -> None:
    clock = FakeClock()
    nodes = [cluster_session(actor, clock) for actor in (NODE_A, NODE_B, NODE_C)]
    for step, op in enumerate(operations):
        node, key = nodes[op[1]], KEYS[op[2]]
        clock.advance(1)
        if op[0] == "set":
            call(node, cmd("SET", key, f"v{step}"))
        elif op[0] == "del":
            call(node, cmd("DEL", key))
        elif op[0] == "hset":
            call(node, cmd("HSET", key + b"h", "f", f"v{step}"))
        elif op[0] == "expire":
            call(node, cmd("EXPIRE", key, "1000"))
        elif op[0] == "multi":
            run(node, "MULTI", cmd("SET", key, "m"), cmd("DEL", KEYS[(op[2] + 1) % len(KEYS)]), "EXEC")
        elif op[0] == "flushall":
            call(node, "FLUSHALL")
        elif op[0] == "ship":
            ship(node, nodes[op[3]], key)
        else:
            context, _ = versions_of(node).siblings(key)
            if op[0] == "putctx_stale":
                context = dvvset.encode_context(())  # saw nothing: a sibling beside every other
            assert call(node, [b"TKV.PUTCTX", key, context, f"p{step}".encode()]) == OK
        for each in nodes:
            check(each)


def test_siblings_from_replicas_resolved_by_putctx_and_by_set() -> None:
    clock = FakeClock()
    a, b, c = (cluster_session(actor, clock) for actor in (NODE_A, NODE_B, NODE_C))
    call(a, "SET k from-a")
    call(b, "SET k from-b")
    call(c, "SET k from-c")
    ship(b, a, b"k")
    ship(c, a, b"k")
    stats = versions_of(a).statistics()
    assert (stats["keys_with_siblings"], stats["largest_siblings"], stats["largest_siblings_peak"]) == (1, 3, 3)
    context, _ = versions_of(a).siblings(b"k")
    assert call(a, [b"TKV.PUTCTX", b"k", context, b"resolved"]) == OK
    stats = versions_of(a).statistics()
    assert (stats["keys_with_siblings"], stats["largest_siblings"], stats["largest_siblings_peak"]) == (0, 1, 3)
    ship(b, c, b"k")
    assert versions_of(c).statistics()["keys_with_siblings"] == 1
    call(c, "SET k plain")  # supersedes every version c has seen
    assert versions_of(c).statistics()["keys_with_siblings"] == 0
    check(a)
    check(c)


def test_tombstones_from_del_and_flushall_and_bytes() -> None:
    node = cluster_session()
    versions = versions_of(node)
    assert versions.statistics() == dict.fromkeys(
        ("versioned_keys", "keys_with_siblings", "largest_siblings", "largest_siblings_peak", "tombstone_keys",
         "version_bytes"), 0)
    run(node, "SET a 1", "SET b 2", "SET c 3")
    assert versions.statistics()["tombstone_keys"] == 0
    call(node, "DEL a")
    assert versions.statistics()["tombstone_keys"] == 1
    call(node, "DEL a")  # already a tombstone: nothing new
    assert versions.statistics()["tombstone_keys"] == 1
    call(node, "FLUSHALL")
    stats = versions.statistics()
    assert (stats["versioned_keys"], stats["tombstone_keys"], stats["largest_siblings"]) == (3, 3, 1)
    call(node, "SET b again")
    assert versions.statistics()["tombstone_keys"] == 2
    assert versions.statistics()["version_bytes"] == walked(versions)["version_bytes"] > 0


def test_figures_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    a = open_durable(tmp_path, NODE_A, clock)
    b = cluster_session(NODE_B, clock)
    run(a, "SET x 1", "SET y 2", "DEL y")
    call(b, "SET x 9")
    ship(b, a, b"x")
    before = versions_of(a).statistics()
    assert (before["keys_with_siblings"], before["tombstone_keys"]) == (1, 1)
    close_durable(a)
    again = open_durable(tmp_path, NODE_A, clock)
    try:
        assert versions_of(again).statistics() == before
        check(again)
    finally:
        close_durable(again)


def test_many_siblings_log_a_warning_naming_the_key_safely(caplog) -> None:
    clock = FakeClock()
    target = cluster_session(NODE_A, clock)
    key = b"\x1b[31m\n" + b"k" * 200  # a terminal escape, a newline, and long
    with caplog.at_level(logging.WARNING, logger="trio_kv.store.versions"):
        for index in range(SIBLINGS_WARNING + 1):
            writer = cluster_session(bytes([index + 1]) * 20, clock)
            call(writer, [b"SET", key, b"v"])
            ship(writer, target, key)
    assert versions_of(target).statistics()["largest_siblings"] == SIBLINGS_WARNING + 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0]
    assert f"has {SIBLINGS_WARNING + 1} siblings" in message
    assert "\n" not in message and "\x1b" not in message and "k" * 65 not in message
    assert len(message) < 200
