"""The line protocol end to end: real sockets against a server on port 0."""

from __future__ import annotations

import trio

from .client import LineClient
from .conftest import start_server

TIMEOUT_SECONDS = 10


async def test_seed_examples_and_stats(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        assert await client.command(b"SET foo bar") == b"OK"
        assert await client.command(b"GET foo") == b"VALUE bar"
        other = await LineClient.connect(server.main)
        assert await other.command(b"BADCMD") == b"ERROR unknown command"
        assert await client.command(b"STATS") == b"gets:1 sets:1 dels:0 errors:1 keys:1 bytes:3"


async def test_commands_and_replies(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        assert await client.command(b"PING") == b"PONG"
        assert await client.command(b"get missing") == b"NOT_FOUND"
        assert await client.command(b"set k1 v1") == b"OK"
        assert await client.command(b"Del k1") == b"OK"
        assert await client.command(b"DEL k1") == b"NOT_FOUND"
        assert await client.command(b"TTL k1") == b"NOT_FOUND"
        assert await client.command(b"SET k2 v2") == b"OK"
        assert await client.command(b"TTL k2") == b"TTL -1"
        assert await client.command(b"SET k3 v3 EX 100") == b"OK"
        ttl = await client.command(b"TTL k3")
        assert ttl.startswith(b"TTL ") and 99_000 < int(ttl[4:]) <= 100_000
        assert await client.command(b"SET k4 v4 px 5000") == b"OK"
        assert 4000 < int((await client.command(b"TTL k4"))[4:]) <= 5000


async def test_errors_keep_the_connection(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        assert await client.command(b"GET") == b"ERROR wrong number of arguments for 'get'"
        assert await client.command(b"GET a b") == b"ERROR wrong number of arguments for 'get'"
        assert await client.command(b"SET a b EX 0") == b"ERROR invalid expire time"
        assert await client.command(b"SET a b EX -5") == b"ERROR invalid expire time"
        assert await client.command(b"SET a b PX soon") == b"ERROR invalid expire time"
        assert await client.command(b"SET a b ZZ 5") == b"ERROR syntax error"
        assert await client.command(b"SET a b EX") == b"ERROR wrong number of arguments for 'set'"
        assert await client.command(b"PING") == b"PONG"
        stats = await client.command(b"STATS")
        # Every SET counts in sets:, failed or not; every ERROR reply in errors:.
        assert stats == b"gets:0 sets:5 dels:0 errors:7 keys:0 bytes:0"


async def test_quoted_values_round_trip(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        assert await client.command(b'SET greeting "hello world"') == b"OK"
        assert await client.command(b"GET greeting") == b"VALUE hello world"
        assert await client.command(b"SET quote 'it\\'s'") == b"OK"
        assert await client.command(b"GET quote") == b"VALUE it's"
        assert await client.command(b'SET multi "line1\\nline2\\r\\x00"') == b"OK"
        assert await client.command(b"GET multi") == b'VALUE "line1\\nline2\\r\\x00"'
        assert await client.command(b"STATS") == b"gets:3 sets:3 dels:0 errors:0 keys:3 bytes:28"


async def test_keys_with_prefix_sorted(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        for key in [b"user:2", b"user:1", b"order:9", b"user:10"]:
            assert await client.command(b"SET " + key + b" x") == b"OK"
        await client.send(b"KEYS user:\n")
        assert await client.read_lines(4) == [b"KEYS 3", b"user:1", b"user:10", b"user:2"]
        await client.send(b"KEYS\n")
        assert (await client.read_lines(5))[0] == b"KEYS 4"
        assert await client.command(b"KEYS nothing") == b"KEYS 0"


async def test_keys_reply_is_bounded(nursery):
    with trio.fail_after(TIMEOUT_SECONDS):
        server = await start_server(nursery, max_keys_reply=3)
        client = await LineClient.connect(server.main)
        for index in range(4):
            assert await client.command(b"SET k%d v" % index) == b"OK"
        reply = await client.command(b"KEYS k")
        assert reply.startswith(b"ERROR too many keys")
        await client.send(b"KEYS k1\n")
        assert await client.read_lines(2) == [b"KEYS 1", b"k1"]


async def test_pipeline_in_one_packet_answered_in_order(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        requests = b"".join(b"SET key%d value%d\r\nGET key%d\r\n" % (i, i, i) for i in range(500))
        await client.send(requests + b"BADCMD\nPING\n")
        lines = await client.read_lines(1002)
        for i in range(500):
            assert lines[2 * i] == b"OK"
            assert lines[2 * i + 1] == b"VALUE value%d" % i
        assert lines[1000:] == [b"ERROR unknown command", b"PONG"]


async def test_command_split_across_packets(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        for byte in b"SET split 'a b c'\r\nGET split\r\n":
            await client.send(bytes([byte]))
            await trio.sleep(0)
        assert await client.read_lines(2) == [b"OK", b"VALUE a b c"]


async def test_quit_closes(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        await client.send(b"PING\nQUIT\nPING\n")
        assert await client.read_until_eof() == b"PONG\nOK\n"


async def test_unbalanced_quotes_error_and_close(server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        await client.send(b'PING\nSET a "unterminated\nPING\n')
        assert await client.read_until_eof() == b"PONG\nERROR unbalanced quotes\n"


async def test_line_too_long_error_and_close(nursery):
    with trio.fail_after(TIMEOUT_SECONDS):
        server = await start_server(nursery, max_line_bytes=1024)
        client = await LineClient.connect(server.main)
        assert await client.command(b"SET ok " + b"x" * 1000) == b"OK"
        # No newline at all: the server must not keep buffering.
        await client.send(b"SET big " + b"x" * 5000)
        assert await client.read_until_eof() == b"ERROR line too long\n"
        survivor = await LineClient.connect(server.main)
        assert await survivor.command(b"STATS") == b"gets:0 sets:1 dels:0 errors:1 keys:1 bytes:1000"


async def test_expiry_lazy_and_active(clocked_server, fake_clock):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(clocked_server.main)
        assert await client.command(b"SET short v PX 100") == b"OK"
        assert await client.command(b"SET never_read v EX 1") == b"OK"
        assert await client.command(b"SET stays v") == b"OK"
        assert await client.command(b"TTL short") == b"TTL 100"
        fake_clock.advance(150)
        assert await client.command(b"GET short") == b"NOT_FOUND"
        assert await client.command(b"TTL short") == b"NOT_FOUND"
        fake_clock.advance(1000)
        # The sweep frees the key nobody reads again: keys drops to 1.
        while True:
            stats = await client.command(b"STATS")
            if b" keys:1 bytes:1" in stats:
                break
            await trio.sleep(0.01)


async def test_max_clients_rejects_with_error(nursery):
    with trio.fail_after(TIMEOUT_SECONDS):
        server = await start_server(nursery, max_clients=2)
        first = await LineClient.connect(server.main)
        second = await LineClient.connect(server.main)
        assert await first.command(b"PING") == b"PONG"
        assert await second.command(b"PING") == b"PONG"
        third = await LineClient.connect(server.main)
        assert await third.read_until_eof() == b"ERROR max clients reached\n"
        await first.aclose()
        # A slot frees up once the server has noticed the close.
        while True:
            fourth = await LineClient.connect(server.main)
            await fourth.send(b"PING\n")
            reply = await fourth.read_line()
            if reply == b"PONG":
                break
            assert reply == b"ERROR max clients reached"
            await trio.sleep(0.01)


async def test_hello_in_a_pipeline_switches_only_later_replies(server):
    # GET before HELLO 3 in the same packet is answered in RESP2 ($-1), the
    # HELLO reply and the GET after it in RESP3 (a map, then _).
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await LineClient.connect(server.main)
        await client.send(
            b"*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n"
            b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
            b"*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n"
            b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n"
            b"*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n"
        )
        assert await client.read_line() == b"$-1\r"
        assert (await client.read_line()).startswith(b"%")
        while (line := await client.read_line()) != b"_\r":
            assert not line.startswith(b"$-1")
        assert (await client.read_line()).startswith(b"*")  # HELLO 2: a flat array
        while (line := await client.read_line()) != b"$-1\r":
            assert line != b"_\r"
