"""Stores in cluster mode exchanging states converge (store/versions.py):
whatever the writes on each node and whatever order their states travel in
(duplicated, stale, interleaved with more writes), once every node has every
other's state they all hold the same siblings, the same history and GET
the same winner. Each node has its own actor id; they share one fake wall
clock, which the test moves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from trio_kv.cluster import dvvset
from trio_kv.cluster.key_state import KeyState
from trio_kv.commands.hash_value import HashValue
from trio_kv.commands.session import Session

from ..fake_clock import FakeClock
from ..unit.cluster_store import NODE_A, NODE_B, NODE_C, clock_of, cluster_session, versions_of
from ..unit.redis_session import call

KEYS = [b"k", b"j"]
NODES = [NODE_A, NODE_B, NODE_C]
_writes = st.sampled_from(
    ["SET {k} v{n}", "DEL {k}", "APPEND {k} +{n}", "HSET {k} f{n} x", "INCR {k}", "PEXPIRE {k} 3", "PERSIST {k}"]
)


def _normal(state: KeyState | None) -> object:
    if state is None or state.type_code != HashValue.TYPE_CODE:
        return state
    value = HashValue()
    HashValue.UPDATE.decode(state.data).apply(value)
    return state.type_code, sorted(value.fields.items()), state.expire_at_ms


def view(session: Session, key: bytes) -> tuple[object, ...]:
    """What must agree between converged nodes: history, siblings, GET."""
    versions = versions_of(session)
    _, siblings = versions.siblings(key)
    return (
        dvvset.join(clock_of(session, key)),
        [(version.timestamp, version.actor, _normal(state)) for version, state in siblings],
        call(session, f"TYPE {key.decode()}"),
        _normal(siblings[0][1]) if siblings else None,
    )


def ship(source: Session, target: Session, key: bytes) -> None:
    packed = versions_of(source).clock_of(key)
    if packed is not None:
        versions_of(target).apply_remote(key, packed)
        target.keyspace.effects.end_command()


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.nodes = [cluster_session(actor, self.clock) for actor in NODES]
        self.writes = 0

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS), write=_writes)
    def write(self, node: int, key: bytes, write: str) -> None:
        self.writes += 1
        call(self.nodes[node], write.format(k=key.decode(), n=self.writes))

    @rule(node=st.integers(0, 2), key=st.sampled_from(KEYS))
    def resolve(self, node: int, key: bytes) -> None:
        context, _ = call(self.nodes[node], f"TKV.SIBLINGS {key.decode()}")
        self.writes += 1
        call(self.nodes[node], f"TKV.PUTCTX {key.decode()} {context.decode()} r{self.writes}")

    @rule(ms=st.integers(0, 4))
    def time_passes(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule(source=st.integers(0, 2), to=st.integers(0, 2), key=st.sampled_from(KEYS))
    def deliver(self, source: int, to: int, key: bytes) -> None:
        ship(self.nodes[source], self.nodes[to], key)

    @rule()
    def exchange_everything(self) -> None:
        # Two rounds all-to-all: every node ends with every node's state.
        for _ in range(2):
            for source in self.nodes:
                for target in self.nodes:
                    for key in KEYS:
                        ship(source, target, key)
        for key in KEYS:
            views = [view(node, key) for node in self.nodes]
            assert views[0] == views[1] == views[2]
            winners = {call(node, f"GET {key.decode()}") if view(node, key)[2] == b"string" else None for node in self.nodes}
            assert len(winners) == 1

    @invariant()
    def get_shows_the_winner(self) -> None:
        for node in self.nodes:
            for key in KEYS:
                _, siblings = versions_of(node).siblings(key)
                live = siblings and siblings[0][1] is not None and not siblings[0][1].expired(self.clock.now_ms)
                assert bool(call(node, f"EXISTS {key.decode()}")) == bool(live)
                if live and siblings[0][1].type_code == 0:
                    assert call(node, f"GET {key.decode()}") == siblings[0][1].data
                # Siblings are bounded by the writers: one live value per node at most.
                assert len(siblings) <= len(NODES)


TestReplicas = Replicas.TestCase
TestReplicas.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from(KEYS), _writes, st.integers(0, 2)), max_size=12),
    st.randoms(use_true_random=False),
)
def test_any_delivery_order_gives_the_same_state(writes: list[tuple[int, bytes, str, int]], random) -> None:
    clock = FakeClock()
    writers = [cluster_session(actor, clock) for actor in NODES]
    for number, (node, key, write, ms) in enumerate(writes):
        call(writers[node], write.format(k=key.decode(), n=number))
        clock.advance(ms)
    states = [(writer, key) for writer in writers for key in KEYS]
    receivers = []
    for _ in range(2):  # two fresh receivers, each getting every state in its own order, some twice
        receiver = cluster_session(b"r" * 20, clock)
        order = states + random.sample(states, k=min(3, len(states)))
        random.shuffle(order)
        for writer, key in order:
            ship(writer, receiver, key)
        receivers.append(receiver)
    for key in KEYS:
        assert view(receivers[0], key) == view(receivers[1], key)
