"""Which writes gather a read quorum's versions first (cluster.write_context)."""

from __future__ import annotations

import pytest

from trio_kv.cluster.write_context import gathers_context, is_blind_write


@pytest.mark.parametrize("args", [
    [b"SET", b"k", b"v"], [b"set", b"k", b"v", b"EX", b"10"], [b"SET", b"k", b"nx"], [b"SET", b"k", b"v", b"px", b"5"],
    [b"SETEX", b"k", b"10", b"v"], [b"PSETEX", b"k", b"10", b"v"], [b"MSET", b"a", b"1", b"b", b"2"],
])
def test_blind_writes_need_no_context_unless_the_mode_is_read(args: list[bytes]) -> None:
    assert is_blind_write(args)
    assert not gathers_context(args, write_context_read=False)
    assert gathers_context(args, write_context_read=True)


@pytest.mark.parametrize("args", [
    [b"DEL", b"k"], [b"INCR", b"k"], [b"APPEND", b"k", b"v"], [b"SETNX", b"k", b"v"], [b"GETSET", b"k", b"v"],
    [b"SET", b"k", b"v", b"NX"], [b"SET", b"k", b"v", b"xx"], [b"SET", b"k", b"v", b"GET"],
    [b"SET", b"k", b"v", b"EX", b"5", b"KEEPTTL"], [b"HSET", b"h", b"f", b"v"], [b"EXPIRE", b"k", b"5"],
    [b"MSETNX", b"a", b"1"], [b"RENAME", b"a", b"b"], [],
])
def test_read_modify_writes_always_gather(args: list[bytes]) -> None:
    assert not is_blind_write(args)
    assert gathers_context(args, write_context_read=False)
