"""How a coordinator splits one connection's batch (a pipeline) by where
each request runs, without IO.

Rules kept here:

- A request with keys goes where ``quorum.route`` says for its first key's
  slot (the engine refuses CROSSSLOT before anything runs, so the first
  key names the slot of all of them): coordinated here (``LOCAL``), sent
  whole to the key's first live member (``Forward``), or ``-MOVED``.
- Keyless requests (PING, INFO, SCAN, DBSIZE...) run here.
- A batch holding a command of ``SESSION_COMMANDS`` (HELLO, SELECT,
  CLIENT REPLY, MULTI, WATCH...) runs here whole with
  ``whole_batch_local`` or such a command. The coordinator does not plan
  those: it cuts such batches around their connection commands and
  transactions (``Coordinator._connection_batch``) and plans the keyed
  requests between them here.
- WAIT and TKV.CONSISTENCY are barriers (``BARRIERS``): the batch is cut
  before and after each (WAIT waits for the acks of the writes before it;
  TKV.CONSISTENCY sets the level of the requests after it), and the
  coordinator runs them between the segments.
- Each request's reply goes back in its place: the coordinator fills
  ``replies[index]`` from whichever segment ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .quorum import Coordinate, Forward, Level, Moved, Operation, Route, route
from .ring import Member, Ring
from .slots import key_slot

# Commands whose effect is on the connection, not on a key: a batch that
# holds one runs here whole.
SESSION_COMMANDS = frozenset(
    name.encode()
    for name in (
        "multi", "exec", "discard", "watch", "unwatch", "hello", "reset", "select", "auth", "client", "quit",
        "readonly", "readwrite", "subscribe", "psubscribe", "monitor",
    )
)

# Barriers: the batch is cut around them and the coordinator runs them
# itself (WAIT counts the acks of the writes before it; TKV.CONSISTENCY
# changes the level of the requests after it).
BARRIERS = frozenset([b"wait", b"tkv.consistency"])

LOCAL = Coordinate()


@dataclass(frozen=True)
class Levels:
    """A request's consistency levels: its writes' and its reads'
    (TKV.CONSISTENCY sets both; HTTP's ``?w=&r=`` one each)."""

    write: Level = Level.QUORUM
    read: Level = Level.QUORUM

    def of(self, operation: Operation) -> Level:
        return self.write if operation is Operation.WRITE else self.read

    def encode(self) -> bytes:
        """As TKV.FORWARD carries them: ``WRITE,READ`` (one name if equal)."""
        if self.write is self.read:
            return self.write.value.encode()
        return f"{self.write.value},{self.read.value}".encode()

    @classmethod
    def parse(cls, text: str) -> Levels:
        """``encode``'s form back; ValueError for anything else."""
        write, _, read = text.partition(",")
        return cls(Level.parse(write), Level.parse(read or write))


def level_from_http(text: str, replicas: int) -> Level:
    """HTTP's ``?w=`` / ``?r=``: a level's name, or a number of replicas
    (1: ONE, N or more: ALL, between: QUORUM). ValueError otherwise."""
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ValueError("at least 1 replica")
        return Level.ONE if count == 1 else Level.ALL if count >= replicas else Level.QUORUM
    return Level.parse(text)


@dataclass(frozen=True)
class Segment:
    """Consecutive requests of a batch up to a barrier (WAIT), with where
    each runs: ``routes[i]`` for ``indexes[i]`` of the batch."""

    indexes: tuple[int, ...]
    routes: tuple[Route, ...]
    # A barrier request (WAIT, TKV.CONSISTENCY) that ends this segment (its batch index), or None.
    barrier_index: int | None = None


def plan_batch(
    requests: Sequence[Sequence[bytes]],
    key_of: Callable[[Sequence[bytes]], bytes | None],
    ring: Ring,
    local: Member,
    up: frozenset[Member],
    *,
    redirect: str,
    whole_batch_local: bool,
) -> list[Segment]:
    """Segments of ``requests`` (see the module docstring). ``key_of``
    gives a request's first key (None: keyless, or unknown command)."""
    if whole_batch_local or any(args[0].lower() in SESSION_COMMANDS for args in requests if args):
        return [Segment(tuple(range(len(requests))), (LOCAL,) * len(requests))]
    segments: list[Segment] = []
    indexes: list[int] = []
    routes: list[Route] = []
    for index, args in enumerate(requests):
        if args and args[0].lower() in BARRIERS:
            segments.append(Segment(tuple(indexes), tuple(routes), barrier_index=index))
            indexes, routes = [], []
            continue
        key = key_of(args)
        if key is None:
            where: Route = LOCAL
        else:
            slot = key_slot(key)
            where = route(slot, ring.preference_list(slot), local, up, redirect=redirect)
        indexes.append(index)
        routes.append(where)
    if indexes or not segments:
        segments.append(Segment(tuple(indexes), tuple(routes)))
    return segments


__all__ = ["BARRIERS", "LOCAL", "Levels", "level_from_http", "Forward", "Moved", "Segment", "SESSION_COMMANDS", "plan_batch"]
