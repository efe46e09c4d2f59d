"""harness/history/register_anomalies.py: the definite anomalies found
without a search, and the look-alikes that are not anomalies."""

from __future__ import annotations

from harness.history.model import FAIL, UNKNOWN
from harness.history.register_anomalies import register_anomalies

from ..history_ops import d, history, r, w


def kinds(*ops) -> list[str]:
    return [problem.split(":")[0] for problem in register_anomalies(history(*ops).ops)]


def test_invented_and_failed_values() -> None:
    assert kinds(r("b", "x", "9", 0, 1)) == ["invented"]
    assert kinds(w("a", "x", "1", 0, 1, FAIL), r("b", "x", "1", 2, 3)) == ["invented"]
    assert kinds(w("a", "x", "1", 0, 1, UNKNOWN), r("b", "x", "1", 2, 3)) == []


def test_future_read() -> None:
    assert kinds(r("b", "x", "1", 0, 1), w("a", "x", "1", 2, 3)) == ["future read"]
    assert kinds(r("b", "x", "1", 0, 2), w("a", "x", "1", 2, 3)) == []


def test_stale_read() -> None:
    assert kinds(w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3), r("b", "x", "1", 4, 5)) == ["stale read"]
    assert kinds(w("a", "x", "1", 0, 1), d("a", "x", 2, 3), r("b", "x", "1", 4, 5)) == ["stale read"]
    # The replacing write overlapped the read, or the first write: either order is possible.
    assert kinds(w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 4.5), r("b", "x", "1", 4, 5)) == []
    assert kinds(w("a", "x", "1", 0, 2.5), w("a", "x", "2", 2, 3), r("b", "x", "1", 4, 5)) == []
    # An unknown replacement may never have happened; an unknown original may have happened late.
    assert kinds(w("a", "x", "1", 0, 1), w("a", "x", "2", 2, 3, UNKNOWN), r("b", "x", "1", 4, 5)) == []
    assert kinds(w("a", "x", "1", 0, 1, UNKNOWN), w("a", "x", "2", 2, 3), r("b", "x", "1", 4, 5)) == []


def test_vanished_write() -> None:
    assert kinds(w("a", "x", "1", 0, 1), r("b", "x", None, 2, 3)) == ["vanished write"]
    assert kinds(w("a", "x", "1", 0, 1), d("c", "x", 1.5, 4, UNKNOWN), r("b", "x", None, 2, 3)) == []
    assert kinds(d("c", "x", 0, 0.5), w("a", "x", "1", 1, 2), r("b", "x", None, 3, 4)) == ["vanished write"]
    assert kinds(w("a", "x", "1", 0, 1), r("b", "x", None, 2, 3), d("c", "x", 4, 5)) == ["vanished write"]
    assert kinds(w("a", "x", "1", 0, 2), r("b", "x", None, 1, 3)) == []
