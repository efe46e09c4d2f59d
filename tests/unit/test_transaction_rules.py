"""The rules of MULTI/WATCH as ``commands/transactions.py`` states them,
on a ``Transaction`` alone (a fake watch registry, no engine), and its
Rule 1: nothing outside that file writes a transaction's state."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.table import CommandSpec
from trio_kv.commands.transactions import (
    EXEC_ABORTED,
    REFUSED_IN_MULTI,
    WATCH_FAILED,
    ExecQueue,
    Transaction,
)
from trio_kv.config import Config
from trio_kv.protocol.replies import OK, QUEUED, Error

PACKAGE = Path(__file__).resolve().parents[2] / "trio_kv"


class FakeRegistry:
    """The keyspace's side of WATCH: who watches what, and which keys are
    stored but already expired."""

    def __init__(self) -> None:
        self.watchers: dict[bytes, set[Transaction]] = {}
        self.expired: set[bytes] = set()

    def watch(self, watcher: Transaction, key: bytes) -> bool:
        self.watchers.setdefault(key, set()).add(watcher)
        return key in self.expired

    def unwatch(self, watcher: Transaction, keys: Iterable[bytes]) -> None:
        for key in keys:
            self.watchers[key].discard(watcher)

    def stored_but_expired(self, key: bytes) -> bool:
        return key in self.expired

    def watching(self) -> set[bytes]:
        return {key for key, watchers in self.watchers.items() if watchers}


def spec(name: str) -> CommandSpec:
    found = REDIS_COMMANDS.get(name)
    assert found is not None
    return found


def test_queue_refusals_fail_the_transaction_and_exec_aborts() -> None:
    transaction = Transaction(FakeRegistry())
    config = Config(multi_max_queued_commands=2)
    assert transaction.admit(spec("set"), [b"SET", b"k", b"v"], config) is None  # outside MULTI: runs
    assert transaction.begin() == OK
    assert transaction.begin() == Error("ERR MULTI calls can not be nested")
    assert transaction.admit(spec("exec"), [b"EXEC"], config) is None  # multi-control: runs now
    assert transaction.admit(spec("set"), [b"SET", b"k", b"v"], config) is QUEUED
    assert transaction.admit(spec("unwatch"), [b"UNWATCH"], config) is QUEUED
    assert not transaction.failed
    full = transaction.admit(spec("get"), [b"GET", b"k"], config)
    assert isinstance(full, Error) and "multi-max-queued-commands 2" in full.message
    assert transaction.failed and transaction.queued is not None and len(transaction.queued) == 2
    assert transaction.commit() == EXEC_ABORTED
    assert transaction.queued is None and not transaction.failed and transaction.queued_bytes == 0


def test_no_multi_commands_are_refused_and_lookup_errors_fail() -> None:
    transaction = Transaction(FakeRegistry())
    transaction.fail()  # outside MULTI: nothing to fail
    assert not transaction.failed
    transaction.begin()
    assert transaction.admit(spec("save"), [b"SAVE"], Config()) is REFUSED_IN_MULTI
    assert transaction.failed
    transaction.discard()
    transaction.begin()
    transaction.fail()  # an unknown command, NOAUTH
    assert transaction.commit() == EXEC_ABORTED


def test_a_refused_exec_discards_the_transaction_other_refusals_fail_it() -> None:
    registry = FakeRegistry()
    transaction = Transaction(registry)
    assert transaction.watch([b"w"]) == OK
    oom = Error("OOM command not allowed when used memory > 'maxmemory'.")
    assert transaction.refuse(spec("exec"), oom) is oom  # not in MULTI: a plain refusal
    transaction.begin()
    assert transaction.refuse(spec("set"), oom) is oom and transaction.failed
    assert transaction.refuse(spec("exec"), oom) == Error(f"EXECABORT Transaction discarded because of: {oom.message}")
    assert transaction.queued is None and transaction.watched == {} and registry.watching() == set()


def test_an_exec_is_admitted_as_what_it_queued() -> None:
    transaction = Transaction(FakeRegistry())
    exec_ = [b"EXEC"]
    assert transaction.writes(spec("exec"), exec_) and not transaction.denies_oom(spec("exec"))  # outside MULTI
    transaction.begin()
    assert not transaction.writes(spec("exec"), exec_) and not transaction.denies_oom(spec("exec"))
    transaction.admit(spec("get"), [b"GET", b"k"], Config())
    transaction.admit(spec("config"), [b"CONFIG", b"GET", b"port"], Config())  # a read subcommand
    assert not transaction.writes(spec("exec"), exec_)
    transaction.admit(spec("set"), [b"SET", b"k", b"v"], Config())
    assert transaction.writes(spec("exec"), exec_) and transaction.denies_oom(spec("exec"))
    assert not transaction.writes(spec("get"), [b"GET", b"k"]) and transaction.writes(spec("set"), [b"SET", b"k", b"v"])


def test_exec_hands_the_queue_to_the_engine_and_forgets_the_watches() -> None:
    registry = FakeRegistry()
    transaction = Transaction(registry)
    transaction.watch([b"a", b"b"])
    transaction.begin()
    assert transaction.watch([b"c"]) == Error("ERR WATCH inside MULTI is not allowed")
    transaction.admit(spec("set"), [b"SET", b"a", b"1"], Config())
    work = transaction.commit()
    assert isinstance(work, ExecQueue) and work.commands == [(spec("set"), [b"SET", b"a", b"1"])]
    assert registry.watching() == set() and transaction.watched == {} and transaction.queued is None
    assert transaction.commit() == Error("ERR EXEC without MULTI")


def test_watch_rules() -> None:
    registry = FakeRegistry()
    registry.expired.add(b"stale")
    transaction = Transaction(registry)
    transaction.watch([b"stale", b"live", b"live"])
    assert transaction.watched == {b"stale": True, b"live": False}
    # Deleting a key that had already expired when watched changes nothing visible ...
    registry.expired.discard(b"stale")
    transaction.key_touched(b"stale", present=False)
    assert not transaction.dirty and transaction.watched[b"stale"] is False
    transaction.begin()
    assert transaction.commit() is not WATCH_FAILED
    # ... but writing it does.
    transaction.watch([b"stale"])
    transaction.key_touched(b"stale", present=True)
    transaction.begin()
    assert transaction.commit() is WATCH_FAILED and not transaction.dirty
    # A key live when watched whose time ran out before EXEC breaks the watch.
    registry.expired.clear()
    transaction.watch([b"k"])
    registry.expired.add(b"k")
    transaction.begin()
    assert transaction.commit() is WATCH_FAILED
    # DISCARD and UNWATCH forget.
    transaction.watch([b"k"])
    transaction.key_touched(b"k", present=True)
    transaction.unwatch()
    assert not transaction.dirty and registry.watching() == set()


_STATE = re.compile(r"\.(transaction\.\w+|multi|multi_failed|multi_queued_bytes|watched|dirty_cas|dirty|queued|queued_bytes)$")


def _written(tree: ast.AST) -> list[str]:
    """Attribute targets of assignments that are not ``self.<name>``."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            while isinstance(target, ast.Subscript):
                target = target.value
            if isinstance(target, ast.Attribute) and not (
                isinstance(target.value, ast.Name) and target.value.id == "self"
            ):
                found.append(ast.unparse(target))
    return found


def test_rule_1_nothing_outside_transactions_writes_transaction_state() -> None:
    owner = PACKAGE / "commands" / "transactions.py"
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == owner:
            continue
        for target in _written(ast.parse(path.read_text(), str(path))):
            if _STATE.search(target):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}: {target}")
    assert offenders == []
