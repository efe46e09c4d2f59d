"""TKV.AAE.ROOTS, TKV.AAE.SEGMENTS and TKV.AAE.KEYS: what an anti-entropy
exchange (server/cluster/anti_entropy.py) reads of a peer's Tictac trees
(store/key_trees.py, cluster/tictac.py), coarse to fine; TKV.AAE.TOMBSTONES
and TKV.AAE.REAP: the tombstone reaper's (server/cluster/tombstone_reaper.py).

::

    TKV.AAE.ROOTS partition [partition ...]  -> bulk: each tree's root, u64 LE, in order
    TKV.AAE.SEGMENTS partition               -> bulk: the tree's 1024 segments, u64 LE
    TKV.AAE.KEYS partition segment [segment ...]
                                             -> array: key, entry hash (8 bytes LE), key, ...
    TKV.AAE.TOMBSTONES partition min-age-ms count
                                             -> array: key, clock, key, clock, ... (at most
                                                count keys of the partition whose versions are
                                                one tombstone at least min-age-ms old)
    TKV.AAE.REAP key clock [key clock ...]   -> array: 1 (purged) or 0 per key

REAP drops a key's versions only if they are still exactly ``clock`` and
that is one tombstone (store/versions.py ``purge``), under the write lock.

A hash is 8 raw bytes (RESP integers are signed, a hash is not). The keys
are listed whole for each segment asked: the caller bounds its asks (a
segment holds about keys / (partitions x 1024) keys).

Run under the read lock (writes update the trees under the write lock).
They are peer commands (the bus's ``Access.PEER``: key names leave the
node only after the handshake), not client commands: COMMAND does not
list them. With cluster mode off: ``-ERR This instance has cluster
support disabled``; a partition or segment out of range: ``-ERR``.
"""

from __future__ import annotations

from ...cluster.tictac import SEGMENT_COUNT, TictacTree, pack_hashes
from ...protocol.replies import Error
from ..session import Session
from ..table import CommandSpec, Handler, InMulti, Lock
from .repl import CLUSTER_DISABLED


def _index(text: bytes, limit: int, what: str) -> int | Error:
    if not text.isdigit() or len(text) > 6 or int(text) >= limit:
        return Error(f"ERR {what} must be 0..{limit - 1}")
    return int(text)


def _indexes(texts: list[bytes], limit: int, what: str) -> list[int] | Error:
    """Every index of ``texts``, or the error for the first bad one."""
    indexes = []
    for text in texts:
        index = _index(text, limit, what)
        if isinstance(index, Error):
            return index
        indexes.append(index)
    return indexes


def _trees(session: Session) -> list[TictacTree] | Error:
    """This node's partition trees; the error with cluster mode off."""
    versions = session.store.versions
    return CLUSTER_DISABLED if versions is None else versions.trees.trees


def _partition(session: Session, text: bytes) -> tuple[int, TictacTree] | Error:
    """The partition ``text`` names and its tree; the error with cluster
    mode off or a partition out of range."""
    trees = _trees(session)
    if isinstance(trees, Error):
        return trees
    partition = _index(text, len(trees), "partition")
    if isinstance(partition, Error):
        return partition
    return partition, trees[partition]


def cmd_aae_roots(session: Session, args: list[bytes]) -> object:
    trees = _trees(session)
    if isinstance(trees, Error):
        return trees
    partitions = _indexes(args[1:], len(trees), "partition")
    if isinstance(partitions, Error):
        return partitions
    return pack_hashes([trees[partition].root for partition in partitions])


def cmd_aae_segments(session: Session, args: list[bytes]) -> object:
    named = _partition(session, args[1])
    if isinstance(named, Error):
        return named
    return pack_hashes(named[1].segments)


def cmd_aae_keys(session: Session, args: list[bytes]) -> object:
    named = _partition(session, args[1])
    if isinstance(named, Error):
        return named
    segments = _indexes(args[2:], SEGMENT_COUNT, "segment")
    if isinstance(segments, Error):
        return segments
    out: list[bytes] = []
    for key, entry in named[1].entries(segments):
        out += (key, entry.to_bytes(8, "little"))
    return out


def cmd_aae_tombstones(session: Session, args: list[bytes]) -> object:
    named = _partition(session, args[1])
    if isinstance(named, Error):
        return named
    partition = named[0]
    if not args[2].isdigit() or not args[3].isdigit() or len(args[2]) > 12 or len(args[3]) > 6:
        return Error("ERR min-age-ms and count must be non-negative integers")
    versions = session.store.versions
    assert versions is not None
    before_ms = session.store.keyspace.now_ms() - int(args[2])
    out: list[bytes] = []
    for key, clock in versions.purgeable(partition, before_ms, int(args[3])):
        out += (key, clock)
    return out


def cmd_aae_reap(session: Session, args: list[bytes]) -> object:
    versions = session.store.versions
    if versions is None:
        return CLUSTER_DISABLED
    if len(args) % 2 == 0:
        return Error("ERR wrong number of arguments")
    return [int(versions.purge(args[i], args[i + 1])) for i in range(1, len(args), 2)]


DECLARATIONS: list[tuple[str, int, Handler, str, Lock]] = [
    ("tkv.aae.roots", -2, cmd_aae_roots, "Anti-entropy: the Tictac tree roots of partitions (u64 LE each)", Lock.READ),
    ("tkv.aae.segments", 2, cmd_aae_segments, "Anti-entropy: a partition's 1024 segment hashes (u64 LE each)", Lock.READ),
    ("tkv.aae.keys", -3, cmd_aae_keys, "Anti-entropy: the keys and entry hashes of segments of a partition", Lock.READ),
    ("tkv.aae.tombstones", 4, cmd_aae_tombstones, "Anti-entropy: a partition's tombstones old enough to purge, with their clocks", Lock.READ),
    ("tkv.aae.reap", -3, cmd_aae_reap, "Anti-entropy: purge tombstones that are still exactly the clocks given", Lock.WRITE),
]

SPECS: list[CommandSpec] = [
    CommandSpec(
        name=name, arity=arity, lock=lock, flags=("no_auth",), in_multi=InMulti.RUN,
        since=None, group="cluster", handler=handler, summary=summary,
    )
    for name, arity, handler, summary, lock in DECLARATIONS
]
