"""Applying logged effects to a ``Keyspace``, and loading one from a data dir.

Rules kept here:

* Effects are applied through the keyspace's public methods, in log order,
  with expiry paused (``Keyspace.expiry_paused``): each effect must act as it
  did when it was logged. An EXPIRE or PERSIST was only logged when its key
  was live, so a replayed one must find the key even if the key's previous
  TTL has run out since; dropping expired SETs as they are read would lose
  such a key.
* After the last effect, every key whose absolute expiry has passed is
  deleted in one pass: expired keys are never resurrected.
* Nobody may be subscribed to the keyspace's effects while loading (a
  replay is not a new write: ``store/effects.py``).
* An UPDATE names its family by type code; the families are the command
  table's ``VALUE_TYPES`` (commands/redis.py), so a new family needs no
  change here.
* A VERSION (cluster mode) goes to the store's ``Versions``
  (store/versions.py), paused while loading. A store without versions
  (cluster mode off over a cluster's data) skips them: the keys load, their
  versions are dropped by the next compaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .data_dir import DataDir, RecoveryReport
from .records import CLEAR, DEL, EXPIRE, PATCH, PERSIST, SET, UPDATE, VERSION, Effect, RecordFormatError
from ..keyspace import Keyspace
from ...commands.redis import VALUE_TYPES

if TYPE_CHECKING:
    from ..versions import Versions


def apply_effects(keyspace: Keyspace, effects: list[Effect], versions: Versions | None = None) -> None:
    """Apply one record's effects. Outside ``expiry_paused`` this is the
    plain keyspace semantics (a past expiry deletes)."""
    for effect in effects:
        op = effect[0]
        if op == SET:
            keyspace.set(effect[1], effect[2], effect[3])
        elif op == PATCH:
            keyspace.apply_patch(effect[1], effect[2], effect[3], effect[4], effect[5])
        elif op == UPDATE:
            family = VALUE_TYPES.get(effect[2])
            if family is None:
                raise RecordFormatError(f"UPDATE of unknown value type {effect[2]}")
            try:
                update = family.UPDATE.decode(effect[4])
            except (ValueError, IndexError) as error:
                raise RecordFormatError(f"damaged {family.TYPE_NAME.decode()} update: {error}") from None
            keyspace.apply_update(effect[1], update, effect[3], effect[5])
        elif op == DEL:
            keyspace.delete(effect[1])
        elif op == EXPIRE:
            keyspace.set_expire_at(effect[1], effect[2])
        elif op == PERSIST:
            keyspace.persist(effect[1])
        elif op == CLEAR:
            keyspace.clear()
        elif op == VERSION:
            if versions is not None:
                try:
                    versions.load(effect[1], effect[2])
                except ValueError as error:
                    raise RecordFormatError(f"damaged versions of a key: {error}") from None
        else:
            raise ValueError(f"effect {effect!r} cannot be applied to a keyspace")


def load_keyspace(
    data_dir: DataDir, keyspace: Keyspace, *, truncate_torn_tail: bool = True, versions: Versions | None = None
) -> RecoveryReport:
    """Load the newest snapshot and replay the logs into ``keyspace`` (and
    ``versions``), then drop the keys that expired meanwhile
    (``report.expired_dropped``)."""
    with loading(keyspace, versions):

        def apply(effects: list[Effect]) -> None:
            apply_effects(keyspace, effects, versions)

        with keyspace.expiry_paused():
            report = data_dir.replay(apply, truncate_torn_tail=truncate_torn_tail)
    report.expired_dropped = keyspace.purge_expired()
    report.keys = len(keyspace)
    return report


@contextmanager
def loading(keyspace: Keyspace, versions: Versions | None) -> Iterator[None]:
    """Nobody subscribed to the keyspace's effects inside (the versions'
    stamper is paused): a replay is not a new write. The sorted key index
    is rebuilt once after the load instead of fed key by key."""
    if versions is None:
        if keyspace.effects.subscribed:
            raise RuntimeError("unsubscribe from the keyspace's effects while loading")
        with keyspace.sorted_index_paused():
            yield
        return
    with versions.paused():
        if keyspace.effects.subscribed:
            raise RuntimeError("unsubscribe from the keyspace's effects while loading")
        with keyspace.sorted_index_paused():
            yield
