"""The node id file (store/durability/node_id.py): created once, read back
the same, never guessed over a damaged file."""

from __future__ import annotations

import re

import pytest

from trio_kv.store.durability.node_id import (
    NODE_ID_FILE,
    BadNodeIdFile,
    load_or_create_node_id,
    new_node_id,
)

HEX40 = re.compile(r"[0-9a-f]{40}")


def test_created_at_first_start_then_kept(tmp_path) -> None:
    data_dir = tmp_path / "data"  # not there yet: created
    node_id = load_or_create_node_id(data_dir)
    assert HEX40.fullmatch(node_id)
    assert (data_dir / NODE_ID_FILE).read_text() == node_id + "\n"
    assert load_or_create_node_id(data_dir) == node_id
    assert not list(data_dir.glob("*.tmp"))


def test_a_leftover_temporary_file_is_replaced(tmp_path) -> None:
    (tmp_path / (NODE_ID_FILE + ".tmp")).write_text("half written")
    node_id = load_or_create_node_id(tmp_path)
    assert load_or_create_node_id(tmp_path) == node_id


@pytest.mark.parametrize("content", [b"", b"abc\n", b"A" * 40, b"a" * 41, b"a" * 40 + b"\n\n", b"g" * 40])
def test_a_damaged_file_stops_the_start(tmp_path, content: bytes) -> None:
    (tmp_path / NODE_ID_FILE).write_bytes(content)
    with pytest.raises(BadNodeIdFile, match="not a node id"):
        load_or_create_node_id(tmp_path)


def test_ids_without_newline_are_accepted_and_fresh_ids_differ(tmp_path) -> None:
    (tmp_path / NODE_ID_FILE).write_bytes(b"0123456789abcdef0123456789abcdef01234567")
    assert load_or_create_node_id(tmp_path) == "0123456789abcdef0123456789abcdef01234567"
    assert HEX40.fullmatch(new_node_id()) and new_node_id() != new_node_id()
