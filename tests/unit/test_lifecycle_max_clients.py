"""--max-clients stays below the open-file limit: the soft limit is raised
toward the hard one when allowed, and max-clients is clamped (with room for
listeners and files) when it cannot be."""

from __future__ import annotations

import resource

from trio_kv.server import control


def _limits(monkeypatch, soft: int, hard: int, *, can_raise: bool) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []

    def setrlimit(kind, limits):
        assert kind == resource.RLIMIT_NOFILE
        if not can_raise:
            raise ValueError("not allowed")
        calls.append(limits)

    monkeypatch.setattr(control.resource, "getrlimit", lambda kind: (soft, hard))
    monkeypatch.setattr(control.resource, "setrlimit", setrlimit)
    return calls


def test_raises_the_soft_limit_when_the_hard_one_allows(monkeypatch):
    calls = _limits(monkeypatch, 1024, 1_048_576, can_raise=True)
    assert control.clamp_max_clients(10_000) == 10_000
    assert calls == [(10_000 + control.RESERVED_FDS, 1_048_576)]


def test_clamps_below_the_hard_limit(monkeypatch):
    calls = _limits(monkeypatch, 256, 4096, can_raise=True)
    assert control.clamp_max_clients(10_000) == 4096 - control.RESERVED_FDS
    assert calls == [(4096, 4096)]


def test_clamps_below_the_soft_limit_when_it_cannot_be_raised(monkeypatch):
    _limits(monkeypatch, 256, 4096, can_raise=False)
    assert control.clamp_max_clients(10_000) == 256 - control.RESERVED_FDS


def test_leaves_a_small_setting_alone(monkeypatch):
    calls = _limits(monkeypatch, 1024, 4096, can_raise=True)
    assert control.clamp_max_clients(100) == 100
    assert calls == []
