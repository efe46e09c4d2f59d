"""This node's id: 40 random lowercase hex characters (as Redis' node ids),
created at first start and kept in the data directory's ``node-id`` file,
so a node keeps its id across restarts and an address that comes back with
an empty disk is a new actor (design: node ids).

Minimal version written by the cluster bus (helper "bus"); the store's
owner may replace it behind ``load_or_create_node_id``.

Rules kept here: the file is written to a temporary name, fsynced and
renamed (then the directory fsynced), so a crash leaves either no file or a
whole one; a file that is not 40 lowercase hex characters is an error, not
silently replaced (it would change the node's identity). A memory-only node
(``--appendonly no``) gets a fresh id each start: ``new_node_id``.
"""

from __future__ import annotations

import os
import re
import secrets

from .data_dir import fsync_directory
from .reader import DurabilityError

NODE_ID_FILE = "node-id"
_NODE_ID = re.compile(r"[0-9a-f]{40}")


class BadNodeIdFile(DurabilityError):
    """The node-id file exists but does not hold a node id."""


def new_node_id() -> str:
    return secrets.token_hex(20)


def load_or_create_node_id(data_dir: str) -> str:
    """The id in ``data_dir/node-id``, creating the file (and the directory) if absent."""
    path = os.path.join(data_dir, NODE_ID_FILE)
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read().strip()
    except FileNotFoundError:
        pass
    else:
        if not _NODE_ID.fullmatch(text):
            raise BadNodeIdFile(f"{path}: not a node id (40 lowercase hex characters): {text[:60]!r}")
        return text
    os.makedirs(data_dir, exist_ok=True)
    node_id = new_node_id()
    tmp_path = path + ".tmp"
    with open(tmp_path, "w", encoding="ascii") as file:
        file.write(node_id + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp_path, path)
    fsync_directory(data_dir)
    return node_id
