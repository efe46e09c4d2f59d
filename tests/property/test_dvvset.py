"""DVVSet laws (cluster/dvvset.py), with hypothesis.

Clocks are drawn from *universes*: histories of writes and syncs among a few
replicas, as a cluster makes them (every dot issued once, by its actor, on
top of everything that actor has seen), because the laws hold for clocks
of one history, not for arbitrary trees of numbers. A model-based test
checks every step of such a history against a naive model: a set of
(actor, counter, value) siblings plus the set of every dot seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from trio_kv.cluster import dvvset
from trio_kv.cluster.dvvset import EMPTY, Clock, Version, join, new, sync2, update

ACTORS = [b"a", b"b", b"c"]
Dot = tuple[bytes, int]


@dataclass
class Universe:
    """Replicas' clocks and every clock ever produced, from one history."""

    replicas: list[Clock]
    produced: list[Clock] = field(default_factory=list)
    writes: int = 0

    def value(self, actor: bytes, timestamp: int) -> Version:
        self.writes += 1
        return Version(timestamp, actor, b"w%d" % self.writes)


@st.composite
def universes(draw: st.DrawFn, max_steps: int = 20) -> Universe:
    replica_count = draw(st.integers(1, len(ACTORS)))
    universe = Universe([EMPTY] * replica_count, [EMPTY])
    for _ in range(draw(st.integers(0, max_steps))):
        kind = draw(st.sampled_from(["write", "write with context", "sync"]))
        at = draw(st.integers(0, replica_count - 1))
        local = universe.replicas[at]
        actor = ACTORS[at]
        if kind == "sync":
            other = universe.replicas[draw(st.integers(0, replica_count - 1))]
            result = sync2(local, other)
        else:
            value = universe.value(actor, draw(st.integers(0, 2**64 - 1)))
            context = join(local) if kind == "write" else join(draw(st.sampled_from(universe.produced)))
            result = update(new(value, context), actor, local)
        universe.replicas[at] = result
        universe.produced.append(result)
    return universe


@st.composite
def clocks_of_one_history(draw: st.DrawFn, count: int) -> list[Clock]:
    universe = draw(universes())
    return [draw(st.sampled_from(universe.produced)) for _ in range(count)]


@given(clocks_of_one_history(2))
def test_sync_is_commutative(clocks: list[Clock]) -> None:
    a, b = clocks
    assert sync2(a, b) == sync2(b, a)


@given(clocks_of_one_history(3))
def test_sync_is_associative(clocks: list[Clock]) -> None:
    a, b, c = clocks
    assert sync2(sync2(a, b), c) == sync2(a, sync2(b, c))


@given(clocks_of_one_history(2))
def test_sync_is_idempotent(clocks: list[Clock]) -> None:
    a, b = clocks
    assert sync2(a, a) == a
    merged = sync2(a, b)
    assert sync2(merged, a) == merged == sync2(merged, merged)
    assert not dvvset.less(merged, a) and not dvvset.less(merged, b)


def _dots(vector: dvvset.VersionVector) -> set[Dot]:
    return {(actor, n) for actor, counter in vector for n in range(1, counter + 1)}


@given(clocks_of_one_history(2), st.sampled_from(ACTORS), st.integers(0, 2**64 - 1))
def test_a_write_with_context_replaces_exactly_what_the_context_saw(
    clocks: list[Clock], actor: bytes, timestamp: int
) -> None:
    local, read = clocks
    context = join(read)
    value = Version(timestamp, actor, b"new")
    written = update(new(value, context), actor, local)
    seen = _dots(context)
    kept = {(a, n, v) for a, n, v in dvvset.dotted_values(local) if (a, n) not in seen}
    new_counter = max(dict(join(local)).get(actor, 0), dict(context).get(actor, 0)) + 1
    assert set(dvvset.dotted_values(written)) == kept | {(actor, new_counter, value)}
    assert dvvset.descends(written, context) and dvvset.descends(written, join(local))
    # The write's winner is itself when its timestamp is the greatest.
    if all(v.timestamp < timestamp for v in dvvset.values(local)):
        assert dvvset.last(written) == value


@given(universes())
def test_overwrite_leaves_one_sibling(universe: Universe) -> None:
    for local in universe.produced:
        written = dvvset.overwrite(local, ACTORS[0], Version(0, ACTORS[0], b"x"))
        assert dvvset.values(written) == [Version(0, ACTORS[0], b"x")]
        assert dvvset.less(local, written)


_payloads = st.binary(max_size=40)
_versions = st.builds(Version, st.integers(0, 2**64 - 1), st.sampled_from(ACTORS + [b"", bytes(255)]), _payloads)


@given(universes(), st.lists(_versions, max_size=4))
def test_encode_decode_round_trips(universe: Universe, anonymous: list[Version]) -> None:
    for clock in universe.produced:
        assert dvvset.decode(dvvset.encode(clock)) == clock
        assert dvvset.decode_context(dvvset.encode_context(join(clock))) == join(clock)
    with_anonymous = new(anonymous, join(universe.replicas[0]))
    assert dvvset.decode(dvvset.encode(with_anonymous)) == with_anonymous


@given(st.binary(max_size=60))
def test_decode_never_crashes_on_garbage(data: bytes) -> None:
    try:
        clock = dvvset.decode(data)
    except dvvset.ClockFormatError:
        return
    # Accepted bytes re-encode to themselves exactly when ``scan`` says they
    # are canonical (the one freedom: an actor in the table nothing names).
    assert (dvvset.encode(clock) == data) == dvvset.scan(data).canonical


@given(universes(), st.lists(_versions, max_size=4))
def test_scan_reads_what_decode_reads_and_where_each_payload_is(universe: Universe, anonymous: list[Version]) -> None:
    for clock in [*universe.produced, new(anonymous, join(universe.replicas[0]))]:
        data = dvvset.encode(clock)
        scanned = dvvset.scan(data)
        assert scanned.canonical
        assert dvvset.from_scan(scanned) == clock
        assert scanned.values == dvvset.values(clock)[len(clock.anonymous) :] + list(clock.anonymous)
        assert scanned.entries == [(e.actor, e.counter, len(e.values)) for e in clock.entries]
        assert dvvset.entries_of(data) == (scanned.entries, len(clock.anonymous))
        for value, (start, end) in zip(scanned.values, scanned.spans):
            assert data[start:end] == dvvset.varint_bytes(len(value.payload)) + value.payload
        # The same clock with an actor nobody names in its table: accepted, not canonical.
        unused = b"unused"
        table = sorted({e.actor for e in clock.entries} | {v.actor for v in dvvset.values(clock)} | {unused})
        if table.index(unused) == len(table) - 1:  # appended last: no index moves
            head = bytes((dvvset.FORMAT, len(table) - 1))
            assert data.startswith(head)
            padded = bytes((dvvset.FORMAT, len(table))) + data[2 : 2 + sum(1 + len(a) for a in table[:-1])]
            padded += bytes((len(unused),)) + unused + data[2 + sum(1 + len(a) for a in table[:-1]) :]
            assert dvvset.decode(padded) == clock
            assert not dvvset.scan(padded).canonical


@settings(max_examples=200)
@given(st.data(), st.integers(1, 4), st.integers(1, 3))
def test_siblings_never_exceed_concurrent_writers(data: st.DataObject, clients: int, servers: int) -> None:
    # Each client sticks to one server and writes with the context of its
    # last read there (read, then write); servers sync in any order. A
    # client's write supersedes its own previous one, so at most one
    # sibling per client is ever live.
    home = [data.draw(st.integers(0, servers - 1)) for _ in range(clients)]
    state = [EMPTY] * servers
    contexts: list[dvvset.VersionVector] = [()] * clients
    writers: set[int] = set()
    for step in range(data.draw(st.integers(0, 40))):
        kind = data.draw(st.sampled_from(["read", "write", "sync"]))
        client = data.draw(st.integers(0, clients - 1))
        at = home[client]
        if kind == "read":
            contexts[client] = join(state[at])
        elif kind == "write":
            value = Version(step, ACTORS[at], b"%d/%d" % (client, step))
            state[at] = update(new(value, contexts[client]), ACTORS[at], state[at])
            contexts[client] = join(state[at])  # the write's reply carries its context
            writers.add(client)
        else:
            other = data.draw(st.integers(0, servers - 1))
            state[at] = sync2(state[at], state[other])
        for clock in state:
            assert dvvset.size(clock) <= len(writers)


# --- model-based: the DVVSet against a naive causal-history model ---------------


@dataclass
class ModelReplica:
    siblings: set[tuple[bytes, int, Version]] = field(default_factory=set)
    history: set[Dot] = field(default_factory=set)

    def vector(self) -> dict[bytes, int]:
        vector: dict[bytes, int] = {}
        for actor, counter in self.history:
            vector[actor] = max(vector.get(actor, 0), counter)
        return vector


class DVVSetAgainstModel(RuleBasedStateMachine):
    """Every replica's clock holds exactly the model's siblings and history."""

    contexts = Bundle("contexts")

    @initialize(replicas=st.integers(1, len(ACTORS)))
    def start(self, replicas: int) -> None:
        self.clocks = [EMPTY] * replicas
        self.models = [ModelReplica() for _ in range(replicas)]
        self.writes = 0

    @rule(target=contexts, at=st.data())
    def read(self, at: st.DataObject) -> tuple[dvvset.VersionVector, frozenset[Dot]]:
        replica = at.draw(st.integers(0, len(self.clocks) - 1))
        return join(self.clocks[replica]), frozenset(self.models[replica].history)

    def _write(self, replica: int, vector: dvvset.VersionVector, context: frozenset[Dot], timestamp: int) -> None:
        actor = ACTORS[replica]
        self.writes += 1
        value = Version(timestamp, actor, b"w%d" % self.writes)
        self.clocks[replica] = update(new(value, vector), actor, self.clocks[replica])
        model = self.models[replica]
        dot = (actor, max([n for a, n in model.history | context if a == actor], default=0) + 1)
        model.siblings = {s for s in model.siblings if (s[0], s[1]) not in context} | {(*dot, value)}
        model.history |= context | {dot}

    @rule(at=st.data(), context=contexts, timestamp=st.integers(0, 100))
    def write_with_context(self, at: st.DataObject, context: tuple[dvvset.VersionVector, frozenset[Dot]], timestamp: int) -> None:
        self._write(at.draw(st.integers(0, len(self.clocks) - 1)), context[0], context[1], timestamp)

    @rule(at=st.data(), timestamp=st.integers(0, 100))
    def plain_write(self, at: st.DataObject, timestamp: int) -> None:
        replica = at.draw(st.integers(0, len(self.clocks) - 1))
        self._write(replica, join(self.clocks[replica]), frozenset(self.models[replica].history), timestamp)

    @precondition(lambda self: len(self.clocks) > 1)
    @rule(data=st.data())
    def sync(self, data: st.DataObject) -> None:
        into = data.draw(st.integers(0, len(self.clocks) - 1))
        source = data.draw(st.integers(0, len(self.clocks) - 1))
        self.clocks[into] = sync2(self.clocks[into], self.clocks[source])
        a, b = self.models[into], self.models[source]
        # A sibling survives unless the other side saw its dot and dropped it.
        a.siblings = {s for s in a.siblings if (s[0], s[1]) not in b.history or s in b.siblings} | {
            s for s in b.siblings if (s[0], s[1]) not in a.history or s in a.siblings
        }
        a.history = a.history | b.history

    @invariant()
    def clocks_match_the_model(self) -> None:
        for clock, model in zip(self.clocks, self.models):
            assert set(dvvset.dotted_values(clock)) == model.siblings
            assert dict(join(clock)) == model.vector()
            # The history is downward closed per actor: a vector says it all.
            assert model.history == _dots(join(clock))
            assert dvvset.decode(dvvset.encode(clock)) == clock


TestDVVSetAgainstModel = DVVSetAgainstModel.TestCase
TestDVVSetAgainstModel.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


_one_actor_versions = st.builds(Version, st.integers(0, 2**64 - 1), st.just(ACTORS[0]), st.binary(max_size=200))


@given(
    st.lists(_one_actor_versions, min_size=1, max_size=2), st.integers(1, 2**20), st.lists(_versions, max_size=1),
    st.integers(0, 300), st.binary(max_size=3), st.booleans(),
)
def test_the_usual_clocks_shortcut_reads_what_the_general_scan_reads(
    values: list[Version], counter: int, anonymous: list[Version], cut: int, tail: bytes, flip: bool,
) -> None:
    """``dvvset._scan_one`` (one actor, one entry, one value) gives the
    general reading's result or declines (None): on such clocks, on other
    shapes near them, and on the same bytes cut, extended or with a byte
    changed (a peer's clock is untrusted)."""
    clock = dvvset.Clock((dvvset.Entry(ACTORS[0], max(counter, len(values)), tuple(values)),), tuple(anonymous))
    data = dvvset.encode(clock)
    candidates = [data, data[:cut], data + tail]
    if flip and data:
        index = cut % len(data)
        candidates.append(data[:index] + bytes(((data[index] + 1) % 256,)) + data[index + 1 :])
    for candidate in candidates:
        one = dvvset._scan_one(candidate)
        try:
            general = dvvset._scan_general(candidate)
        except dvvset.ClockFormatError:
            assert one is None, candidate
            continue
        assert one is None or one == general, candidate
    if len(values) == 1 and not anonymous:
        assert dvvset._scan_one(data) == dvvset._scan_general(data)  # the shortcut takes the usual clock
