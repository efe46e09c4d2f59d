"""A cluster node's id: 40 random lowercase hex characters (as Redis'),
kept in the data directory's ``node-id`` file.

Rules kept here:

* Created at the first start with the log on and never changed after: the
  id is this node's actor id in versions and how peers know it, so an
  address that comes back with an empty directory is a new node.
* Written durably before it is used: a temporary file, fsync, rename,
  directory fsync (``data_dir.py``'s rule for every creation). A crash in
  between leaves at most ``node-id.tmp``, which the next start replaces
  (recovery deletes ``*.tmp`` files too).
* A file that holds anything but one id (and an optional newline) stops the
  start (``DurabilityError``): guessing a new id would make this node a
  stranger to its own versions.
* A memory-only node (``--appendonly no``) keeps nothing: ``new_node_id``.

The store layer's; the server calls it on a disk thread.
"""

from __future__ import annotations

import os
import re
import secrets

from .data_dir import fsync_directory
from .reader import DurabilityError

NODE_ID_FILE = "node-id"
NODE_ID_HEX_CHARS = 40
_VALID = re.compile(rb"[0-9a-f]{40}\n?")


class BadNodeIdFile(DurabilityError):
    pass


def new_node_id() -> str:
    """A fresh random id (160 bits, as Redis' getRandomHexChars)."""
    return secrets.token_hex(NODE_ID_HEX_CHARS // 2)


def load_or_create_node_id(data_dir: str | os.PathLike[str]) -> str:
    """The id in ``<data_dir>/node-id``, created (durably) with a fresh id
    if the file does not exist. Raises ``BadNodeIdFile`` if it holds
    anything else, ``OSError`` if it cannot be read or written."""
    path = os.path.join(data_dir, NODE_ID_FILE)
    try:
        with open(path, "rb") as file:
            content = file.read(NODE_ID_HEX_CHARS + 2)
    except FileNotFoundError:
        return _create(data_dir, path)
    if not _VALID.fullmatch(content):
        raise BadNodeIdFile(
            f"{path}: not a node id (40 lowercase hex characters); restore it, or delete it to make this a new node"
        )
    return content[:NODE_ID_HEX_CHARS].decode()


def _create(data_dir: str | os.PathLike[str], path: str) -> str:
    node_id = new_node_id()
    os.makedirs(data_dir, exist_ok=True)
    tmp_path = path + ".tmp"
    with open(tmp_path, "wb") as file:
        file.write(node_id.encode() + b"\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp_path, path)
    fsync_directory(data_dir)
    return node_id
