"""The versions' fast paths (store/versions.py) change nothing but speed.

Two twin clusters of three cluster-mode stores share one fake wall clock
and go through the same random history (writes of every kind, TKV.PUTCTX,
time passing, clocks shipped between nodes in any order, duplicated, and
tampered with: an actor table naming an unused actor, a value twice, a
history without values; and clocks forged at random, as an untrusted peer
could send them). In one, ``Versions`` runs as built; in the
other, ``apply_remote`` and ``clock_of`` are the reference below: the
plain decode, DVVSet sync, re-encode path the fast paths replaced. After
every step both twins must agree on everything observable: what each
apply returned or raised, every effect emitted (the log's records), every
stored clock byte for byte, the wire clocks, the keyspace, the figures
and the hybrid clock.
"""

from __future__ import annotations

import types

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trio_kv.cluster import dvvset, key_state
from trio_kv.cluster.dvvset import Clock, ClockFormatError, Entry, Version
from trio_kv.cluster.key_state import Held
from trio_kv.commands.session import Session
from trio_kv.store.versions import Versions
from trio_kv.store.versions_state import current_state, prepare
from trio_kv.store.versions_stored import HELD_FLAG, top_timestamp, unpack

from ..effect_recorder import EffectRecorder
from ..fake_clock import FakeClock
from ..unit.cluster_store import NODE_A, NODE_B, NODE_C, cluster_session, versions_of
from ..unit.redis_session import call

KEYS = [b"k", b"j"]
NODES = [NODE_A, NODE_B, NODE_C]
_writes = st.sampled_from([
    "SET {k} v{n}", "DEL {k}", "APPEND {k} +{n}", "HSET {k} f{n} x", "INCR {k}", "PEXPIRE {k} 3", "PERSIST {k}",
    "SET {k} e{n} PX 2",
])


# --- the reference: the code before the fast paths --------------------------


def reference_clock_of(self: Versions, key: bytes) -> bytes | None:
    stored = self.stored(key)
    if stored is None:
        return None
    if not stored[0] & HELD_FLAG:
        return stored[1:]
    return dvvset.encode(self._copy_out_held(key, dvvset.decode(stored[1:])))


def reference_apply_remote(self: Versions, key: bytes, packed: bytes) -> bool:
    remote = dvvset.decode(packed)
    if remote.anonymous:
        raise ClockFormatError("a replica's clock has no anonymous values")
    for value in dvvset.values(remote):
        state = key_state.decode(value.payload)
        if isinstance(state, Held):
            raise ClockFormatError("a held payload never leaves its node")
        if state is not None:
            prepare(state)
    old = self.stored(key)
    local = unpack(old)
    merged = dvvset.sync2(local, remote)
    if merged == local:
        return False
    self.hlc.observe(top_timestamp(remote))
    merged = self._settle(key, merged)
    self.keyspace.effects.emit(("VERSION", key, self._put(key, merged, old)))
    return True


def reference(session: Session) -> Session:
    versions = versions_of(session)
    versions.clock_of = types.MethodType(reference_clock_of, versions)  # type: ignore[method-assign]
    versions.apply_remote = types.MethodType(reference_apply_remote, versions)  # type: ignore[method-assign]
    return session


# --- tampering with a shipped clock -----------------------------------------


def with_unused_actor(packed: bytes, unused: bytes) -> bytes:
    """``packed`` with ``unused`` added to its actor table (still well formed)."""
    clock = dvvset.decode(packed)
    table = sorted({entry.actor for entry in clock.entries} | {v.actor for v in dvvset.values(clock)} | {unused})
    index = {actor: dvvset.varint_bytes(position) for position, actor in enumerate(table)}

    def value(v: dvvset.Version) -> bytes:
        return v.timestamp.to_bytes(8, "little") + index[v.actor] + dvvset.varint_bytes(len(v.payload)) + v.payload

    out = [bytes((dvvset.FORMAT,)), dvvset.varint_bytes(len(table))]
    out += [bytes((len(actor),)) + actor for actor in table]
    out.append(dvvset.varint_bytes(len(clock.entries)))
    for entry in clock.entries:
        out += [index[entry.actor], dvvset.varint_bytes(entry.counter), dvvset.varint_bytes(len(entry.values))]
        out += [value(v) for v in entry.values]
    out.append(b"\x00")
    return b"".join(out)


def tampered(packed: bytes, how: str) -> bytes:
    clock = dvvset.decode(packed)
    if how == "unused actor":
        return with_unused_actor(packed, b"u" * 20)
    if how == "no values":
        return dvvset.encode(Clock(tuple(Entry(e.actor, e.counter) for e in clock.entries)))
    # "value twice": the first entry with room repeats its newest value.
    entries = list(clock.entries)
    for index, entry in enumerate(entries):
        if entry.values and len(entry.values) < entry.counter:
            entries[index] = Entry(entry.actor, entry.counter, (*entry.values, entry.values[0]))
            break
    return dvvset.encode(Clock(tuple(entries)))


# --- the twins ---------------------------------------------------------------


class Twins(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.fast = [cluster_session(actor, self.clock) for actor in NODES]
        self.slow = [reference(cluster_session(actor, self.clock)) for actor in NODES]
        self.recorders = [(EffectRecorder(f.keyspace), EffectRecorder(s.keyspace)) for f, s in zip(self.fast, self.slow)]
        self.writes = 0
        self.contexts: list[bytes] = []

    def both(self, node: int, command: str) -> None:
        assert call(self.fast[node], command) == call(self.slow[node], command)

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS), write=_writes)
    def write(self, node: int, key: bytes, write: str) -> None:
        self.writes += 1
        self.both(node, write.format(k=key.decode(), n=self.writes))

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS))
    def resolve(self, node: int, key: bytes) -> None:
        context, _ = call(self.fast[node], f"TKV.SIBLINGS {key.decode()}")
        assert call(self.slow[node], f"TKV.SIBLINGS {key.decode()}")[0] == context
        self.writes += 1
        self.both(node, f"TKV.PUTCTX {key.decode()} {context.decode()} r{self.writes}")

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS), pick=st.integers(0, 1000))
    def write_with_a_stale_context(self, node: int, key: bytes, pick: int) -> None:
        # A context read earlier, anywhere (or none): the new value becomes a
        # sibling of what it did not see, the same actor's values included.
        contexts = [dvvset.encode_context(()), *self.contexts]
        self.writes += 1
        self.both(node, f"TKV.PUTCTX {key.decode()} {contexts[pick % len(contexts)].decode()} s{self.writes}")

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS))
    def read_context(self, node: int, key: bytes) -> None:
        self.contexts.append(call(self.fast[node], f"TKV.SIBLINGS {key.decode()}")[0])

    @rule(ms=st.integers(0, 4))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule(
        source=st.integers(0, 2), to=st.integers(0, 2), key=st.sampled_from(KEYS),
        how=st.sampled_from(["as is", "as is", "as is", "unused actor", "value twice", "no values"]),
    )
    def deliver(self, source: int, to: int, key: bytes, how: str) -> None:
        packed = versions_of(self.fast[source]).clock_of(key)
        assert packed == versions_of(self.slow[source]).clock_of(key)
        if packed is None:
            return
        if how != "as is":
            packed = tampered(packed, how)
        self.apply_both(to, key, packed)

    def apply_both(self, to: int, key: bytes, packed: bytes) -> None:
        outcomes = []
        for target in (self.fast[to], self.slow[to]):
            try:
                outcomes.append(versions_of(target).apply_remote(key, packed))
            except ValueError as error:
                outcomes.append(f"{type(error).__name__}: {error}")
            target.keyspace.effects.end_command()
        assert outcomes[0] == outcomes[1]

    @rule(source=st.integers(0, 2), to=st.integers(0, 2), key=st.sampled_from(KEYS))
    def deliver_as_is(self, source: int, to: int, key: bytes) -> None:
        self.deliver(source, to, key, "as is")  # replication is most of what happens

    @rule(to=st.integers(0, 2), key=st.sampled_from(KEYS), forged=st.data())
    def deliver_forged(self, to: int, key: bytes, forged: st.DataObject) -> None:
        # Any well-formed clock a peer could send, whatever its relation to
        # the local one: the fast paths must still give the slow path's result.
        entries = []
        # Counters near the target's own, so every relation between the two
        # histories comes up.
        local = dict(dvvset.join(dvvset.decode(versions_of(self.fast[to]).clock_of(key) or dvvset.encode(dvvset.EMPTY))))
        for actor in sorted(forged.draw(st.sets(st.sampled_from(NODES), min_size=1))):
            counter = max(1, local.get(actor, 1) + forged.draw(st.integers(-1, 2)))
            values = tuple(
                Version(forged.draw(st.sampled_from(self.timestamps())), forged.draw(st.sampled_from(NODES)),
                        forged.draw(st.sampled_from(self.payloads())))
                for _ in range(forged.draw(st.integers(0, min(counter, 2))))
            )
            entries.append(Entry(actor, counter, values))
        packed = dvvset.encode(Clock(tuple(entries)))
        if forged.draw(st.booleans()):
            packed = with_unused_actor(packed, b"u" * 20)
        self.apply_both(to, key, packed)

    def timestamps(self) -> list[int]:
        now = self.clock.now_ms << 16
        return [now - (5 << 16), now, now + 1, *(v.hlc.last for v in map(versions_of, self.fast))]

    def payloads(self) -> list[bytes]:
        expiring = key_state.encode_state(key_state.KeyState(key_state.STRING_TYPE, b"x", self.clock.now_ms + 3))
        expired = key_state.encode_state(key_state.KeyState(key_state.STRING_TYPE, b"y", self.clock.now_ms - 1))
        return [key_state.TOMBSTONE, key_state.encode_state(key_state.KeyState(key_state.STRING_TYPE, b"f")), expiring, expired]

    @invariant()
    def twins_agree(self) -> None:
        for (fast, slow), (fast_effects, slow_effects) in zip(zip(self.fast, self.slow), self.recorders):
            assert fast_effects.take() == slow_effects.take()
            f, s = versions_of(fast), versions_of(slow)
            assert f.statistics() == s.statistics()
            assert f.hlc.last == s.hlc.last
            assert sorted(f.keys()) == sorted(s.keys())
            for key in KEYS:
                assert f.stored(key) == s.stored(key)
                assert f.clock_of(key) == s.clock_of(key)
                assert current_state(fast.keyspace, key) == current_state(slow.keyspace, key)


TestTwins = Twins.TestCase
TestTwins.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
