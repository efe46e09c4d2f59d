"""Cluster mode with one node (``--cluster-enabled yes``, no seeds) against
real redis-server 7.0 cluster nodes, and real cluster clients against it.

The references (tests/integration/redis_cluster_reference.py):

* a lone redis-server cluster node owning all 16,384 slots (ADDSLOTSRANGE):
  what an emulated trio_kv node is, so most replies are compared with it
  exactly, ids, ports, hosts and epochs normalized;
* three redis-server cluster nodes joined by ``redis-cli --cluster create
  ... --cluster-replicas 0 --cluster-yes``: trio_kv's CLUSTER SLOTS /
  SHARDS / NODES / INFO entries must have their shapes and field names;
* a plain redis-server (cluster mode off) for what trio_kv answers without
  ``--cluster-enabled``.

Then ``redis.RedisCluster`` (RESP2 and RESP3), ``redis-cli -c``,
``redis-cli --cluster check`` and ``redis-benchmark --cluster`` against a
trio_kv node, and the node id kept in the data directory across restarts.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from harness.server_process import ServerProcess

from ..conftest import REPO, require_tool
from .redis_cluster_reference import (
    HOST,
    TypedResp,
    free_port_with_bus,
    lone_cluster_node,
    plain,
    redis_node,
    three_node_cluster,
)

pytestmark = pytest.mark.slow

HEX_ID = re.compile(rb"\b[0-9a-f]{40}\b")
# CLUSTER NODES' address field: [ip]:port@busport.
NODE_ADDRESS = re.compile(rb"(?:\d+\.\d+\.\d+\.\d+)?:\d+@\d+")
IP_OR_EMPTY = re.compile(rb"(?:\d+\.\d+\.\d+\.\d+)?")
EPOCH_FIELDS = re.compile(rb"(cluster_(?:current|my)_epoch):\d+")


def _text(data: bytes) -> bytes:
    data = HEX_ID.sub(b"<id>", data)
    data = NODE_ADDRESS.sub(b"<ip>:<port>@<bus-port>", data)
    return EPOCH_FIELDS.sub(rb"\1:<epoch>", data)


def normalized(reply: tuple) -> tuple:
    """``reply`` with node ids, node addresses and epochs replaced by
    placeholders (they differ by nature); everything else exact."""
    kind = reply[0]
    if kind in ("array", "set"):
        return (kind, [normalized(item) for item in reply[1]])
    if kind == "map":
        return (kind, [(normalized(key), normalized(value)) for key, value in reply[1]])
    if kind == "bulk":
        return (kind, _text(reply[1]))
    if kind == "verbatim":
        return (kind, reply[1], _text(reply[2]))
    if kind in ("simple", "error"):
        return (kind, _text(reply[1].encode()).decode())
    return reply


def shape(reply: tuple) -> tuple:
    """``reply``'s structure: integers and hosts reduced to their type, ids
    to ``<id>``; names (map keys, roles, health) kept."""
    kind = reply[0]
    if kind in ("array", "set"):
        return (kind, [shape(item) for item in reply[1]])
    if kind == "map":
        return (kind, [(shape(key), shape(value)) for key, value in reply[1]])
    if kind == "int":
        return ("int",)
    if kind == "bulk":
        data = reply[1]
        if HEX_ID.fullmatch(data):
            return ("bulk", b"<id>")
        if IP_OR_EMPTY.fullmatch(data):
            return ("bulk", b"<host>")
        return ("bulk", data)
    return reply


def _connect(port: int, protocol: int) -> TypedResp:
    connection = TypedResp((HOST, port))
    if protocol == 3:
        assert connection.call("HELLO", 3)[0] == "map"
    return connection


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    require_tool("redis-server")
    require_tool("redis-cli")
    directory: Path = tmp_path_factory.mktemp("redis-cluster")
    with (
        lone_cluster_node(directory / "lone") as lone,
        three_node_cluster(directory / "three") as three,
        redis_node(directory / "standalone", cluster=False) as standalone,
    ):
        yield {"lone": lone, "three": three, "standalone": standalone}


@pytest.fixture(scope="module")
def trio_kv_node() -> Iterator[int]:
    with ServerProcess.start(REPO, "--cluster-enabled", "yes") as server:
        yield server.address[1]


@pytest.fixture(scope="module")
def trio_kv_plain() -> Iterator[int]:
    with ServerProcess.start(REPO, "--appendonly", "no") as server:
        yield server.address[1]


def _three_node_entry(ports: list[int], protocol: int, command: str) -> tuple:
    with _connect(ports[0], protocol) as connection:
        reply = connection.call("CLUSTER", command)
    assert reply[0] == "array" and len(reply[1]) == 3, reply
    return reply[1][0]


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("command", ["SLOTS", "SHARDS"])
def test_slots_and_shards_have_redis_shapes(references, trio_kv_node, protocol: int, command: str) -> None:
    with _connect(trio_kv_node, protocol) as ours, _connect(references["lone"], protocol) as lone:
        mine, lone_reply = ours.call("CLUSTER", command), lone.call("CLUSTER", command)
    # One node owning everything: the lone redis-server node's reply, exactly.
    assert shape(mine) == shape(lone_reply)
    first = plain(mine)[0]
    if command == "SLOTS":
        assert first[:2] == [0, 16383]
    else:  # a map (RESP3) or its flat array (RESP2)
        assert (first[b"slots"] if isinstance(first, dict) else first[first.index(b"slots") + 1]) == [0, 16383]
    # Each entry shaped as a three-node cluster's entries are.
    assert shape(mine[1][0]) == shape(_three_node_entry(references["three"], protocol, command))


def _node_line_shape(line: bytes) -> list[bytes]:
    fields = _text(line).split(b" ")
    return [b"<int>" if field.isdigit() else (b"<slots>" if re.fullmatch(rb"\d+-\d+", field) else field)
            for field in fields]


@pytest.mark.parametrize("protocol", [2, 3])
def test_nodes_info_and_myid_have_redis_shapes(references, trio_kv_node, protocol: int) -> None:
    with _connect(trio_kv_node, protocol) as ours, _connect(references["lone"], protocol) as lone, \
            _connect(references["three"][0], protocol) as three:
        replies = {
            name: [connection.call("CLUSTER", "NODES"), connection.call("CLUSTER", "INFO"),
                   connection.call("CLUSTER", "MYID")]
            for name, connection in (("ours", ours), ("lone", lone), ("three", three))
        }
    (nodes, info, myid), (lone_nodes, lone_info, _), (three_nodes, three_info, _) = (
        replies["ours"], replies["lone"], replies["three"]
    )
    assert nodes[0] == lone_nodes[0] == three_nodes[0]  # bulk in RESP2, verbatim in RESP3
    assert [_node_line_shape(line) for line in plain(nodes).splitlines()] == [
        _node_line_shape(line) for line in plain(lone_nodes).splitlines()
    ]
    three_myself = [line for line in plain(three_nodes).splitlines() if b"myself" in line]
    assert _node_line_shape(plain(nodes).splitlines()[0]) == _node_line_shape(three_myself[0])
    assert plain(nodes).endswith(b"\n")
    # CLUSTER INFO: the lone node's fields and values (epochs aside); every
    # field one a three-node cluster shows too.
    assert normalized(info) == normalized(lone_info)
    three_fields = {line.split(b":")[0] for line in plain(three_info).splitlines()}
    assert {line.split(b":")[0] for line in plain(info).splitlines()} <= three_fields
    assert myid[0] == "bulk" and HEX_ID.fullmatch(myid[1])
    assert plain(nodes).startswith(myid[1] + b" ")


# Requests whose replies (error texts included) must equal a lone
# redis-server cluster node's, ids and addresses normalized. Run in order,
# as one pipeline, on both servers.
ENABLED_REQUESTS = [
    "CLUSTER KEYSLOT foo", "CLUSTER KEYSLOT {user}a", "CLUSTER KEYSLOT", "CLUSTER KEYSLOT a b",
    "CLUSTER COUNTKEYSINSLOT 12182", "CLUSTER COUNTKEYSINSLOT -1", "CLUSTER COUNTKEYSINSLOT 16384",
    "CLUSTER COUNTKEYSINSLOT abc", "CLUSTER COUNTKEYSINSLOT 1.5",
    "CLUSTER GETKEYSINSLOT 12182 10", "CLUSTER GETKEYSINSLOT 12182 -1", "CLUSTER GETKEYSINSLOT 12182 abc",
    "CLUSTER GETKEYSINSLOT 16384 1", "CLUSTER GETKEYSINSLOT -5 1", "CLUSTER GETKEYSINSLOT 12182 0",
    "CLUSTER FOO", "CLUSTER", "CLUSTER MYID x", "CLUSTER INFO x", "CLUSTER HELP", "CLUSTER LINKS",
    "CLUSTER FAILOVER", "CLUSTER FAILOVER FORCE", "CLUSTER FAILOVER nonsense", "CLUSTER FAILOVER a b",
    "CLUSTER RESET foo", "CLUSTER RESET a b", "CLUSTER FORGET abc", "CLUSTER REPLICAS abc", "CLUSTER SLAVES abc",
    "CLUSTER REPLICATE abc", "CLUSTER COUNT-FAILURE-REPORTS abc", "CLUSTER SAVECONFIG",
    "READONLY", "READWRITE", "ASKING", "READONLY x",
    "WAIT 0 0", "WAIT 1 10", "WAIT abc 0", "WAIT 0 abc", "WAIT 0 -1", "WAIT -1 0", "WAIT 0 1.5", "WAIT 0",
    "SELECT 0", "SELECT 1", "SELECT abc", "SELECT -1",
    "MGET a b", "MGET {a}1 {a}2", "MSET a 1 b 2", "MSET a 1 b", "MSETNX a 1 b 2", "DEL a b", "UNLINK a b",
    "EXISTS a b", "RENAME a b", "RENAMENX a b", "RENAME {a}1 {a}2", "WATCH a b", "WATCH {a}1 {a}2", "UNWATCH",
    "DEL", "MGET nosuch1 nosuch2",
    # Queued commands each on one slot, but on different slots: EXEC
    # answers CROSSSLOT and discards the transaction (a is not set).
    "MULTI", "SET a 1", "SET b 2", "EXEC", "GET a",
    # A queued request that spans slots fails the transaction.
    "MULTI", "MGET a b", "SET a 1", "EXEC", "GET a",
    "MULTI", "WATCH a b", "EXEC",
    "MULTI", "SET {t}1 1", "GET {t}2", "EXEC",
    "MULTI", "PING", "EXEC",
    # A watched key on another slot does not count.
    "WATCH a", "MULTI", "SET b 1", "EXEC",
    "MULTI", "SELECT 1", "EXEC",
    # An EXEC with arguments discards the transaction at once (EXECABORT naming the arity).
    "MULTI", "SET {t}1 1", "EXEC x", "EXEC", "GET {t}1",
    "INFO cluster",
]
# Without cluster mode: trio_kv as a plain redis-server answers.
DISABLED_REQUESTS = [
    "CLUSTER INFO", "CLUSTER SLOTS", "CLUSTER SHARDS", "CLUSTER NODES", "CLUSTER MYID", "CLUSTER HELP",
    "CLUSTER FOO", "CLUSTER KEYSLOT", "CLUSTER KEYSLOT foo", "CLUSTER COUNTKEYSINSLOT 1",
    "READONLY", "READWRITE", "ASKING", "READONLY x",
    "WAIT 0 0", "WAIT abc 0", "WAIT 0 abc", "WAIT 0 -1", "WAIT -1 0", "WAIT 0",
    "SELECT 0", "SELECT abc", "MGET a b", "MSET a 1 b 2", "DEL a b", "MULTI", "SET a 1", "SET b 2", "EXEC",
    "INFO cluster",
]


def _run(port: int, protocol: int, requests: list[str]) -> list[tuple]:
    with _connect(port, protocol) as connection:
        connection.call("FLUSHALL")
        return [normalized(reply) for reply in connection.pipeline([request.split(" ") for request in requests])]


@pytest.mark.parametrize("protocol", [2, 3])
def test_replies_and_errors_equal_a_lone_redis_cluster_node(references, trio_kv_node, protocol: int) -> None:
    mine = _run(trio_kv_node, protocol, ENABLED_REQUESTS)
    theirs = _run(references["lone"], protocol, ENABLED_REQUESTS)
    assert [(request, reply) for request, reply in zip(ENABLED_REQUESTS, mine)] == list(
        zip(ENABLED_REQUESTS, theirs)
    )


@pytest.mark.parametrize("protocol", [2, 3])
def test_cluster_mode_off_answers_as_redis_server(references, trio_kv_plain, protocol: int) -> None:
    mine = _run(trio_kv_plain, protocol, DISABLED_REQUESTS)
    theirs = _run(references["standalone"], protocol, DISABLED_REQUESTS)
    assert list(zip(DISABLED_REQUESTS, mine)) == list(zip(DISABLED_REQUESTS, theirs))


def test_hello_and_info_say_cluster_mode(references, trio_kv_node) -> None:
    for port in (trio_kv_node, references["lone"]):
        with TypedResp((HOST, port)) as connection:
            assert plain(connection.call("HELLO", 3))[b"mode"] == b"cluster"
            assert b"redis_mode:cluster" in plain(connection.call("INFO", "server"))


def test_keys_per_slot_equal_redis(references, trio_kv_node) -> None:
    keys = [f"key:{index}" for index in range(300)] + [f"{{tag}}:{index}" for index in range(40)]
    results = []
    for port in (trio_kv_node, references["lone"]):
        with TypedResp((HOST, port)) as connection:
            connection.call("FLUSHALL")
            for key in keys:
                connection.call("SET", key, "v")
            connection.call("DEL", "{tag}:0", "{tag}:1", "{tag}:nosuch")
            connection.call("SET", "{tag}:2", "again")
            slot = plain(connection.call("CLUSTER", "KEYSLOT", "{tag}"))
            other = plain(connection.call("CLUSTER", "KEYSLOT", "key:7"))
            results.append(
                (
                    slot,
                    plain(connection.call("CLUSTER", "COUNTKEYSINSLOT", slot)),
                    plain(connection.call("CLUSTER", "COUNTKEYSINSLOT", other)),
                    sorted(plain(connection.call("CLUSTER", "GETKEYSINSLOT", slot, 1000))),
                    len(plain(connection.call("CLUSTER", "GETKEYSINSLOT", slot, 5))),
                    plain(connection.call("CLUSTER", "GETKEYSINSLOT", other, 10)),
                    plain(connection.call("CLUSTER", "GETKEYSINSLOT", (slot + 1) % 16384, 10)),
                )
            )
    assert results[0] == results[1]
    assert results[0][1] == 38 and results[0][4] == 5


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_cluster_client(trio_kv_node, protocol: int) -> None:
    client = redis.RedisCluster(host=HOST, port=trio_kv_node, protocol=protocol)
    try:
        client.flushall()
        keys = {f"rc:{protocol}:{index}": str(index) for index in range(200)}
        for key, value in keys.items():
            assert client.set(key, value)
        assert client.get("rc:%d:5" % protocol) == b"5"
        assert client.mget_nonatomic(list(keys)) == [value.encode() for value in keys.values()]
        client.mset_nonatomic({"{m}a": "1", "other": "2"})
        seen = list(client.scan_iter(match=f"rc:{protocol}:*", count=50))
        assert sorted(seen) == sorted(key.encode() for key in keys)
        assert client.cluster_keyslot("foo") == 12182
        with pytest.raises(redis.exceptions.ClusterCrossSlotError):
            client.execute_command("MGET", "a", "b", target_nodes=redis.RedisCluster.PRIMARIES)
    finally:
        client.close()


def test_redis_cli_follows_the_cluster(trio_kv_node) -> None:
    require_tool("redis-cli")

    def cli(*args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-c", "-p", str(trio_kv_node), *args], capture_output=True, text=True, timeout=30
        ).stdout.strip()

    assert cli("SET", "cli-key", "v") == "OK"
    assert cli("GET", "cli-key") == "v"
    assert cli("MGET", "a", "b") == "CROSSSLOT Keys in request don't hash to the same slot"
    check = subprocess.run(
        ["redis-cli", "--cluster", "check", f"{HOST}:{trio_kv_node}"], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout
    assert "[OK] All 16384 slots covered." in check.stdout


def test_redis_benchmark(references, trio_kv_node) -> None:
    """redis-benchmark --cluster refuses a one-node cluster (its own check,
    'Invalid cluster: 1 node(s).'), exactly as it refuses a lone
    redis-server cluster node; without --cluster it runs."""
    require_tool("redis-benchmark")

    def benchmark(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["redis-benchmark", *extra, "-p", str(port), "-t", "set,get", "-n", "2000", "-q"],
            capture_output=True, text=True, timeout=120,
        )

    mine, theirs = benchmark(trio_kv_node, "--cluster"), benchmark(references["lone"], "--cluster")
    assert (mine.returncode, mine.stderr.strip()) == (theirs.returncode, theirs.stderr.strip())
    assert "Invalid cluster: 1 node(s)." in mine.stderr
    plain_run = benchmark(trio_kv_node)
    assert plain_run.returncode == 0 and "SET:" in plain_run.stdout and "GET:" in plain_run.stdout


def test_node_id_survives_restart_and_memory_only_gets_a_fresh_one(tmp_path: Path) -> None:
    def myid(*flags: str, data_dir: Path | None = None) -> str:
        with ServerProcess.start(REPO, "--cluster-enabled", "yes", *flags, data_dir=data_dir) as server:
            with TypedResp(server.address) as connection:
                return plain(connection.call("CLUSTER", "MYID")).decode()

    first = myid(data_dir=tmp_path)
    assert (tmp_path / "node-id").read_text().strip() == first
    assert myid(data_dir=tmp_path) == first
    memory_only = {myid("--appendonly", "no", data_dir=tmp_path / "m1"), myid("--appendonly", "no")}
    assert len(memory_only) == 2 and first not in memory_only
    assert not (tmp_path / "m1" / "node-id").exists()


@pytest.mark.parametrize("protocol", [2, 3])
def test_command_info_and_docs_of_the_cluster_commands_equal_redis(references, trio_kv_plain, protocol: int) -> None:
    names = ["readonly", "readwrite", "asking", "wait"]
    replies = []
    for port in (trio_kv_plain, references["standalone"]):
        with _connect(port, protocol) as connection:
            info = connection.call("COMMAND", "INFO", *names)
            docs = plain(connection.call("COMMAND", "DOCS", *names, "cluster"))
        if isinstance(docs, list):  # RESP2: flat key, value arrays
            docs = {docs[i]: docs[i + 1] for i in range(0, len(docs), 2)}

        def fields(doc: object) -> dict:
            doc = doc if isinstance(doc, dict) else {doc[i]: doc[i + 1] for i in range(0, len(doc), 2)}
            return {key: doc[key] for key in (b"summary", b"since", b"group")}

        subcommands = docs[b"cluster"]
        subcommands = subcommands if isinstance(subcommands, dict) else {
            subcommands[i]: subcommands[i + 1] for i in range(0, len(subcommands), 2)
        }
        subcommands = subcommands[b"subcommands"]
        subcommands = subcommands if isinstance(subcommands, dict) else {
            subcommands[i]: subcommands[i + 1] for i in range(0, len(subcommands), 2)
        }
        replies.append(
            (info, {name: fields(docs[name.encode()]) for name in names},
             {name: fields(doc)[b"summary"] for name, doc in subcommands.items() if name != b"cluster|help"})
        )
    assert replies[0] == replies[1]


def test_config_set_port_moves_the_one_node_cluster() -> None:
    with ServerProcess.start(REPO, "--cluster-enabled", "yes", "--appendonly", "no") as server:
        new_port = free_port_with_bus()
        with TypedResp(server.address) as connection:
            assert connection.call("CONFIG", "SET", "port", new_port) == ("simple", "OK")
        with TypedResp((HOST, new_port)) as connection:
            assert plain(connection.call("CLUSTER", "SLOTS"))[0][2][:2] == [HOST.encode(), new_port]
            assert f":{new_port}@{new_port + 10000} myself,master".encode() in plain(
                connection.call("CLUSTER", "NODES")
            )


def test_a_damaged_node_id_file_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "node-id").write_text("not an id\n")
    server = ServerProcess.launch(REPO, "--cluster-enabled", "yes", data_dir=tmp_path)
    try:
        assert server.wait_listening() is None
        assert server.process.returncode != 0
        assert "not a node id" in server.log()
    finally:
        server.stop()
    assert (tmp_path / "node-id").read_text() == "not an id\n"
