"""The ring as a stored record, and the small interface it is stored
behind (``RingStore``), so it can later live in etcd. Pure.

The record is JSON (UTF-8, keys sorted): ``version`` (1), ``epoch``,
``partitions``, ``members`` (addresses), ``preference_lists`` (one list
of addresses per partition), ``change`` (the admin change's token, when
one made it), for a staged change ``next_members`` and
``next_lists`` (the ring it leads to: ``cluster.ring_change.staged``) and, for a ring made by a membership change,
``previous`` (the ring hash it was made from). It is what a node saves in its data
directory (``server.cluster.membership_store``), what ``TKV.RING RECORD``
answers (a node that sees a higher epoch in ``TKV.PING`` fetches it) and
what ``TKV.RING.PUSH`` carries. ``decode_ring`` validates everything a
ring must be before any node acts on it: distinct sorted members, a power
of two of partitions, every list of the same width with distinct members
of the ring.

``RingStore`` is compare-and-set on the epoch: ``save(ring,
expected_epoch)`` writes only if the stored ring's epoch is
``expected_epoch`` (None: nothing stored yet) and the new epoch is
higher; otherwise ``StaleRing``. A file gives this per node; etcd (a
transaction comparing the key's value) would give it cluster-wide, which
is what makes two concurrent admin changes impossible rather than merely
unlikely.
"""

from __future__ import annotations

import json
from typing import Protocol

from .ring import Member, Ring
from .slots import SLOT_COUNT

RECORD_VERSION = 1


class RingRecordError(ValueError):
    """A record that is not a valid ring (the sentence says why)."""


class StaleRing(Exception):
    """A compare-and-set that lost: the stored epoch is not the expected one."""


class RingStore(Protocol):
    def load(self) -> Ring | None:
        """The saved ring, or None when nothing was saved."""
        ...

    def save(self, ring: Ring, expected_epoch: int | None) -> None:
        """Store ``ring`` iff the stored epoch is ``expected_epoch`` (None:
        nothing stored) and lower than ``ring.epoch``; else ``StaleRing``."""
        ...


class MemoryRingStore:
    """A ``RingStore`` in memory: a node without a data directory on disk
    (``--appendonly no``), and tests."""

    def __init__(self, ring: Ring | None = None) -> None:
        self.ring = ring

    def load(self) -> Ring | None:
        return self.ring

    def save(self, ring: Ring, expected_epoch: int | None) -> None:
        check_compare_and_set(self.ring, ring, expected_epoch)
        self.ring = ring


def check_compare_and_set(stored: Ring | None, ring: Ring, expected_epoch: int | None) -> None:
    """``StaleRing`` unless ``ring`` may replace ``stored`` (``RingStore.save``)."""
    stored_epoch = None if stored is None else stored.epoch
    if stored_epoch != expected_epoch:
        raise StaleRing(f"the stored ring has epoch {stored_epoch}, expected {expected_epoch}")
    if stored_epoch is not None and ring.epoch <= stored_epoch:
        raise StaleRing(f"epoch {ring.epoch} is not newer than the stored epoch {stored_epoch}")


def encode_ring(ring: Ring, previous_hash: str | None = None, change: str | None = None) -> bytes:
    """The record of ``ring``; ``previous_hash``: the hash of the ring it was
    made from (a membership change), so a node knows whether its own ring
    was that one, and so whether it knows what moved; ``change``: the token
    of the admin change that made it (the members it locked accept only
    that change's ring: ``server.cluster.change_lock``)."""
    record: dict[str, object] = {
        "version": RECORD_VERSION,
        "epoch": ring.epoch,
        "partitions": ring.partition_count,
        "members": [member.address for member in ring.members],
        "preference_lists": [[member.address for member in chosen] for chosen in ring.preference_lists],
    }
    if ring.staged:
        record["next_members"] = [member.address for member in ring.next_members]
        record["next_lists"] = [[member.address for member in chosen] for chosen in ring.next_lists]
    if previous_hash is not None:
        record["previous"] = previous_hash
    if change is not None:
        record["change"] = change
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def previous_hash_of(data: bytes) -> str | None:
    """The ``previous`` hash of a record ``decode_ring`` accepted (None: not given)."""
    previous = json.loads(data).get("previous")
    return previous if isinstance(previous, str) else None


def change_of(data: bytes) -> str | None:
    """The ``change`` token of a record ``decode_ring`` accepted (None: not given)."""
    change = json.loads(data).get("change")
    return change if isinstance(change, str) else None


def decode_ring(data: bytes) -> Ring:
    """The ring in ``data``; ``RingRecordError`` if it is not a valid one."""
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RingRecordError(f"not a ring record: {error}") from None
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise RingRecordError(f"not a version {RECORD_VERSION} ring record")
    epoch, partitions = record.get("epoch"), record.get("partitions")
    members_text, lists_text = record.get("members"), record.get("preference_lists")
    if not (isinstance(epoch, int) and epoch >= 1):
        raise RingRecordError(f"epoch must be a positive integer, got {epoch!r}")
    if not (isinstance(partitions, int) and 1 <= partitions <= SLOT_COUNT and partitions & (partitions - 1) == 0):
        raise RingRecordError(f"partitions must be a power of two in 1..{SLOT_COUNT}, got {partitions!r}")
    if not (isinstance(members_text, list) and isinstance(lists_text, list)):
        raise RingRecordError("members and preference_lists must be lists")
    try:
        members = tuple(Member.parse(text) for text in members_text if isinstance(text, str))
        by_address = {member.address: member for member in members}
        lists = tuple(
            tuple(by_address[text] for text in chosen) for chosen in lists_text if isinstance(chosen, list)
        )
    except (ValueError, KeyError, TypeError) as error:
        raise RingRecordError(f"a member is malformed or not in the ring: {error}") from None
    ring = Ring(epoch=epoch, members=members, partition_count=partitions, preference_lists=lists)
    validate_ring(ring, expected_members=len(members_text), expected_lists=len(lists_text))
    if "next_lists" not in record and "next_members" not in record:
        return ring
    next_members_text, next_lists_text = record.get("next_members"), record.get("next_lists")
    if not (isinstance(next_members_text, list) and isinstance(next_lists_text, list)):
        raise RingRecordError("next_members and next_lists must be lists")
    try:
        next_members = tuple(by_address[text] for text in next_members_text if isinstance(text, str))
        next_lists = tuple(
            tuple(by_address[text] for text in chosen) for chosen in next_lists_text if isinstance(chosen, list)
        )
    except (KeyError, TypeError) as error:
        raise RingRecordError(f"a next member is not in the ring: {error}") from None
    following = Ring(epoch=epoch + 1, members=next_members, partition_count=partitions, preference_lists=next_lists)
    validate_ring(following, expected_members=len(next_members_text), expected_lists=len(next_lists_text))
    if set(members) != set(next_members) | {member for chosen in lists for member in chosen}:
        raise RingRecordError("a staged ring's members must be its lists' and its next members")
    return Ring(epoch=epoch, members=members, partition_count=partitions, preference_lists=lists,
                next_lists=next_lists, next_members=next_members)


def validate_ring(ring: Ring, *, expected_members: int | None = None, expected_lists: int | None = None) -> None:
    """``RingRecordError`` unless ``ring`` keeps the rules every ring keeps."""
    if not ring.members or list(ring.members) != sorted(set(ring.members)):
        raise RingRecordError("members must be distinct, sorted and not empty")
    if expected_members is not None and expected_members != len(ring.members):
        raise RingRecordError("a member is not an address")
    if len(ring.preference_lists) != ring.partition_count or (
        expected_lists is not None and expected_lists != ring.partition_count
    ):
        raise RingRecordError(f"expected {ring.partition_count} preference lists, got {len(ring.preference_lists)}")
    widths = {len(chosen) for chosen in ring.preference_lists}
    if len(widths) != 1 or 0 in widths:
        raise RingRecordError(f"every preference list must have the same width, one or more, got {sorted(widths)}")
    members = set(ring.members)
    for partition, chosen in enumerate(ring.preference_lists):
        if len(set(chosen)) != len(chosen) or not set(chosen) <= members:
            raise RingRecordError(f"partition {partition}'s list must hold distinct members of the ring")
