"""A cluster node's incarnation: which actor its versions are written under
(``cluster/actor.py`` says why), kept in the data directory.

Files:

* ``incarnation``: the current incarnation, a decimal number and a newline.
* ``clean-shutdown``: written at a clean shutdown, after the log's final
  flush and fsync, holding the incarnation that stopped cleanly; removed
  at the next start.

Rules kept here:

* ``begin_incarnation`` (at start, before the node serves anything) keeps
  the incarnation only when ``clean-shutdown`` names it: the run before
  ended with every dot it issued in the log, on disk. Otherwise (kill -9, a
  crash, a power loss, a directory copied from a running node, a damaged
  marker) it bumps the number. The new number is durable (temporary file,
  fsync, rename, directory fsync) and the marker's removal is too
  (directory fsync) before it returns: a crash at any later point is
  unclean and bumps again.
* No ``incarnation`` file: 0 when the directory holds no log and no
  snapshot (a new node: it creates its first log before it serves), else 1
  (a directory of a build before incarnations: its node id may have lost
  dots).
* A damaged ``incarnation`` file stops the start (``BadIncarnationFile``):
  a guessed number could be an old one.
* ``mark_clean_shutdown`` writes the marker durably; the server calls it
  only after the log's final flush and fsync succeeded.

Why only after an unclean stop, not at every start: each new actor that
writes a key adds an entry to the key's version vector for good (21 bytes
for its id in the clock's actor table and 3 for its entry: 24 bytes per
key per incarnation, measured in ``tests/unit/test_incarnation.py``) and
takes that key off the single-actor fast path of ``store/versions.py``.
Clean restarts (upgrades, config changes) then cost nothing.

The store layer's; the server calls it on a disk thread.
"""

from __future__ import annotations

import os
import re

from .data_dir import FILE_NAME, fsync_directory
from .reader import DurabilityError

INCARNATION_FILE = "incarnation"
CLEAN_SHUTDOWN_FILE = "clean-shutdown"
# Incarnations are 32-bit (cluster/actor.py).
MAX_INCARNATION = (1 << 32) - 1
_NUMBER = re.compile(rb"(0|[1-9][0-9]{0,9})\n?")


class BadIncarnationFile(DurabilityError):
    pass


def begin_incarnation(data_dir: str | os.PathLike[str]) -> int:
    """The incarnation this run writes versions under, made durable, with
    the clean-shutdown marker gone (see the module docstring)."""
    path = os.path.join(data_dir, INCARNATION_FILE)
    marker = os.path.join(data_dir, CLEAN_SHUTDOWN_FILE)
    os.makedirs(data_dir, exist_ok=True)
    previous = _read_number(path)
    if previous is None:
        incarnation = 1 if _holds_data(data_dir) else 0
    elif _marker(marker) == previous:
        incarnation = previous
    else:
        incarnation = previous + 1
    if incarnation > MAX_INCARNATION:
        raise BadIncarnationFile(f"{path}: every incarnation of this node id is used; give the node a new data directory")
    if incarnation != previous:
        _write_durably(data_dir, path, incarnation)
    try:
        os.unlink(marker)
    except FileNotFoundError:
        pass
    else:
        fsync_directory(data_dir)
    return incarnation


def mark_clean_shutdown(data_dir: str | os.PathLike[str], incarnation: int) -> None:
    """Record that ``incarnation`` stopped with all it wrote on disk."""
    _write_durably(data_dir, os.path.join(data_dir, CLEAN_SHUTDOWN_FILE), incarnation)


def _read_number(path: str) -> int | None:
    try:
        with open(path, "rb") as file:
            content = file.read(16)
    except FileNotFoundError:
        return None
    if not _NUMBER.fullmatch(content) or int(content) > MAX_INCARNATION:
        raise BadIncarnationFile(
            f"{path}: not an incarnation number; restore it, or set it above every number it ever held"
        )
    return int(content)


def _marker(path: str) -> int | None:
    """The incarnation a clean-shutdown marker names; None if there is no
    marker or it is damaged (then the stop counts as unclean)."""
    try:
        return _read_number(path)
    except BadIncarnationFile:
        return None


def _holds_data(data_dir: str | os.PathLike[str]) -> bool:
    return any(FILE_NAME.fullmatch(name) for name in os.listdir(data_dir))


def _write_durably(data_dir: str | os.PathLike[str], path: str, number: int) -> None:
    tmp_path = path + ".tmp"
    with open(tmp_path, "wb") as file:
        file.write(b"%d\n" % number)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp_path, path)
    fsync_directory(data_dir)
