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
* The journal must be off while loading (a replay is not a new write).
* An UPDATE names its family by type code; the families are the command
  table's ``VALUE_TYPES`` (commands/redis.py), so a new family needs no
  change here.
"""

from __future__ import annotations

from .data_dir import DataDir, RecoveryReport
from .records import CLEAR, DEL, EXPIRE, PATCH, PERSIST, SET, UPDATE, Effect, RecordFormatError
from ..keyspace import Keyspace
from ...commands.redis import VALUE_TYPES


def apply_effects(keyspace: Keyspace, effects: list[Effect]) -> None:
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
        else:
            raise ValueError(f"effect {effect!r} cannot be applied to a keyspace")


def load_keyspace(data_dir: DataDir, keyspace: Keyspace, *, truncate_torn_tail: bool = True) -> RecoveryReport:
    """Load the newest snapshot and replay the logs into ``keyspace``, then
    drop the keys that expired meanwhile (``report.expired_dropped``)."""
    if keyspace.journal is not None:
        raise RuntimeError("turn the keyspace journal off while loading")

    def apply(effects: list[Effect]) -> None:
        apply_effects(keyspace, effects)

    with keyspace.expiry_paused():
        report = data_dir.replay(apply, truncate_torn_tail=truncate_torn_tail)
    report.expired_dropped = keyspace.purge_expired()
    report.keys = len(keyspace)
    return report
