"""Adding and removing a node with real processes (issue 11's test of
membership changes): 3 nodes loaded with keys, a 4th added with ``trio-kv
cluster add`` while a redis-py ``RedisCluster`` client writes and reads: at
most 17 of 64 partitions change their first member, every partition copy
is done (Tictac roots match) within 60 s, 0 client errors, every key
readable; then ``trio-kv cluster remove``, the client still running: back
to 3 nodes, 0 client errors, 0 keys lost (read at ALL). A removed node
hands off a write only it holds. Two admins adding two nodes at once, on
two nodes, with ``--cluster-secret``: one wins, the other is refused, every
member ends on one ring; the tool without the secret is refused.

``MEMBERSHIP_KEYS`` (default 20,000; the issue's figure is 100,000) sets the load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from trio_kv.cluster.slots import key_slot
from trio_kv.server.cluster import membership_cli

from .process_cluster import REPO, ProcessCluster

pytestmark = pytest.mark.slow

# 100,000 is the figure; loading them takes 100 s on this loaded
# 2-core machine, so the default stays under the slow tests' budget.
KEYS = int(os.environ.get("MEMBERSHIP_KEYS", "20000"))
LOAD_BATCH = 500
# The bound; MEMBERSHIP_MOVE_BOUND_SECONDS raises it for a figure on a loaded machine.
MOVE_BOUND_SECONDS = float(os.environ.get("MEMBERSHIP_MOVE_BOUND_SECONDS", "60"))


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "trio_kv", "cluster", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=MOVE_BOUND_SECONDS + 60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _missing_at_all(cluster: ProcessCluster, index: int, keys: list[str]) -> list[str]:
    """The keys not read back at ALL (every member of each key's list
    merged) through node ``index``; a read refused with NOREPLICAS (a
    stalled replica on the loaded machine, not a lost key) is asked again."""
    missing = []
    with cluster.client(index) as client:
        assert client.execute_command("TKV.CONSISTENCY", "ALL") in (b"OK", "OK", True)
        for first in range(0, len(keys), LOAD_BATCH):
            chunk = keys[first : first + LOAD_BATCH]
            for _attempt in range(5):
                pipe = client.pipeline(transaction=False)
                for key in chunk:
                    pipe.get(key)
                values = pipe.execute(raise_on_error=False)
                retry = [key for key, value in zip(chunk, values) if isinstance(value, redis.ResponseError)]
                missing += [key for key, value in zip(chunk, values)
                            if not isinstance(value, redis.ResponseError) and value != key.encode()]
                if not retry:
                    break
                chunk = retry
                time.sleep(0.5)
            else:
                raise AssertionError(f"reading at ALL kept failing: {chunk[:3]}")
    return missing


def _info(cluster: ProcessCluster, index: int) -> dict:
    with cluster.client(index) as client:
        return client.info("cluster")


def _settled(cluster: ProcessCluster, indexes: list[int], epoch: int, moves_done: int) -> bool:
    infos = [_info(cluster, index) for index in indexes]
    return (
        all(info["cluster_bus_epoch"] == epoch and info["cluster_bus_members_up"] == len(indexes) for info in infos)
        and len({info["cluster_bus_ring_hash"] for info in infos}) == 1
        and sum(info.get("cluster_moves_done", 0) for info in infos) == moves_done
        and sum(info.get("cluster_moves_pending", 0) + info.get("cluster_moves_streaming", 0) for info in infos) == 0
    )


class _Client(threading.Thread):
    """Writes new keys and reads loaded ones until stopped; counts errors."""

    def __init__(self, cluster: ProcessCluster) -> None:
        super().__init__(daemon=True)
        self.client = RedisCluster(host=cluster.hosts[0], port=cluster.port, socket_timeout=10)
        self.stopping = threading.Event()
        self.written: list[str] = []
        self.reads = 0
        self.errors: list[str] = []

    def run(self) -> None:
        index = 0
        while not self.stopping.is_set():
            key = f"live:{index}"
            try:
                self.client.set(key, key)
                self.written.append(key)
                loaded = f"key:{(index * 7919) % KEYS}"
                value = self.client.get(loaded)
                if value != loaded.encode():
                    self.errors.append(f"{loaded} read {value!r} at {time.monotonic():.3f}")
                self.reads += 1
            except redis.RedisError as error:
                self.errors.append(f"{key}: {type(error).__name__}: {error} at {time.monotonic():.3f}")
            index += 1


def _load(client: RedisCluster, keys: list[str]) -> None:
    """MSET in slot groups; a batch refused (NOREPLICAS when a loaded 2-core
    machine stalls a replica past the write timeout) is sent again: the
    load is not what this test measures."""
    for _attempt in range(5):
        try:
            client.mset_nonatomic({key: key for key in keys})
            return
        except redis.ResponseError as error:
            if "NOREPLICAS" not in str(error):
                raise
            time.sleep(0.5)
    raise AssertionError("the load kept failing with NOREPLICAS")


def _all_readable(client: RedisCluster, keys: list[str]) -> list[str]:
    """The keys not read back; a batch refused with NOREPLICAS (a stalled
    replica on the loaded machine; not a lost key) is read again."""
    missing = []
    for first in range(0, len(keys), LOAD_BATCH):
        chunk = keys[first : first + LOAD_BATCH]
        for _attempt in range(5):
            try:
                values = client.mget_nonatomic(chunk)
                break
            except redis.ResponseError as error:
                if "NOREPLICAS" not in str(error):
                    raise
                time.sleep(0.5)
        else:
            raise AssertionError("reading back kept failing with NOREPLICAS")
        missing += [key for key, value in zip(chunk, values) if value != key.encode()]
    return missing


def _aae_rounds_with(cluster: ProcessCluster, index: int, peer: str) -> int:
    """Anti-entropy rounds node ``index`` ran with ``peer`` (INFO cluster's
    ``cluster_aae_peer<i>`` lines; 0 when it has none with that peer)."""
    for name, value in _info(cluster, index).items():
        if name.startswith("cluster_aae_peer") and isinstance(value, dict) and value.get("peer") == peer:
            return int(value.get("rounds", 0))
    return 0


def test_add_a_fourth_node_then_remove_it_with_clients_running() -> None:
    with ProcessCluster(4, "--cluster-aae-interval", "1") as cluster:
        first_three = ",".join(f"{host}:{cluster.port}" for host in cluster.hosts[:3])
        cluster.seeds = first_three
        for index in range(3):
            cluster.start(index)
        cluster.wait_for(lambda: all(cluster.members_up(index) == 3 for index in range(3)))
        loader = RedisCluster(host=cluster.hosts[0], port=cluster.port, socket_timeout=30)
        keys = [f"key:{index}" for index in range(KEYS)]
        started = time.monotonic()
        for first in range(0, KEYS, LOAD_BATCH):
            _load(loader, keys[first : first + LOAD_BATCH])
        print(f"\nloaded {KEYS} keys in {time.monotonic() - started:.1f} s")

        # The 4th node joins: it names itself and one member, holds no slot and
        # is refused by the members until added.
        cluster.seeds = f"{cluster.hosts[0]}:{cluster.port},{cluster.hosts[3]}:{cluster.port}"
        cluster.flags = (*cluster.flags, "--cluster-join", "yes")
        cluster.start(3)
        plan = _cli("plan", "add", f"{cluster.hosts[3]}:{cluster.port}", "-h", cluster.hosts[1], "-p", str(cluster.port))
        assert "would move 16 partitions" in plan and "48 replica places" in plan, plan

        client = _Client(cluster)
        client.start()
        try:
            time.sleep(1.0)
            started = time.monotonic()
            print(f"add at {time.monotonic():.3f}")
            output = _cli("add", f"{cluster.hosts[3]}:{cluster.port}", "-h", cluster.hosts[1], "-p", str(cluster.port))
            assert "moves 16 partitions" in output and "final ring epoch 3" in output, output
            elapsed = time.monotonic() - started
            # Each of the 48 lists the 4th node joins: the primary copies to it,
            # and so does the member it displaces.
            cluster.wait_for(lambda: _settled(cluster, [0, 1, 2, 3], epoch=3, moves_done=2 * 48))
            print(f"added: 16 of 64 partitions moved, 96 copies done, final ring in {elapsed:.1f} s\n{output}")
            assert elapsed < MOVE_BOUND_SECONDS
            time.sleep(1.0)
        finally:
            client.stopping.set()
            client.join(timeout=30)
        print(f"client during the add: {len(client.written)} writes, {client.reads} reads, {len(client.errors)} errors")
        written = client.written
        for index in range(4):
            info = _info(cluster, index)
            print(f"node {index}: " + ", ".join(f"{name[8:]}={value}" for name, value in info.items()
                                                 if name.startswith("cluster_") and "_bus_" not in name
                                                 and "aae" not in name and value))
        assert client.errors == [], client.errors[:5]
        assert client.reads > 0
        checker = RedisCluster(host=cluster.hosts[3], port=cluster.port, socket_timeout=30)
        assert _all_readable(checker, keys + client.written) == []
        with cluster.client(3) as fourth:
            print(f"the 4th node holds {fourth.dbsize()} keys")
        # Anti-entropy runs with the member the new ring brought, not only
        # with the peers a node had at start.
        newcomer = f"{cluster.hosts[3]}:{cluster.port}"
        cluster.wait_for(lambda: _aae_rounds_with(cluster, 0, newcomer) >= 1)

        client = _Client(cluster)
        client.start()
        try:
            time.sleep(1.0)
            started = time.monotonic()
            output = _cli("remove", f"{cluster.hosts[3]}:{cluster.port}", "-h", cluster.hosts[2],
                          "-p", str(cluster.port))
            print(f"removed in {time.monotonic() - started:.1f} s\n{output}")
            # Its 48 places: each handed off by the leaver to the 3 members of
            # its new list, and copied by the primary to the member gained.
            cluster.wait_for(lambda: _settled(cluster, [0, 1, 2], epoch=5, moves_done=2 * 48 + 48)
                             and _info(cluster, 3)["cluster_moves_done"] == 3 * 48)
            time.sleep(1.0)
        finally:
            client.stopping.set()
            client.join(timeout=30)
        print(f"client during the removal: {len(client.written)} writes, {client.reads} reads, "
              f"{len(client.errors)} errors")
        assert client.errors == [], client.errors[:5]
        # The removed node says so, and serves no partition.
        assert _info(cluster, 3)["cluster_bus_ring_state"] == "removed"
        cluster.node(3).stop()
        assert _missing_at_all(cluster, 0, keys + written + client.written) == []


def test_a_removed_node_hands_off_a_write_only_it_holds() -> None:
    """The write reached the leaver alone (its two partners paused, level
    ONE, no hints, no anti-entropy): removing it copies it to the members
    that stay (before: the copies came from a remaining member, which
    lacked it)."""
    with ProcessCluster(4, "--cluster-aae-interval", "0", "--cluster-hinted-handoff", "no") as cluster:
        cluster.start_all()
        leaver = f"{cluster.hosts[3]}:{cluster.port}"
        document = membership_cli._request(cluster.hosts[0], cluster.port + 10000, None, b"TKV.RING")
        assert isinstance(document, list), document
        fields = dict(zip(document[::2], document[1::2]))
        partition, first_slot, _last, chosen = next(
            entry for entry in fields[b"preference_lists"] if leaver.encode() in entry[3])
        key = next(f"only-on-leaver:{index}" for index in range(100_000)
                   if key_slot(f"only-on-leaver:{index}".encode()) // 256 == partition)
        partners = [cluster.hosts.index(member.decode().rpartition(":")[0]) for member in chosen
                    if member.decode() != leaver]
        for index in partners:
            cluster.pause(index)
        try:
            cluster.wait_for(lambda: cluster.members_up(3) == 2)
            with cluster.client(3) as client:
                client.execute_command("TKV.CONSISTENCY", "ONE")
                assert client.set(key, b"handed off")
        finally:
            for index in partners:
                cluster.resume(index)
        cluster.wait_for(cluster.meshed)
        output = _cli("remove", leaver, "-h", cluster.hosts[0], "-p", str(cluster.port))
        assert "final ring epoch 3" in output, output
        cluster.wait_for(lambda: _info(cluster, 3)["cluster_bus_ring_state"] == "removed")
        cluster.node(3).stop()
        with cluster.client(0) as client:
            client.execute_command("TKV.CONSISTENCY", "ALL")
            assert client.get(key) == b"handed off"


def test_two_admins_at_once_one_wins_and_every_node_ends_on_one_ring(tmp_path) -> None:
    """With --cluster-secret (the nodes and the tool read it from
    TRIO_KV_CLUSTER_SECRET; the second tool from --cluster-secret-file):
    ``cluster add`` of two new nodes asked of two members at the same
    moment: one change wins, the other is refused naming the member that
    refused it, and the three members and the winner end on one ring."""
    secret = "two admins, one ring"
    env = {**os.environ, "TRIO_KV_CLUSTER_SECRET": secret}
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    with ProcessCluster(5, "--cluster-aae-interval", "1",
                        node_env=lambda index: {"TRIO_KV_CLUSTER_SECRET": secret}) as cluster:
        members = ",".join(f"{host}:{cluster.port}" for host in cluster.hosts[:3])
        cluster.seeds = members
        for index in range(3):
            cluster.start(index)
        cluster.wait_for(lambda: all(cluster.members_up(index) == 3 for index in range(3)))
        with cluster.client(0) as client:
            for index in range(200):
                client.execute_command("SET", f"race:{index}", index)
        cluster.flags = (*cluster.flags, "--cluster-join", "yes")
        for index in (3, 4):
            cluster.seeds = f"{cluster.hosts[0]}:{cluster.port},{cluster.hosts[index]}:{cluster.port}"
            cluster.start(index)
        port = str(cluster.port)
        newcomers = [f"{cluster.hosts[index]}:{port}" for index in (3, 4)]

        # Without the secret the tool is refused, and says why.
        bare = {name: value for name, value in os.environ.items() if name != "TRIO_KV_CLUSTER_SECRET"}
        done = subprocess.run([sys.executable, "-m", "trio_kv", "cluster", "plan", "add", newcomers[0],
                               "-h", cluster.hosts[0], "-p", port], cwd=REPO, capture_output=True, text=True,
                              timeout=60, env=bare)
        assert done.returncode == 1 and "needs the bus handshake" in done.stderr, done.stderr
        assert "would move 16 partitions" in _cli("plan", "add", newcomers[0], "-h", cluster.hosts[0], "-p", port,
                                                  env=env)

        commands = [
            [sys.executable, "-m", "trio_kv", "cluster", "add", newcomers[0], "-h", cluster.hosts[0], "-p", port],
            [sys.executable, "-m", "trio_kv", "cluster", "add", newcomers[1], "-h", cluster.hosts[1], "-p", port,
             "--cluster-secret-file", str(secret_file)],
        ]
        processes = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=env if index == 0 else bare)
                     for index, command in enumerate(commands)]
        outputs = [process.communicate(timeout=120) for process in processes]
        codes = [process.returncode for process in processes]
        print("\n".join(f"admin {index}: exit {code}\n{out}{err}"
                        for index, (code, (out, err)) in enumerate(zip(codes, outputs))))
        assert sorted(codes) == [0, 1], codes
        winner = codes.index(0)
        loser_error = outputs[1 - winner][1]
        assert "refused" in loser_error and ("another ring change" in loser_error or "staged change" in loser_error
                                             or "the ring changed" in loser_error), loser_error
        ring = [0, 1, 2, 3 + winner]

        def one_ring() -> bool:
            infos = [_info(cluster, index) for index in ring]
            return (all(info["cluster_bus_epoch"] == 3 and info["cluster_bus_members"] == 4 for info in infos)
                    and len({info["cluster_bus_ring_hash"] for info in infos}) == 1)

        cluster.wait_for(one_ring)
        # The loser's node was never added: it holds no ring but its join.
        assert _info(cluster, 4 - winner)["cluster_bus_epoch"] != 3
