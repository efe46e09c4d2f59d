"""harness/history/recorder.py, jsonl.py and siblings_reply.py: what a run
records, how it is saved, and how values are found in a TKV.SIBLINGS reply."""

from __future__ import annotations

import threading

import pytest

from harness.history.jsonl import HistoryFormatError, dump_history, load_history, op_line, parse_history
from harness.history.model import OK, READ, UNKNOWN, WRITE, FaultEvent, FinalRead
from harness.history.recorder import Recorder
from harness.history.siblings_reply import sibling_values


def test_indexes_follow_invocation_order_across_threads() -> None:
    recorder = Recorder()

    def client(name: str) -> None:
        for sequence in range(200):
            pending = recorder.invoke(name, WRITE, "x", f"{name}:{sequence}")
            recorder.complete(pending, OK)

    threads = [threading.Thread(target=client, args=(f"c{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    ops = recorder.history().ops
    assert [op.index for op in ops] == list(range(800))
    assert all(a.invoke_s <= b.invoke_s for a, b in zip(ops, ops[1:]))
    assert all(op.invoke_s <= op.complete_s for op in ops)


def test_operations_still_pending_are_unknown() -> None:
    recorder = Recorder()
    done = recorder.invoke("c0", READ, "x")
    recorder.invoke("c1", WRITE, "x", "c1:1")
    recorder.complete(done, OK, "v")
    first, second = recorder.history({"seed": 3}).ops
    assert (first.outcome, first.result) == (OK, "v")
    assert (second.outcome, second.complete_s, second.value) == (UNKNOWN, None, "c1:1")


def test_an_unknown_outcome_keeps_no_result() -> None:
    recorder = Recorder()
    pending = recorder.invoke("c0", READ, "x")
    op = recorder.complete(pending, UNKNOWN, "late", error="TimeoutError")
    assert op.result is None and op.error == "TimeoutError"


def test_json_lines_round_trip(tmp_path) -> None:
    recorder = Recorder()
    recorder.complete(recorder.invoke("c0", READ, "x", node="127.0.0.1:7001"), OK, ["c1:1", "c2:5"])
    recorder.invoke("c1", WRITE, "x", "c1:2")
    recorder.fault("kill -9", 0.5, 0.7)
    history = recorder.history({"nodes": ["127.0.0.1:7001"]})
    history.finals = [FinalRead("127.0.0.1:7001", "x", ["c1:2"]), FinalRead("127.0.0.1:7002", "x", None, "down")]
    path = tmp_path / "run.jsonl"
    dump_history(history, path)
    again = load_history(path)
    assert again.ops == history.ops and again.finals == history.finals and again.meta == history.meta
    assert again.faults == [FaultEvent("kill -9", 0.5, 0.7)]
    assert op_line(history.ops[0]) in path.read_text().splitlines()


@pytest.mark.parametrize(
    "line",
    [
        '{"type": "nonsense"}',
        '{"no type": 1}',
        "not json",
        '{"type": "op", "index": 0, "process": "c", "kind": "write", "key": "x", "value": "1", '
        '"invoke_s": 0, "complete_s": 1, "outcome": "failed"}',
        '{"type": "op", "index": 0, "process": "c", "kind": "write", "key": "x", "surprise": 1}',
    ],
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(HistoryFormatError):
        parse_history([line])


def test_duplicate_indexes_are_refused() -> None:
    line = '{"type": "op", "index": 0, "process": "c", "kind": "read", "key": "x", "value": null, "invoke_s": 0, "complete_s": 1, "outcome": "ok"}'
    with pytest.raises(HistoryFormatError):
        parse_history([line, line])


def test_sibling_values_whatever_the_nesting() -> None:
    assert sibling_values(None) == []
    assert sibling_values([]) == []
    assert sibling_values([b"c1:2", b"c3:4"]) == ["c1:2", "c3:4"]
    context = b"g2wAAAABaAJkAAFhYQFq"  # an opaque base64 context: never a value
    assert sibling_values([context, [b"c1:2", b"c3:4"]]) == ["c1:2", "c3:4"]
    assert sibling_values({b"context": b"00ff", b"values": [b"c9:1"]}) == ["c9:1"]


def test_the_checkers_import_neither_trio_nor_redis() -> None:
    import subprocess
    import sys

    from ..conftest import REPO

    code = (
        "import sys; sys.modules['trio'] = None; sys.modules['redis'] = None\n"
        "import harness.history.checks, harness.history.jsonl, harness.history.siblings_reply\n"
        "import harness.history.agreement\n"
        "from harness.history.cli import main\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
