"""A subscriber to a keyspace's effects sink (``trio_kv/store/effects.py``)
for tests: it keeps every unit it is given, in order."""

from __future__ import annotations

from trio_kv.store.effects import Effect
from trio_kv.store.keyspace import Keyspace


class EffectRecorder:
    """Subscribes at construction; ``units`` holds what it got so far."""

    def __init__(self, keyspace: Keyspace) -> None:
        self.sink = keyspace.effects
        self.units: list[list[Effect]] = []
        self.sink.subscribe(self.units.append)

    def take(self) -> list[Effect]:
        """End the unit in progress (as the engine does after a write
        command), then return every effect received since the last call, in
        order, and forget them."""
        self.sink.end_command()
        effects = [effect for unit in self.units for effect in unit]
        self.units.clear()
        return effects
