"""trio_kv.client's connections against real servers (trio_kv and redis-server
processes): a pipeline of 10,000 commands, the pool's limit, AUTH (password
and ACL user, RESP2 and RESP3's HELLO AUTH), TLS (the TLS tests' throwaway
CA), RESP3 push messages, and cancellation closing the connection.
"""

from __future__ import annotations

import ssl

import pytest
import trio
import trio.testing

from trio_kv.client import BlockingClient, Client, ClientConnectionError, ReplyError, open_connection

from ..conftest import require_tool
from .client_servers import redis_server, trio_kv_server
from .test_tls import tls_server
from .tls_certs import TlsFiles, make_tls_files

TEST_SECONDS = 30
PIPELINED = 10_000
PASSWORD = "s3cret pass"


@pytest.fixture(scope="module", params=["trio_kv", "redis"])
def address(request, tmp_path_factory):
    if request.param == "redis":
        with redis_server(tmp_path_factory.mktemp("redis")) as redis_address:
            yield redis_address
    else:
        with trio_kv_server() as server:
            yield server.address


@pytest.mark.parametrize("protocol", [2, 3], ids=lambda protocol: f"resp{protocol}")
async def test_a_pipeline_of_ten_thousand_commands(address, protocol) -> None:
    with trio.fail_after(TEST_SECONDS):
        async with Client(*address, protocol=protocol) as client:
            pipeline = client.pipeline()
            for index in range(PIPELINED):
                pipeline.add("SET", f"p:{index}", index)
            assert await pipeline.execute() == [b"OK"] * PIPELINED
            for index in range(PIPELINED):
                pipeline.add("GET", f"p:{index}")
            assert await pipeline.execute() == [str(index).encode() for index in range(PIPELINED)]
            assert client.statistics()["opened"] == 1


async def test_the_pool_never_opens_more_than_its_limit(address) -> None:
    with trio.fail_after(TEST_SECONDS):
        async with Client(*address, max_connections=2) as client:
            release = trio.Event()
            inside: list[int] = []

            async def hold(number: int) -> None:
                async with client.connection() as connection:
                    inside.append(number)
                    assert await connection.execute("PING") == b"PONG"
                    await release.wait()

            async with trio.open_nursery() as nursery:
                for number in range(3):
                    nursery.start_soon(hold, number)
                await trio.testing.wait_all_tasks_blocked()
                assert len(inside) == 2  # the third waits for a free slot
                assert client.statistics() == {"idle": 0, "leased": 2, "open": 2, "opened": 2}
                release.set()
            assert sorted(inside) == [0, 1, 2]
            assert client.statistics() == {"idle": 2, "leased": 0, "open": 2, "opened": 2}

            async def ping() -> None:
                assert await client.execute("PING") == b"PONG"

            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(ping)
            assert client.statistics()["opened"] == 2


async def test_cancellation_closes_the_connection_and_the_pool_drops_it() -> None:
    # A server that reads and never answers: the reply is cancelled mid-wait.
    received = trio.Event()
    closed_by_client = trio.Event()

    async def silent(stream: trio.SocketStream) -> None:
        while True:
            data = await stream.receive_some(1024)
            if not data:
                closed_by_client.set()
                return
            received.set()

    with trio.fail_after(TEST_SECONDS):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, silent, 0)
            port = listeners[0].socket.getsockname()[1]
            async with Client("127.0.0.1", port) as client:
                with trio.move_on_after(0.2) as scope:
                    await client.execute("GET", "k")
                assert scope.cancelled_caught
                await received.wait()
                await closed_by_client.wait()  # the client closed it: its state was unknown
                assert client.statistics() == {"idle": 0, "leased": 0, "open": 0, "opened": 1}
                connection = await open_connection("127.0.0.1", port)
                async with trio.open_nursery() as waiting:
                    waiting.start_soon(connection.execute_many, [("PING",), ("PING",)])
                    await trio.testing.wait_all_tasks_blocked()
                    with pytest.raises(trio.BusyResourceError):  # replies would interleave
                        await connection.execute("PING")
                    waiting.cancel_scope.cancel()
                assert connection.broken and connection.closed
                with pytest.raises(ClientConnectionError):
                    await connection.execute("PING")
            nursery.cancel_scope.cancel()


async def test_a_cancelled_blocking_command_on_redis_is_not_reused(tmp_path) -> None:
    with redis_server(tmp_path) as address, trio.fail_after(TEST_SECONDS):
        async with Client(*address, max_connections=1) as client:
            with trio.move_on_after(0.2):
                await client.execute("BLPOP", "nothing", "0")
            await client.execute("RPUSH", "nothing", "late")
            # A reused connection would have read BLPOP's reply here.
            assert await client.execute("LPOP", "nothing") == b"late"
            assert client.statistics()["opened"] == 2


async def test_a_connection_closed_by_the_server_raises(address) -> None:
    with trio.fail_after(TEST_SECONDS):
        async with Client(*address) as client:
            async with client.connection() as connection:
                await connection.execute("CLIENT", "SETNAME", "doomed")
                with BlockingClient(*address, timeout=TEST_SECONDS) as killer:
                    assert killer.execute("CLIENT", "KILL", "SKIPME", "yes") >= 1
                with pytest.raises(ClientConnectionError):
                    await connection.execute("PING")
                assert not connection.usable
            assert await client.execute("PING") == b"PONG"  # a new connection


@pytest.mark.parametrize("protocol", [2, 3], ids=lambda protocol: f"resp{protocol}")
async def test_auth_with_a_password(tmp_path, protocol) -> None:
    with trio.fail_after(TEST_SECONDS):
        with trio_kv_server(env={"TRIO_KV_REQUIREPASS": PASSWORD}) as server:
            await _check_auth(server.address, protocol, None)
        with redis_server(tmp_path, "--requirepass", PASSWORD) as address:
            await _check_auth(address, protocol, None)
            async with Client(*address, password=PASSWORD) as admin:
                await admin.execute("ACL", "SETUSER", "alice", "on", f">{PASSWORD}", "~*", "+@all")
            await _check_auth(address, protocol, "alice")


async def _check_auth(address: tuple[str, int], protocol: int, username: str | None) -> None:
    async with Client(*address, protocol=protocol) as anonymous:
        with pytest.raises(ReplyError, match="^NOAUTH"):
            await anonymous.execute("GET", "k")
    async with Client(*address, protocol=protocol, username=username, password="wrong") as wrong:
        with pytest.raises(ReplyError, match="^WRONGPASS"):
            await wrong.execute("PING")
        assert wrong.statistics()["open"] == 0
    async with Client(*address, protocol=protocol, username=username, password=PASSWORD) as client:
        assert await client.execute("SET", "k", "v") == b"OK"
        hello = await client.execute("HELLO")
        assert (hello[b"proto"] if protocol == 3 else hello[hello.index(b"proto") + 1]) == protocol  # type: ignore[index, union-attr]
    with BlockingClient(*address, protocol=protocol, username=username, password=PASSWORD) as blocking:
        assert blocking.execute("GET", "k") == b"v"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> TlsFiles:
    require_tool("openssl")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


async def test_tls(certs, tmp_path) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    with tls_server(certs) as server, trio.fail_after(TEST_SECONDS):
        async with Client("127.0.0.1", server.tls_port, protocol=3, ssl_context=context) as client:
            assert await client.execute("SET", "k", "over tls") == b"OK"
            pipeline = client.pipeline()
            for index in range(PIPELINED):
                pipeline.add("INCR", "n")
            assert (await pipeline.execute())[-1] == PIPELINED
            big = b"x" * (4 * 1024 * 1024)
            assert await client.execute("SET", "big", big) == b"OK"
            assert await client.execute("GET", "big") == big
        with BlockingClient("127.0.0.1", server.tls_port, ssl_context=context, timeout=TEST_SECONDS) as blocking:
            assert blocking.execute("GET", "k") == b"over tls"
        other = ssl.create_default_context(cafile=str(make_tls_files(tmp_path / "other").ca_cert))
        async with Client("127.0.0.1", server.tls_port, ssl_context=other) as stranger:
            with pytest.raises(ClientConnectionError, match="TLS handshake"):
                await stranger.execute("PING")
        with pytest.raises(ClientConnectionError, match="TLS handshake"):
            BlockingClient("127.0.0.1", server.tls_port, ssl_context=other, timeout=TEST_SECONDS)


async def test_resp3_pushes_are_kept_apart_from_replies(tmp_path) -> None:
    # CLIENT TRACKING's invalidations arrive as RESP3 pushes between replies.
    with redis_server(tmp_path) as address, trio.fail_after(TEST_SECONDS):
        async with Client(*address, protocol=3) as client, Client(*address) as writer:
            async with client.connection() as connection:
                assert await connection.execute("CLIENT", "TRACKING", "on") == b"OK"
                assert await connection.execute("GET", "tracked") is None
                await writer.execute("SET", "tracked", "1")
                assert await connection.execute("PING") == b"PONG"
                assert connection.take_pushes() == [[b"invalidate", [b"tracked"]]]
                assert await connection.execute("GET", "tracked") == b"1"
                await writer.execute("SET", "tracked", "2")
                assert await connection.next_push() == [b"invalidate", [b"tracked"]]
                assert await connection.execute("DEBUG", "PROTOCOL", "push") == b"Some real reply following the push reply"
                assert connection.take_pushes() == [[b"server-cpu-usage", 42]]
