"""The contract between a command family and the store (commands/values.py):
a family the store has never heard of is stored, typed, counted, renamed,
emitted, logged, snapshotted and replayed with no change to ``store/``;
the WRONGTYPE rule holds in one place for every family."""

from __future__ import annotations

import struct
import time
from typing import ClassVar

import pytest

from trio_kv.commands import redis
from trio_kv.commands.hash_value import HashUpdate, HashValue
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.values import TypedValue, ValueUpdate, WrongType, value_types
from trio_kv.commands.wire import LINE
from trio_kv.protocol.replies import Error
from trio_kv.protocol.text import encode_text_reply
from trio_kv.store.durability import apply
from trio_kv.store.durability.records import FRAME_BYTES, decode_record, encode_record
from trio_kv.store.durability.snapshot import snapshot_chunk
from trio_kv.store.engine import Job, run_batch
from trio_kv.store.keyspace import Keyspace

from ..effect_recorder import EffectRecorder
from .redis_session import make_session, run


class MemberUpdate(ValueUpdate):
    """A toy family's update: members added and removed."""

    __slots__ = ("added", "removed")

    def __init__(self, added: list[bytes] = [], removed: list[bytes] = []) -> None:  # noqa: B006
        self.added, self.removed = list(added), list(removed)

    def apply(self, value: TypedValue) -> int:
        assert isinstance(value, Members)
        before = value.size_bytes()
        value.members |= set(self.added)
        value.members -= set(self.removed)
        return value.size_bytes() - before

    def encode(self) -> bytes:
        members = b"".join(struct.pack("<B", len(m)) + m for m in [*self.added, *self.removed])
        return struct.pack("<I", len(self.added)) + members

    @classmethod
    def decode(cls, payload: bytes) -> MemberUpdate:
        count = struct.unpack_from("<I", payload)[0]
        pos, members = 4, []
        while pos < len(payload):
            members.append(payload[pos + 1 : pos + 1 + payload[pos]])
            pos += 1 + payload[pos]
        return cls(members[:count], members[count:])


class Members(TypedValue):
    __slots__ = ("members",)

    TYPE_NAME: ClassVar[bytes] = b"toyset"
    TYPE_CODE: ClassVar[int] = 200
    UPDATE: ClassVar[type[ValueUpdate]] = MemberUpdate

    def __init__(self) -> None:
        self.members: set[bytes] = set()

    @classmethod
    def empty(cls) -> Members:
        return cls()

    def size_bytes(self) -> int:
        return sum(map(len, self.members))

    def as_update(self) -> MemberUpdate:
        return MemberUpdate(sorted(self.members))

    def __bool__(self) -> bool:
        return bool(self.members)


MemberUpdate.VALUE_TYPE = Members


def test_a_new_family_is_stored_logged_snapshotted_and_replayed_without_store_changes(monkeypatch) -> None:
    monkeypatch.setattr(apply, "VALUE_TYPES", {**redis.VALUE_TYPES, **value_types(Members)})
    keyspace = Keyspace()
    recorder = EffectRecorder(keyspace)
    keyspace.set(b"s", b"abc")
    keyspace.update(b"m", MemberUpdate([b"x", b"yy"]))
    keyspace.update(b"m", MemberUpdate([b"zzz"], [b"x"]))
    keyspace.set_expire_at(b"m", keyspace.now_ms() + 60_000)
    keyspace.rename(b"m", b"m2")
    assert keyspace.type_name(b"m2") == b"toyset" and keyspace.type_name(b"s") == b"string"
    assert keyspace.value_bytes == 3 + 5 and keyspace.value_size(b"m2") == 5
    with pytest.raises(WrongType):
        keyspace.get(b"m2")
    with pytest.raises(WrongType):
        keyspace.get_typed(b"m2", HashValue)
    with pytest.raises(WrongType):
        keyspace.update(b"s", MemberUpdate([b"a"]))
    with pytest.raises(WrongType):
        keyspace.update(b"m2", HashUpdate([(b"f", b"v")]))

    # The log: framed by records.py, replayed by apply.py, neither knowing the family.
    effects = recorder.take()
    replayed = Keyspace()
    apply.apply_effects(replayed, decode_record(encode_record(effects)[FRAME_BYTES:]))
    assert replayed.get_typed(b"m2", Members).members == {b"yy", b"zzz"}  # type: ignore[union-attr]
    assert replayed.expire_at_ms(b"m2") == keyspace.expire_at_ms(b"m2") and replayed.value_bytes == 8

    # A snapshot: one created UPDATE per typed value.
    _, items = snapshot_chunk(keyspace, 0, 100)
    assert (b"m2", (200, MemberUpdate([b"yy", b"zzz"]).encode()), keyspace.expire_at_ms(b"m2")) in items

    # The last member removed: the key goes, emitted as a DEL.
    keyspace.update(b"m2", MemberUpdate([], [b"yy", b"zzz"]))
    assert not keyspace.exists(b"m2") and recorder.take() == [("DEL", b"m2")]
    assert keyspace.value_bytes == 3


def test_two_families_may_not_share_a_type_code() -> None:
    with pytest.raises(ValueError, match="taken"):
        value_types(HashValue, Members, Members)


def test_the_engine_answers_wrongtype_everywhere_and_changes_nothing() -> None:
    session, _ = make_session()
    replies = run(
        session, "HSET h f v", "SET s x", "GET h", "HGET s f", "APPEND h x", "HSET s f v", "GETDEL h",
        "MULTI", "GET h", "HSET h f2 v2", "EXEC", "TYPE h", "TYPE s", "HGETALL h",
    )
    wrongtype = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert replies[2:7] == [wrongtype] * 5
    assert replies[10] == [wrongtype, 1]
    assert [reply.text for reply in replies[11:13]] == ["hash", "string"]  # type: ignore[attr-defined]
    assert replies[13].pairs == [(b"f", b"v"), (b"f2", b"v2")]  # type: ignore[attr-defined]


def test_the_line_protocol_reports_wrongtype_as_an_error() -> None:
    session, _ = make_session()
    run(session, "HSET h f v")
    session.wire = LINE
    job = Job(session, TEXT_COMMANDS, [[b"GET", b"h"], [b"DEL", b"h"], [b"GET", b"h"]], time.perf_counter())
    run_batch(session.store, [job])
    wrongtype = b"ERROR WRONGTYPE Operation against a key holding the wrong kind of value\n"
    assert encode_text_reply(job.replies[0]) == wrongtype
    assert [encode_text_reply(reply) for reply in job.replies[1:]] == [b"OK\n", b"NOT_FOUND\n"]
