"""The ring record and its stores (cluster/ring_record.py,
server/cluster/membership_store.py): a round trip keeps the ring, a record
that is not a valid ring is refused with a reason, saving is compare-and-set
on the epoch (never back to a lower one) and atomic; and the handshake meets
peers at other epochs (cluster/handshake.py)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_kv.cluster.handshake import PROTOCOL_VERSION, Hello, hello_ring, refusal, split_hello_ring
from trio_kv.cluster.ring import Member, claim
from trio_kv.cluster.ring_change import reclaim
from trio_kv.cluster.ring_record import MemoryRingStore, RingRecordError, StaleRing, decode_ring, encode_ring
from trio_kv.config import Config
from trio_kv.server.cluster.membership_store import RING_FILE, FileRingStore
from trio_kv.server.cluster.start import prepare_cluster

MEMBERS = [Member("127.0.0.1", 7001), Member("127.0.0.1", 7002), Member("::1", 7003)]


@given(st.integers(1, 6), st.sampled_from([1, 4, 64, 256]), st.integers(1, 4), st.integers(1, 10**6))
def test_a_record_round_trips(count: int, partitions: int, replicas: int, epoch: int) -> None:
    ring = claim([Member("10.0.0.1", 7000 + index) for index in range(count)], replicas=replicas,
                 partition_count=partitions, epoch=epoch)
    assert decode_ring(encode_ring(ring)) == ring


@pytest.mark.parametrize(("change", "reason"), [
    (lambda text: b"not json", "not a ring record"),
    (lambda text: text.replace(b'"version":1', b'"version":2'), "version 1"),
    (lambda text: text.replace(b'"epoch":3', b'"epoch":0'), "epoch"),
    (lambda text: text.replace(b'"partitions":4', b'"partitions":3'), "power of two"),
    (lambda text: text.replace(b'"members":["127.0.0.1:7001",', b'"members":['), "not in the ring"),
    (lambda text: text.replace(b'["127.0.0.1:7001","127.0.0.1:7002","[::1]:7003"]]', b'["127.0.0.1:7001"]]'),
     "same width"),
    (lambda text: text.replace(b'["127.0.0.1:7001","127.0.0.1:7002","[::1]:7003"]]',
                               b'["127.0.0.1:7001","127.0.0.1:7001","[::1]:7003"]]'), "distinct members"),
    (lambda text: text.replace(b'"members":["127.0.0.1:7001","127.0.0.1:7002"', b'"members":["127.0.0.1:7002","127.0.0.1:7001"'),
     "sorted"),
])
def test_a_record_that_is_not_a_ring_is_refused(change, reason: str) -> None:
    ring = claim(MEMBERS, partition_count=4, epoch=3)
    # The cases edit the last partition's list: make sure it is the one they name.
    ring = ring.__class__(ring.epoch, ring.members, 4, (*ring.preference_lists[:3], tuple(MEMBERS)))
    text = encode_ring(ring)
    with pytest.raises(RingRecordError, match=reason):
        decode_ring(change(text))


@pytest.mark.parametrize("make_store", [lambda path: MemoryRingStore(), lambda path: FileRingStore(path)])
def test_saving_is_compare_and_set_on_the_epoch(tmp_path, make_store) -> None:
    store = make_store(tmp_path / "data")
    first = claim(MEMBERS, epoch=1)
    second = reclaim(first, [*MEMBERS, Member("127.0.0.1", 7004)], replicas=3)
    assert store.load() is None
    with pytest.raises(StaleRing):
        store.save(first, expected_epoch=1)  # nothing is stored yet
    store.save(first, expected_epoch=None)
    with pytest.raises(StaleRing):
        store.save(second, expected_epoch=None)  # someone saved meanwhile
    store.save(second, expected_epoch=1)
    with pytest.raises(StaleRing, match="not newer"):
        store.save(first, expected_epoch=2)  # never back to a lower epoch
    assert store.load() == second


def test_the_file_store_writes_atomically_and_refuses_a_damaged_file(tmp_path) -> None:
    store = FileRingStore(tmp_path)
    ring = claim(MEMBERS, epoch=1)
    store.save(ring, expected_epoch=None)
    assert os.listdir(tmp_path) == [RING_FILE]  # no temporary file left
    assert FileRingStore(tmp_path).load() == ring  # what a restart reads
    (tmp_path / RING_FILE).write_bytes(b'{"version": 1')
    with pytest.raises(RingRecordError, match=f"{RING_FILE}.*delete it to rejoin"):
        FileRingStore(tmp_path).load()


def test_a_node_with_a_saved_ring_starts_from_it_not_from_its_seeds(tmp_path) -> None:
    seeds = ("127.0.0.1:7001", "127.0.0.1:7002")
    config = Config(host="127.0.0.1", port=7001, cluster_enabled=True, cluster_seeds=seeds, data_dir=str(tmp_path))
    start = prepare_cluster(config, 7001, "a" * 40)
    assert start is not None and start.node.ring.epoch == 1 and len(start.node.ring.members) == 2
    saved = reclaim(start.node.ring, [*start.node.ring.members, Member("127.0.0.1", 7003)], replicas=3)
    FileRingStore(tmp_path).save(saved, expected_epoch=None)
    restarted = prepare_cluster(config, 7001, "a" * 40)
    assert restarted is not None and restarted.node.view().ring == saved
    assert set(restarted.node.links) == {Member("127.0.0.1", 7002), Member("127.0.0.1", 7003)}


def test_the_handshake_compares_ring_hashes_only_at_the_same_epoch() -> None:
    members = frozenset(["127.0.0.1:7001", "127.0.0.1:7002"])

    def hello(address: str, ring: str) -> Hello:
        return Hello(PROTOCOL_VERSION, "trio-kv", "a" * 40, address, ring, "0" * 32)

    mine = hello("127.0.0.1:7001", hello_ring("aaaa", 1))
    assert hello_ring("aaaa", 1) == "aaaa"  # epoch 1 sends what it always sent
    assert split_hello_ring(hello_ring("bbbb", 7)) == ("bbbb", 7)
    assert "same epoch 1" in (refusal(mine, hello("127.0.0.1:7002", "bbbb"), members) or "")
    assert refusal(mine, hello("127.0.0.1:7002", hello_ring("bbbb", 2)), members) is None
    theirs = hello("127.0.0.1:7002", hello_ring("bbbb", 2))
    assert "same epoch 2" in (refusal(hello("127.0.0.1:7001", hello_ring("cccc", 2)), theirs, members) or "")
