"""The cross-protocol rule in both command tables, without sockets: which
requests are taken for HTTP (and close the connection), and which are not."""

from __future__ import annotations

import pytest

from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.table import CommandSpec, InMulti, Lock
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.protocol.replies import Error

HTTP = [
    [b"POST", b"/", b"HTTP/1.1"],
    [b"post"],
    [b"Host:", b"127.0.0.1:6379"],
    [b"HOST:"],
    [b"GET", b"/", b"HTTP/1.1"],
    [b"HEAD", b"/index.html", b"HTTP/1.0"],
    [b"PUT", b"/keys/a", b"HTTP/2.0"],
]
NOT_HTTP = [
    [b"SET", b"k", b"HTTP/1.1"],  # a valid command: runs
    [b"get", b"/", b"HTTP/1.1"],  # lower-case method: a wrong-arity GET
    [b"GET", b"/", b"HTTP/1.1x"],
    [b"Host", b"x"],
    [b"FOO", b"/", b"HTTP/1"],
]


@pytest.mark.parametrize("table", [REDIS_COMMANDS, TEXT_COMMANDS], ids=["redis", "text"])
@pytest.mark.parametrize("args", HTTP)
def test_http_requests_resolve_to_the_closing_spec(table, args) -> None:
    spec = table.resolve(args)
    assert isinstance(spec, CommandSpec) and spec.name == "post"
    assert spec.in_multi is InMulti.RUN and spec.lock is Lock.READ


@pytest.mark.parametrize("table", [REDIS_COMMANDS, TEXT_COMMANDS], ids=["redis", "text"])
@pytest.mark.parametrize("args", NOT_HTTP)
def test_other_requests_are_untouched(table, args) -> None:
    spec = table.resolve(args)
    assert isinstance(spec, Error) or spec.name != "post"


@pytest.mark.parametrize("table", [REDIS_COMMANDS, TEXT_COMMANDS], ids=["redis", "text"])
def test_the_rule_is_not_a_listed_command(table) -> None:
    assert table.get("post") is None and table.get("host:") is None
