"""harness/history/sessions.py on hand-made histories: read-your-writes and
monotonic reads, with concurrent writers, deletes and siblings."""

from __future__ import annotations

from harness.history.model import UNKNOWN
from harness.history.sessions import check_sessions

from ..history_ops import d, history, r, w


def valid(*ops) -> bool:
    return check_sessions(history(*ops)).valid


def test_read_your_writes() -> None:
    base = [w("b", "x", "0", 0, 1), w("a", "x", "1", 2, 3)]
    assert valid(*base, r("a", "x", "1", 4, 5))
    # Another client's write that did not precede ours may have replaced it.
    assert valid(*base, w("b", "x", "2", 2.5, 6), r("a", "x", "2", 4, 5))
    verdict = check_sessions(history(*base, r("a", "x", "0", 4, 5)))
    assert not verdict.valid and "read-your-writes" in verdict.problems[0]
    # Another client's stale read is no concern of this session's.
    assert valid(*base, r("b", "x", "0", 2.5, 5))


def test_read_your_writes_after_the_key_vanished() -> None:
    assert not valid(w("a", "x", "1", 0, 1), r("a", "x", None, 2, 3))
    assert valid(w("a", "x", "1", 0, 1), d("b", "x", 1.5, 1.8), r("a", "x", None, 2, 3))
    assert valid(w("a", "x", "1", 0, 1), d("b", "x", 1.5, 1.8, UNKNOWN), r("a", "x", None, 2, 3))
    # A delete answered before our write cannot explain it.
    assert not valid(d("b", "x", 0, 0.5), w("a", "x", "1", 1, 2), r("a", "x", None, 3, 4))
    # A delete invoked only after the read completed cannot either.
    assert not valid(w("a", "x", "1", 0, 1), r("a", "x", None, 2, 3), d("b", "x", 4, 5))


def test_own_delete_then_an_older_value() -> None:
    assert not valid(w("b", "x", "1", 0, 1), d("a", "x", 2, 3), r("a", "x", "1", 4, 5))
    assert valid(w("b", "x", "1", 0, 1), d("a", "x", 2, 3), w("b", "x", "2", 2.5, 3.5), r("a", "x", "2", 4, 5))


def test_monotonic_reads() -> None:
    writes = [w("b", "x", "1", 0, 1), w("b", "x", "2", 2, 3)]
    assert valid(*writes, r("a", "x", "1", 1.5, 1.8), r("a", "x", "2", 4, 5))
    verdict = check_sessions(history(*writes, r("a", "x", "2", 4, 5), r("a", "x", "1", 6, 7)))
    assert not verdict.valid and "monotonic reads" in verdict.problems[0]
    # Concurrent writes may be seen in either order, by different sessions.
    concurrent = [w("b", "x", "1", 0, 3), w("c", "x", "2", 1, 4)]
    assert valid(*concurrent, r("a", "x", "2", 5, 6), r("a", "x", "1", 7, 8), r("d", "x", "1", 5, 6))


def test_monotonic_reads_with_siblings() -> None:
    ops = [w("b", "x", "1", 0, 1), w("c", "x", "2", 0.5, 1.5), w("c", "x", "3", 2, 3)]
    # Both siblings seen, then the one that replaced them.
    assert valid(*ops, r("a", "x", ["1", "2"], 1.6, 1.8), r("a", "x", ["3"], 4, 5))
    # Both seen, then only one of them: fine when they overlapped in time (1 may have replaced 2)...
    assert valid(*ops[:2], r("a", "x", ["1", "2"], 1.6, 1.8), r("a", "x", ["1"], 4, 5))
    # ... not when 1 was acknowledged before 2 started: 2 vanished for this session.
    sequential = [w("b", "x", "1", 0, 1), w("c", "x", "2", 2, 3)]
    assert not valid(*sequential, r("a", "x", ["1", "2"], 4, 5), r("a", "x", ["1"], 6, 7))
