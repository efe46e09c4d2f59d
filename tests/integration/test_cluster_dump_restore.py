"""DUMP and RESTORE in a cluster of real ``trio-kv`` processes: single-key
commands that route by their key as the other keyed commands do.

Three nodes, two replicas of each key (so a node forwards the keys it does
not replicate): a value RESTOREd through any node reads back the same
through every node, its payload DUMPed through every node is the same, a
RESTORE without REPLACE of an existing key is ``-BUSYKEY`` wherever it is
sent, and redis-py's ``RedisCluster`` (which routes by COMMAND's key
positions) DUMPs and RESTOREs. Every process is stopped by PID."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from trio_kv.protocol.rdb_payload import HashObject, StringObject, encode_payload

from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow


def test_dump_and_restore_route_by_their_key() -> None:
    cluster = ProcessCluster(3, "--cluster-replicas", "2")
    try:
        cluster.start_all()
        clients = [cluster.client(index) for index in range(3)]
        for i in range(30):
            writer = clients[i % 3]
            string_key, hash_key = f"dr:s:{i}", f"dr:h:{i}"
            assert writer.restore(string_key, 0, encode_payload(StringObject(b"v%d" % i))) in (True, b"OK")
            assert writer.restore(hash_key, 60_000, encode_payload(HashObject(((b"f", b"%d" % i),)))) in (True, b"OK")
            for reader in clients:
                assert reader.get(string_key) == b"v%d" % i
                assert reader.hgetall(hash_key) == {b"f": b"%d" % i}
                assert 0 < reader.pttl(hash_key) <= 60_000
            dumps = {reader.dump(hash_key) for reader in clients}
            assert len(dumps) == 1
            for reader in clients:
                with pytest.raises(redis.ResponseError, match="BUSYKEY"):
                    reader.restore(string_key, 0, next(iter(dumps)))
        routed = RedisCluster(host=cluster.hosts[0], port=cluster.port, socket_timeout=10)
        try:
            for i in range(30):
                payload = routed.dump(f"dr:h:{i}")
                assert routed.restore(f"dr:copy:{i}", 0, payload) in (True, b"OK")
                assert routed.hgetall(f"dr:copy:{i}") == {b"f": b"%d" % i}
        finally:
            routed.close()
    finally:
        cluster.stop()
