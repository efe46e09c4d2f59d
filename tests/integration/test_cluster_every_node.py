"""Plain clients against every node of a three-node cluster of real
processes, as a user types them: ``nc`` on the line protocol, ``redis-cli``
without ``-c`` and ``curl`` on the HTTP JSON API.

The nodes run with N=2 (``--cluster-replicas 2``), so about a third of the
keys written through a node are not replicated on it: that node forwards
them (``INFO cluster``'s ``cluster_forwarded`` counts them) and coordinates
the rest. For each node in turn: SETs over ``nc`` answer ``OK``, GETs over
``nc`` on the same node answer ``VALUE ...``, and the two other nodes return
every value to ``redis-cli`` and to ``curl``. Then DELs over ``nc`` on one
node are seen from the two others by every client (empty reply, 404,
``NOT_FOUND``). Every process is stopped by PID (``ProcessCluster``);
every client run is bounded by its own timeout.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from harness import clients
from ..conftest import require_tool

from .process_cluster import ProcessCluster

pytestmark = pytest.mark.slow
# With N=2 of 3, a node replicates a given key with probability 2/3: the
# chance that all of a node's keys are local (or all forwarded) is below 2e-5.
KEYS_PER_NODE = 30
CLIENT_SECONDS = 30


@pytest.fixture(scope="module")
def cluster() -> Iterator[ProcessCluster]:
    """Three meshed nodes, two replicas per partition, an HTTP listener each."""
    with ProcessCluster(3, "--cluster-replicas", "2", "--http-port", "0") as three:
        three.start_all()
        yield three


def _keys(writer: int) -> list[str]:
    return [f"every:{writer}:{i}" for i in range(KEYS_PER_NODE)]


def _value(writer: int, i: int) -> str:
    return f"from node {writer} #{i}"  # spaces: quoted over nc, raw over redis-cli


def _nc(cluster: ProcessCluster, index: int, requests: list[str]) -> list[str]:
    require_tool("nc")
    replies = clients.lines("nc", (cluster.hosts[index], cluster.port), requests)
    assert len(replies) == len(requests), replies
    return replies


def _redis_cli(cluster: ProcessCluster, index: int, requests: list[str]) -> list[str]:
    """``redis-cli -h H -p P`` (no ``-c``) with one command a line on stdin: one reply a line."""
    redis_cli = require_tool("redis-cli")
    out = subprocess.run([redis_cli, "-h", cluster.hosts[index], "-p", str(cluster.port)],
                         input="".join(request + "\n" for request in requests),
                         capture_output=True, text=True, timeout=CLIENT_SECONDS)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _curl_keys(cluster: ProcessCluster, index: int, keys: list[str]) -> list[tuple[int, dict]]:
    """``curl -s`` GET /key/{k} for each key on node ``index``: (status, JSON body) each."""
    curl = require_tool("curl")
    host, port = cluster.http_address(index)
    out = subprocess.run([curl, "-s", "-w", "\\n%{http_code}\\n", *(f"http://{host}:{port}/key/{key}" for key in keys)],
                         capture_output=True, text=True, timeout=CLIENT_SECONDS)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return [(int(lines[i + 1]), json.loads(lines[i])) for i in range(0, len(lines), 2)]


@pytest.mark.parametrize("writer", [0, 1, 2])
def test_nc_writes_through_a_node_are_read_by_redis_cli_and_curl_on_every_other(
        cluster: ProcessCluster, writer: int) -> None:
    keys = _keys(writer)
    values = [_value(writer, i) for i in range(len(keys))]
    forwarded_before = cluster.counters(writer)["forwarded"]
    assert _nc(cluster, writer, [f'SET {key} "{value}"' for key, value in zip(keys, values)]) == ["OK"] * len(keys)
    forwarded = cluster.counters(writer)["forwarded"] - forwarded_before
    print(f"node {writer}: {forwarded} of {len(keys)} SETs forwarded, the rest coordinated there")
    assert 0 < forwarded < len(keys)
    assert _nc(cluster, writer, [f"GET {key}" for key in keys]) == [f"VALUE {value}" for value in values]
    for reader in range(3):
        if reader == writer:
            continue
        assert _redis_cli(cluster, reader, [f"GET {key}" for key in keys]) == values
        assert _curl_keys(cluster, reader, keys) == [(200, {"key": key, "value": value})
                                                     for key, value in zip(keys, values)]


def test_a_del_over_nc_on_one_node_is_seen_from_the_others(cluster: ProcessCluster) -> None:
    keys = _keys(3)
    assert _nc(cluster, 1, [f"SET {key} v" for key in keys]) == ["OK"] * len(keys)
    assert _nc(cluster, 0, [f"DEL {key}" for key in keys]) == ["OK"] * len(keys)  # OK: each existed
    for reader in (1, 2):
        assert _redis_cli(cluster, reader, [f"EXISTS {key}" for key in keys]) == ["0"] * len(keys)
        assert _redis_cli(cluster, reader, [f"GET {key}" for key in keys]) == [""] * len(keys)  # nil
        assert _curl_keys(cluster, reader, keys) == [(404, {"error": "Key not found", "key": key}) for key in keys]
        assert _nc(cluster, reader, [f"GET {key}" for key in keys]) == ["NOT_FOUND"] * len(keys)
    assert _nc(cluster, 2, [f"DEL {key}" for key in keys]) == ["NOT_FOUND"] * len(keys)
