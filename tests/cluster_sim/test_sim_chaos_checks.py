"""The chaos run's checks (``chaos_checks``) on hand-made runs: each kind of
wrong outcome is reported, and what the design allows is not."""

from __future__ import annotations

import dataclasses

from .chaos_checks import problems
from .chaos_run import KEYS, ChaosRun, Final, Record
from .schedule import draw

NODES = ["10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"]


def _run(records: list[Record], finals: dict[str, list[str]], *, appendfsync: str = "always",
         write_context: str = "local", offsets: tuple[int, ...] = (0, 0, 0)) -> ChaosRun:
    """A run with ``records`` whose final state is ``finals`` (key: values)
    on every node (other keys absent)."""
    schedule = dataclasses.replace(
        draw(1, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]), appendfsync=appendfsync, write_context=write_context,
        clock_offsets_ms=offsets,
    )
    run = ChaosRun(schedule, records=records, converged_seconds=1.0)
    for node in NODES:
        for key in KEYS:
            values = finals.get(key, [])
            winner = max(values) if values else None
            run.finals.append(Final(node, key, sorted(values), [f"v={value}" for value in sorted(values)], winner))
            run.all_reads[key] = winner
    return run


def _op(index: int, process: str, command: str, key: str, argument: str | None, at: float, *,
        outcome: str = "ok", reply: object = None, level: str = "QUORUM", node: str = "10.0.0.1:7001#1") -> Record:
    if reply is None and outcome == "ok":
        reply = {"SET": "OK", "DEL": 1, "APPEND": 5, "INCR": 1}.get(command)
    return Record(index, process, command, key, argument, level, [node], at, at + 0.5, outcome, reply)


def test_a_correct_run_has_no_problems() -> None:
    records = [
        _op(0, "c0", "SET", "r:0", "c0:0", 0.0),
        _op(1, "c1", "SET", "r:0", "c1:0", 1.0),
        _op(2, "c0", "GET", "r:0", None, 2.0, reply="c1:0"),
        _op(3, "c0", "APPEND", "a:0", "c0:3", 3.0),
        _op(4, "c1", "INCR", "n:0", None, 3.0, reply=1),
    ]
    assert problems(_run(records, {"r:0": ["c1:0"], "a:0": ["c0:3;"], "n:0": ["1"]})) == []


def test_a_lost_acknowledged_write_is_reported() -> None:
    found = problems(_run([_op(0, "c0", "SET", "r:0", "c0:0", 0.0)], {}))
    assert len(found) == 1 and "lost write" in found[0]


def test_a_lost_append_token_is_reported() -> None:
    records = [_op(0, "c0", "APPEND", "a:0", "c0:0", 0.0), _op(1, "c0", "APPEND", "a:0", "c0:1", 1.0)]
    # The later token is gone and nothing that came after it is there.
    found = problems(_run(records, {"a:0": ["c0:0;"]}))
    assert len(found) == 1 and "lost write" in found[0] and "c0:1" in found[0]


def test_a_write_acknowledged_at_one_may_be_lost_only_under_everysec() -> None:
    records = [_op(0, "c0", "SET", "r:0", "c0:0", 0.0, level="ONE")]
    assert problems(_run(records, {}, appendfsync="everysec")) == []
    assert problems(_run(records, {}, appendfsync="always"))


def test_replicas_that_disagree_are_reported() -> None:
    run = _run([], {"r:0": ["c0:0"]})
    run.records.append(_op(0, "c0", "SET", "r:0", "c0:0", 0.0))
    run.finals[0] = Final(NODES[0], "r:0", [], [])
    assert any("replicas disagree" in problem for problem in problems(run))
    run.converged_seconds = None
    assert any("did not agree" in problem for problem in problems(run))


def test_a_quorum_read_that_misses_the_sessions_own_write_is_reported() -> None:
    records = [
        _op(0, "c0", "SET", "r:0", "c0:0", 0.0),
        _op(1, "c0", "GET", "r:0", None, 1.0, reply=None, outcome="ok"),
    ]
    records[1] = dataclasses.replace(records[1], reply=None)
    found = problems(_run(records, {"r:0": ["c0:0"]}))
    assert len(found) == 1 and "read-your-writes" in found[0]
    # Not promised: a read at ONE, skewed clocks with the local write context, everysec.
    at_one = [records[0], dataclasses.replace(records[1], level="ONE")]
    assert problems(_run(at_one, {"r:0": ["c0:0"]})) == []
    assert problems(_run(records, {"r:0": ["c0:0"]}, offsets=(0, 50, 0))) == []
    assert problems(_run(records, {"r:0": ["c0:0"]}, appendfsync="everysec")) == []
    assert problems(_run(records, {"r:0": ["c0:0"]}, offsets=(0, 50, 0), write_context="read"))


def test_more_siblings_than_coordinator_actors_are_reported() -> None:
    records = [_op(0, "c0", "SET", "r:0", "c0:0", 0.0), _op(1, "c1", "SET", "r:0", "c1:1", 1.0)]
    found = problems(_run(records, {"r:0": ["c0:0", "c1:1"]}))
    assert len(found) == 3 and all("2 siblings but 1 coordinator actors and 0" in problem for problem in found)
    # Two lives of one node are two actors.
    records[1] = dataclasses.replace(records[1], nodes=["10.0.0.1:7001#2"])
    assert problems(_run(records, {"r:0": ["c0:0", "c1:1"]})) == []
    # A TKV.PUTCTX with a context that missed a sibling leaves it.
    records[1] = dataclasses.replace(records[1], command="PUTCTX", nodes=["10.0.0.1:7001#1"])
    assert problems(_run(records, {"r:0": ["c0:0", "c1:1"]})) == []


def test_a_value_nobody_wrote_is_reported() -> None:
    found = problems(_run([], {"r:0": ["c9:9"]}))
    assert found and "never written" in found[0]


def test_a_counter_above_its_increments_is_reported() -> None:
    records = [_op(0, "c0", "INCR", "n:0", None, 0.0, reply=1), _op(1, "c1", "INCR", "n:0", None, 1.0, reply=3)]
    found = problems(_run(records, {"n:0": ["3"]}))
    assert any("INCR answered 3 after at most 2" in problem for problem in found)
    assert sum("above the 2 INCRs" in problem for problem in found) == 3


def test_a_value_shown_more_often_than_it_was_sent_is_reported() -> None:
    records = [_op(0, "c0", "SET", "r:0", "c0:0", 0.0)]
    found = problems(_run(records, {"r:0": ["c0:0", "c0:0"]}))
    assert sum("shown more often than it was sent" in problem for problem in found) == 3
    # Sent twice (a retry through another coordinator): two siblings of one value.
    records[0] = dataclasses.replace(records[0], nodes=["10.0.0.1:7001#1", "10.0.0.2:7001#1"], outcome="unknown")
    assert problems(_run(records, {"r:0": ["c0:0", "c0:0"]})) == []


def test_a_request_left_unanswered_is_reported() -> None:
    records = [dataclasses.replace(_op(0, "c0", "SET", "r:0", "c0:0", 0.0, outcome="unknown"), error="timeout")]
    found = problems(_run(records, {}))
    assert len(found) == 1 and "a hang" in found[0]


def test_a_read_at_all_that_differs_from_the_replicas_is_reported() -> None:
    run = _run([_op(0, "c0", "SET", "r:0", "c0:0", 0.0)], {"r:0": ["c0:0"]})
    run.all_reads["r:0"] = None
    found = problems(run)
    assert len(found) == 3 and all("GET r:0 at ALL answered None" in problem for problem in found)
