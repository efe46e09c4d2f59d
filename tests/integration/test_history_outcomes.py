"""harness/history/outcomes.py with real redis-py errors: error replies parsed
by redis-py from a real server's bytes, a real timeout and a real reset."""

from __future__ import annotations

import socket
import threading

import pytest
import redis
from redis._parsers.base import BaseParser
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.history.model import FAIL, UNKNOWN
from harness.history.outcomes import classify


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("NOREPLICAS Not enough good replicas to write.", UNKNOWN),
        ("ERR syntax error", FAIL),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", FAIL),
        ("MOVED 3999 127.0.0.1:6381", FAIL),
        ("LOADING Redis is loading the dataset in memory", FAIL),
        ("CROSSSLOT Keys in request don't hash to the same slot", FAIL),
        ("NOAUTH Authentication required.", FAIL),
    ],
)
def test_error_replies_as_redis_py_parses_them(reply: str, outcome: str) -> None:
    assert classify(BaseParser.parse_error(reply))[0] == outcome


def _client(port: int) -> redis.Redis:
    # RESP2: the fake servers below answer redis-py's handshake with +OK, not a HELLO 3 map.
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0),
        single_connection_client=True, protocol=2,
    )


def _serve_once(listener: socket.socket, behaviour: str) -> threading.Thread:
    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            # redis-py's connection handshake (CLIENT SETINFO ...) is answered; then the SET arrives...
            while b"\r\nSET\r\n" not in (request := connection.recv(65536)) and request:
                connection.sendall(b"+OK\r\n" * request.count(b"*"))
            if behaviour == "reset":
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return  # ... and the connection is reset without a reply
            connection.recv(65536)  # ... and is never answered (until the client leaves)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("behaviour", ["silent", "reset"])
def test_no_reply_is_unknown(behaviour: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = _serve_once(listener, behaviour)
        client = _client(listener.getsockname()[1])
        with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)) as caught:
            client.set("x", "1")
        client.close()
        thread.join(5)
    assert classify(caught.value)[0] == UNKNOWN


def test_a_real_servers_error_reply_is_fail(tmp_path) -> None:
    from harness.server_process import ServerProcess

    from ..conftest import REPO

    with ServerProcess.start(REPO, "--appendonly", "no", data_dir=tmp_path) as server:
        client = _client(server.address[1])
        client.set("x", "1")
        with pytest.raises(redis.exceptions.ResponseError) as caught:
            client.lpush("x", "2")
        client.close()
    assert classify(caught.value) == (FAIL, f"ResponseError: {caught.value}")


def test_other_exceptions_are_the_drivers_bug() -> None:
    with pytest.raises(TypeError):
        classify(ValueError("not a client error"))
