"""The history checkers (harness/history) against histories generated from a
sequential model: clients invoke operations, each takes effect at one instant
inside its interval on a model register per key, and its answer is what the
model gave. Such histories are linearizable by construction, so every checker
must accept them; then mutations that must be caught (a stale read, a future
read, a read of a value never written or of a failed write, an acknowledged
write missing from the final state, a read older than the session's own write)
must each be reported.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.history.jsonl import history_lines, parse_history
from harness.history.linearizable import check_linearizable
from harness.history.model import DELETE, FAIL, OK, READ, UNKNOWN, WRITE, FinalRead, History, Op, precedes
from harness.history.sessions import check_sessions
from harness.history.siblings import check_siblings
from harness.history.survival import check_survival


def simulate(rng: random.Random, steps: int, processes: int, keys: int, unknown_rate: float) -> History:
    """A history of a linearizable register per key, driven by ``rng``."""
    state: dict[str, str | None] = {}
    in_flight: dict[str, dict] = {}
    done: list[Op] = []
    sequence = 0
    clock = 0.0
    index = 0
    names = [f"c{p}" for p in range(processes)]
    for _ in range(steps):
        clock += rng.choice([0.5, 1.0, 1.0, 2.0])
        idle = [name for name in names if name not in in_flight]
        unapplied = [name for name, op in in_flight.items() if not op["applied"]]
        choices = ["invoke"] * len(idle) + ["apply"] * len(unapplied) + ["complete"] * len(in_flight)
        action = rng.choice(choices)
        if action == "invoke":
            name = rng.choice(idle)
            kind = rng.choice([WRITE, WRITE, READ, READ, DELETE])
            key = f"k{rng.randrange(keys)}"
            value = None
            if kind == WRITE:
                sequence += 1
                value = f"{name}:{sequence}"
            in_flight[name] = dict(index=index, kind=kind, key=key, value=value, invoke=clock, applied=False, result=None)
            index += 1
        elif action == "apply":
            op = in_flight[rng.choice(unapplied)]
            op["applied"] = True
            before = state.get(op["key"])
            if op["kind"] == WRITE:
                state[op["key"]] = op["value"]
            elif op["kind"] == DELETE:
                op["result"] = 0 if before is None else 1
                state[op["key"]] = None
            else:
                op["result"] = before
        else:
            name = rng.choice(list(in_flight))
            op = in_flight.pop(name)
            if op["applied"]:
                outcome = UNKNOWN if op["kind"] != READ and rng.random() < unknown_rate else OK
            elif op["kind"] == READ:
                outcome = FAIL
            else:
                outcome = rng.choice([FAIL, UNKNOWN]) if rng.random() < 2 * unknown_rate else None
                if outcome is None:  # not applied yet: cannot complete ok
                    in_flight[name] = op
                    continue
            result = op["result"] if outcome == OK else None
            done.append(Op(op["index"], name, op["kind"], op["key"], op["value"], op["invoke"], clock, outcome, result))
    for name, op in in_flight.items():
        # Still in flight at the end: applied or not, the client never learned.
        if op["kind"] != READ:
            done.append(Op(op["index"], name, op["kind"], op["key"], op["value"], op["invoke"], None, UNKNOWN))
    finals = [FinalRead("n1", key, [] if value is None else [value]) for key, value in sorted(state.items())]
    return History(ops=sorted(done, key=lambda op: op.index), finals=finals)


@st.composite
def model_histories(draw, max_steps: int = 120) -> History:
    seed = draw(st.integers(0, 2**32 - 1))
    steps = draw(st.integers(4, max_steps))
    processes = draw(st.integers(1, 5))
    keys = draw(st.integers(1, 3))
    unknown_rate = draw(st.sampled_from([0.0, 0.05, 0.2]))
    return simulate(random.Random(seed), steps, processes, keys, unknown_rate)


def with_op(history: History, replaced: Op) -> History:
    ops = [replaced if op.index == replaced.index else op for op in history.ops]
    return History(ops=ops, finals=history.finals)


def invalid(verdict) -> bool:
    return not verdict.valid and verdict.counts.get("undecided", 0) == 0


def linearizable_by_both(history: History) -> bool | None:
    """The verdict of the anomaly pre-check + search and of the search alone, which must agree."""
    quick = check_linearizable(history)
    searched = check_linearizable(history, anomalies_first=False)
    assert quick.counts["undecided"] == 0 and searched.counts["undecided"] == 0
    assert quick.valid == searched.valid, (quick.report(), searched.report())
    return quick.valid


@settings(max_examples=300, deadline=None)
@given(model_histories())
def test_every_checker_accepts_a_sequential_models_history(history: History) -> None:
    assert linearizable_by_both(history)
    for check in (check_survival, check_siblings, check_sessions):
        verdict = check(history)
        assert verdict.valid, verdict.report()


@settings(max_examples=100, deadline=None)
@given(model_histories())
def test_json_lines_round_trip(history: History) -> None:
    again = parse_history(list(history_lines(history)))
    assert again.ops == history.ops and again.finals == history.finals


def ok_reads(history: History) -> list[Op]:
    return [op for op in history.ops if op.kind == READ and op.outcome == OK]


@settings(max_examples=200, deadline=None)
@given(model_histories(), st.randoms(use_true_random=False))
def test_a_read_of_a_value_never_written_is_caught(history: History, rng: random.Random) -> None:
    reads = ok_reads(history)
    if not reads:
        return
    read = rng.choice(reads)
    mutated = with_op(history, replace(read, result="never:written"))
    assert linearizable_by_both(mutated) is False
    assert not check_siblings(mutated).valid


@settings(max_examples=300, deadline=None)
@given(model_histories(), st.randoms(use_true_random=False))
def test_stale_and_future_reads_are_caught(history: History, rng: random.Random) -> None:
    """Stale: the read follows an acknowledged write X that follows W, yet shows W.
    Future: the read completed before W was invoked, yet shows W."""
    by_key = history.by_key()
    candidates = []
    for read in ok_reads(history):
        ops = by_key[read.key]
        writes = [op for op in ops if op.kind == WRITE and op.outcome == OK]
        overwrites = [op for op in ops if op.kind != READ and op.outcome == OK]
        for write in writes:
            if write.value == read.result:
                continue
            if any(precedes(write, x) and precedes(x, read) for x in overwrites if x is not write):
                candidates.append((read, write))
            elif precedes(read, write):
                candidates.append((read, write))
    if not candidates:
        return
    read, write = rng.choice(candidates)
    assert linearizable_by_both(with_op(history, replace(read, result=write.value))) is False


@settings(max_examples=200, deadline=None)
@given(model_histories(), st.randoms(use_true_random=False))
def test_a_failed_write_that_was_read_is_caught(history: History, rng: random.Random) -> None:
    seen = {op.result for op in ok_reads(history)}
    writes = [op for op in history.ops if op.kind == WRITE and op.outcome == OK and op.value in seen]
    if not writes:
        return
    write = rng.choice(writes)
    mutated = with_op(history, replace(write, outcome=FAIL))
    assert linearizable_by_both(mutated) is False
    assert not check_siblings(mutated).valid


@settings(max_examples=300, deadline=None)
@given(model_histories(), st.randoms(use_true_random=False))
def test_an_acknowledged_write_missing_from_the_final_state_is_caught(history: History, rng: random.Random) -> None:
    by_key = history.by_key()
    candidates = []
    for final in history.finals:
        if not final.values:
            continue
        source = next(op for op in by_key[final.key] if op.value == final.values[0])
        deletes_after = [op for op in by_key[final.key] if op.kind == DELETE and op.may_take_effect() and not precedes(op, source)]
        if source.outcome == OK and not deletes_after:
            candidates.append(final)
    if not candidates:
        return
    lost = rng.choice(candidates)
    finals = [FinalRead(f.node, f.key, [] if f is lost else f.values) for f in history.finals]
    mutated = History(ops=history.ops, finals=finals)
    verdict = check_survival(mutated)
    assert not verdict.valid and verdict.counts["lost"] >= 1, verdict.report()
    assert linearizable_by_both(mutated) is False


@settings(max_examples=300, deadline=None)
@given(model_histories(), st.randoms(use_true_random=False))
def test_a_read_older_than_the_sessions_own_write_is_caught(history: History, rng: random.Random) -> None:
    by_key = history.by_key()
    candidates = []
    for read in ok_reads(history):
        for own in by_key[read.key]:
            if own.process == read.process and own.kind == WRITE and own.outcome == OK and precedes(own, read):
                older = [op for op in by_key[read.key] if op.kind == WRITE and op.outcome == OK and precedes(op, own)]
                candidates.extend((read, op) for op in older)
    if not candidates:
        return
    read, older = rng.choice(candidates)
    mutated = with_op(history, replace(read, result=older.value))
    verdict = check_sessions(mutated)
    assert not verdict.valid, verdict.report()
    assert linearizable_by_both(mutated) is False


def test_ten_thousand_operations_over_fifty_keys() -> None:
    """The size a single-node run produces: decided (not left undecided by the
    deadline), valid, and a single stale read planted in it is found."""
    history = simulate(random.Random(10), 34000, 4, 50, 0.05)
    assert len(history.ops) >= 10_000
    verdict = check_linearizable(history, timeout_s=120)
    assert verdict.valid, verdict.report()
    by_key = history.by_key()
    for read in ok_reads(history):
        ops = by_key[read.key]
        overwrites = [op for op in ops if op.kind != READ and op.outcome == OK]
        stale = [
            write for write in overwrites
            if write.kind == WRITE and write.value != read.result
            and any(precedes(write, x) and precedes(x, read) for x in overwrites if x is not write)
        ]
        if stale:
            mutated = with_op(history, replace(read, result=stale[-1].value))
            verdict = check_linearizable(mutated, timeout_s=120)
            assert invalid(verdict) and verdict.counts["not_linearizable"] == 1
            assert f'"index": {read.index},' in verdict.problems[0]
            # The search finds it too, without the anomaly pre-check.
            assert invalid(check_linearizable(mutated, timeout_s=120, anomalies_first=False))
            return
    raise AssertionError("no stale read to plant")
