"""The client's one list of options (trio_kv/client/options.py): the
keyword arguments the type checker knows are the dataclass's fields, and
every client refuses an unknown option before connecting."""

from __future__ import annotations

import dataclasses

import pytest

from trio_kv.client import BlockingClient, Client
from trio_kv.client.options import ConnectKeywords, ConnectOptions


def test_the_keywords_are_the_options_fields():
    fields = {field.name for field in dataclasses.fields(ConnectOptions)}
    assert set(ConnectKeywords.__annotations__) == fields - {"host", "port"}


def test_a_client_keeps_its_options():
    client = Client("example", 6380, protocol=3, username="u", password="secret", max_connections=2)
    assert client.options == ConnectOptions("example", 6380, protocol=3, username="u", password="secret")
    assert "secret" not in repr(client.options)  # the password is not shown


@pytest.mark.parametrize("make", [Client, BlockingClient])
def test_an_unknown_option_is_a_type_error(make):
    with pytest.raises(TypeError, match="nosuch"):
        make("127.0.0.1", 1, nosuch=1)
