"""The command table's own rules (``commands/table.py``): a spec is checked
when it is built, so a wrong table fails at import; what the engine acts on
is typed; a subcommand runs under the lock it declares."""

from __future__ import annotations

import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from trio_kv.commands import functions, runtime_config
from trio_kv.commands.container import Container, Subcommand
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.session import Session
from trio_kv.commands.table import (
    REDIS_FLAGS,
    CommandSpec,
    CommandTable,
    InMulti,
    Lock,
)
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.protocol.replies import OK, Error
from trio_kv.store.engine import Job, run_batch

from .redis_session import make_session, run


def _handler(session: Session, args: list[bytes]) -> object:
    return OK


def _spec(**fields: Any) -> CommandSpec:
    """A valid spec, with ``fields`` changed."""
    values: dict[str, Any] = dict(
        name="probe", arity=1, lock=Lock.READ, flags=("readonly", "fast"), since="1.0.0", group="generic",
        handler=_handler, summary="A probe.",
    )
    values.update(fields)
    return CommandSpec(**values)


def _subcommand(**fields: Any) -> Subcommand:
    values: dict[str, Any] = dict(
        name="peek", arity=2, lock=Lock.READ, flags=("loading",), usage="PEEK", summary="A probe.",
        handler=_handler, since="7.0.0",
    )
    values.update(fields)
    return Subcommand(**values)


def test_a_valid_spec_builds_with_its_derived_fields() -> None:
    spec = _spec(lock=Lock.WRITE, flags=("write", "denyoom"), keys=(1, -1, 2), counter="sets")
    assert (spec.is_write, spec.no_lock, spec.denies_oom, spec.is_fast, spec.needs_auth) == (
        True, False, True, False, True,
    )
    assert (spec.first_key, spec.last_key, spec.key_step) == (1, -1, 2)
    assert (spec.runs_in_multi, spec.refused_in_multi) == (False, False)


@pytest.mark.parametrize("flags", [("wrtie",), ("readonly", "fsat"), ("READONLY",), ("@dangerous",), ("stats",)])
def test_a_misspelled_or_unknown_flag_fails_when_built(flags: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="unknown Redis flag"):
        _spec(flags=flags)
    with pytest.raises(ValueError, match="unknown Redis flag"):
        _subcommand(flags=flags)


def test_a_misspelled_flag_fails_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command module with a typo in a flag cannot even be imported."""
    (tmp_path / "typo_commands.py").write_text(
        textwrap.dedent(
            """
            from trio_kv.commands.table import CommandSpec, Lock

            SPECS = [
                CommandSpec(
                    name="typo", arity=1, lock=Lock.WRITE, flags=("wirte",), since="1.0.0", group="string",
                    handler=print, summary="A typo.",
                ),
            ]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"typo: unknown Redis flag\(s\) \['wirte'\]"):
        __import__("typo_commands")


@pytest.mark.parametrize("categories", [("dangerus",), ("@dangerous",), ("strings",)])
def test_an_unknown_acl_category_fails(categories: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="unknown ACL categor"):
        _spec(categories=categories)
    with pytest.raises(ValueError, match="unknown ACL categor"):
        _subcommand(categories=categories)


@pytest.mark.parametrize("lock", ["write", "read", None, True])
def test_a_lock_that_is_not_a_lock_kind_fails(lock: object) -> None:
    with pytest.raises(ValueError, match="lock must be a Lock"):
        _spec(lock=lock)
    with pytest.raises(ValueError, match="lock must be a Lock"):
        _subcommand(lock=lock)


@pytest.mark.parametrize("in_multi", ["queue", "run", None, "multi-control"])
def test_a_multi_behaviour_that_is_not_a_kind_fails(in_multi: object) -> None:
    with pytest.raises(ValueError, match="in_multi must be an InMulti"):
        _spec(in_multi=in_multi)


def test_a_flags_string_instead_of_a_tuple_fails() -> None:
    with pytest.raises(ValueError, match="tuples"):
        _spec(flags="readonly fast")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lock": Lock.READ, "flags": ("write",)}, "write flag but not the write lock"),
        ({"lock": Lock.NONE, "flags": ("write",)}, "write flag but not the write lock"),
        ({"lock": Lock.WRITE, "flags": ("readonly",)}, "readonly flag but the write lock"),
        ({"flags": ("no_multi",)}, "no_multi"),
        ({"flags": (), "in_multi": InMulti.REFUSE}, "no_multi"),
        ({"flags": ("fast", "fast")}, "listed twice"),
        ({"group": "strings"}, "unknown group"),
        ({"counter": "hits"}, "unknown counter"),
        ({"since": "7.0"}, "since must be a version"),
        ({"since": ""}, "since must be a version"),
        ({"keys": (1, 1)}, "keys is"),
    ],
)
def test_fields_that_contradict_each_other_fail(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**fields)


def test_a_writing_subcommand_needs_the_write_lock() -> None:
    with pytest.raises(ValueError, match="write flag but not the write lock"):
        _subcommand(flags=("write",), lock=Lock.READ)
    assert _subcommand(flags=("write",), lock=Lock.WRITE).lock is Lock.WRITE


def test_the_tables_hold_only_redis_flags_and_typed_behaviour() -> None:
    for table in (REDIS_COMMANDS, TEXT_COMMANDS):
        for spec in table.specs.values():
            assert set(spec.flags) <= set(REDIS_FLAGS), spec.name
            assert isinstance(spec.lock, Lock) and isinstance(spec.in_multi, InMulti), spec.name
    assert REDIS_COMMANDS.get("save").lock is Lock.NONE
    assert REDIS_COMMANDS.get("save").in_multi is InMulti.REFUSE
    assert REDIS_COMMANDS.get("exec").lock is Lock.WRITE
    assert REDIS_COMMANDS.get("hello").switches_protocol and REDIS_COMMANDS.get("info").reads_stats
    assert REDIS_COMMANDS.get("flushall").may_slice and not REDIS_COMMANDS.get("get").may_slice


# The four commands COMMAND DOCS has never shown a ``since`` for: the pinned
# golden output (tests/integration/golden) was captured without one. trio_kv's
# own client commands (TKV.*, cluster mode; KRANGE, the sorted key index) are
# in no Redis version either.
NO_SINCE = {"save", "bgsave", "bgrewriteaof", "lastsave", "krange"}


def test_every_redis_command_and_subcommand_has_a_since() -> None:
    for spec in REDIS_COMMANDS.specs.values():
        if spec.name in NO_SINCE or spec.name.startswith("tkv."):
            assert spec.since is None, spec.name
        else:
            assert spec.since is not None, spec.name
        for entry in getattr(spec.handler, "subcommands", {}).values():
            assert entry.since, f"{spec.name}|{entry.name}"


def test_command_docs_shows_the_specs_since() -> None:
    session, _ = make_session()
    docs = run(session, "COMMAND DOCS get save client")[0]
    fields = {name: dict(value.pairs) for name, value in docs.pairs}
    assert fields[b"get"][b"since"] == b"1.0.0"
    assert b"since" not in fields[b"save"]
    assert fields[b"client"][b"since"] == b"2.4.0"


def test_lock_for_picks_the_subcommand_any_case() -> None:
    config = REDIS_COMMANDS.get("config")
    function = REDIS_COMMANDS.get("function")
    assert config.lock_for([b"CONFIG", b"get", b"*"]) is Lock.READ
    assert function.lock_for([b"FUNCTION", b"FLUSH"]) is Lock.WRITE
    assert function.lock_for([b"function", b"flush"]) is Lock.WRITE
    assert function.lock_for([b"FUNCTION", b"LIST"]) is Lock.READ
    # An unknown subcommand (answered with an error) takes the container's.
    assert function.lock_for([b"FUNCTION", b"NOPE"]) is function.lock is Lock.READ
    assert REDIS_COMMANDS.get("get").lock_for([b"GET", b"flush"]) is Lock.READ
    for spec in REDIS_COMMANDS.specs.values():
        for name, entry in getattr(spec.handler, "subcommands", {}).items():
            assert spec.lock_for([spec.name.encode(), name.upper().encode()]) is entry.lock


# --- the lock a subcommand runs under, seen from inside the engine ----------


def _lock_state(session: Session) -> str:
    """Which store lock is held right now: "read", "write" or "none"."""
    state = session.store.lock.statistics()
    if state["writer_active"]:
        return "write"
    return "read" if state["readers_active"] else "none"


def _probe_table(seen: list[tuple[str, str]]) -> CommandTable:
    def probe(name: str) -> Any:
        def handler(session: Session, args: list[bytes]) -> object:
            seen.append((name, _lock_state(session)))
            return OK

        return handler

    container = Container(
        "probe",
        [
            _subcommand(name="reads", lock=Lock.READ, handler=probe("reads")),
            _subcommand(name="writes", lock=Lock.WRITE, flags=("write",), handler=probe("writes")),
            _subcommand(name="unlocked", lock=Lock.NONE, handler=probe("unlocked")),
        ],
        bare=probe("bare"),
    )
    spec = _spec(name="probe", arity=-1, lock=Lock.READ, flags=(), handler=container)
    return CommandTable([spec], lambda args: Error("ERR unknown"), lambda spec: Error("ERR arity"))


def test_each_subcommand_runs_under_its_declared_lock() -> None:
    seen: list[tuple[str, str]] = []
    table = _probe_table(seen)
    session, _ = make_session()
    requests = [
        [b"PROBE", b"writes"], [b"PROBE", b"READS"], [b"probe", b"unlocked"], [b"PROBE"], [b"PROBE", b"WRITES"],
    ]
    job = Job(session, table, requests, time.perf_counter())
    run_batch(session.store, [job])
    assert job.replies == [OK] * 5
    assert seen == [
        ("writes", "write"), ("reads", "read"), ("unlocked", "none"), ("bare", "read"), ("writes", "write"),
    ]
    assert _lock_state(session) == "none"


def _spy_on(monkeypatch: pytest.MonkeyPatch, container: Container, name: str) -> list[str]:
    seen: list[str] = []
    entry = container.subcommands[name]
    original = entry.handler

    def spy(session: Session, args: list[bytes]) -> object:
        seen.append(_lock_state(session))
        return original(session, args)

    monkeypatch.setitem(container.subcommands, name, replace(entry, handler=spy))
    return seen


def test_config_get_runs_under_the_read_lock_and_function_flush_under_the_write_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config_get = _spy_on(monkeypatch, runtime_config.CONFIG, "get")
    function_flush = _spy_on(monkeypatch, functions.FUNCTION, "flush")
    session, _ = make_session()
    replies = run(session, "FUNCTION FLUSH", "CONFIG GET maxmemory", "function flush sync", "GET k")
    assert replies[0] == OK and replies[2] == OK and not isinstance(replies[1], Error)
    assert config_get == ["read"]
    assert function_flush == ["write", "write"]
