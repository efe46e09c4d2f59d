"""The HTTP API end to end: httpx (and raw sockets where httpx would hide the
framing) against a server on free ports.

Every response httpx receives here is also checked against the server's own
``/openapi.json`` (``OpenApiChecker``, an httpx response hook): the status
must be documented for that path and method (or covered by ``default``), and
a JSON body must validate against the schema given for it.
"""

from __future__ import annotations

import functools
import json
import random
import re

import h11
import httpx
import jsonschema
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from trio_kv.config import Config
from trio_kv.server.lifecycle import ServerAddresses, serve
from trio_kv.store.engine import Store
from trio_kv.store.keyspace import Keyspace

from .client import LineClient
from .conftest import start_server

TIMEOUT_SECONDS = 10
PAGINATION_KEYS = 1500


class OpenApiChecker:
    """Checks responses against the OpenAPI document the server serves."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.checked = 0

    def _documented(self, path: str, method: str, status: int) -> dict:
        """The response object for this status; an undocumented path must be a
        404 and an undocumented method a 405, both with the Error schema."""
        segment = path[len("/key/") :]
        template = "/key/{key}" if path.startswith("/key/") and segment and "/" not in segment else path
        path_item = self.document["paths"].get(template)
        operation = None if path_item is None else path_item.get("get" if method == "HEAD" else method.lower())
        if operation is None:
            assert status == (404 if path_item is None else 405), f"{method} {path}: {status}"
            return {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        responses = operation["responses"]
        documented = responses.get(str(status)) or responses.get("default")
        assert documented is not None, f"{method} {path}: status {status} not documented"
        return documented

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        documented = self._documented(path, method, status)
        self.checked += 1
        content = documented.get("content")
        if method == "HEAD" or content is None:
            assert body == b"", f"{method} {path} {status}: a body where none is documented"
            return
        media_type = content_type.split(";")[0].strip()
        documented_types = {name.split(";")[0] for name in content}
        assert media_type in documented_types, f"{method} {path} {status}: {content_type}"
        if media_type == "application/json":
            schema = next(iter(content.values()))["schema"]
            jsonschema.validate(
                json.loads(body),
                {**schema, "components": self.document["components"]},
                cls=jsonschema.Draft202012Validator,
            )

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(
            response.request.method,
            response.request.url.raw_path.decode().split("?")[0],
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )


@pytest.fixture
async def http_server(nursery) -> ServerAddresses:
    return await start_server(nursery, http_port=0)


def base_url(addresses: ServerAddresses) -> str:
    host, port = addresses.http
    return f"http://{host}:{port}"


@pytest.fixture
async def client(http_server):
    async with httpx.AsyncClient(base_url=base_url(http_server)) as plain:
        document = (await plain.get("/openapi.json")).json()
    checker = OpenApiChecker(document)
    async with httpx.AsyncClient(base_url=base_url(http_server), event_hooks={"response": [checker.hook]}) as checked:
        yield checked
    assert checker.checked > 0


async def metrics(client: httpx.AsyncClient) -> dict[tuple[str, tuple], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def resp_get(address: tuple[str, int], key: bytes) -> bytes | None:
    client = await LineClient.connect(address)
    await client.send(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
    header = (await client.read_line()).rstrip(b"\r")
    value = None if header == b"$-1" else (await client.read_exactly(int(header[1:]) + 2))[:-2]
    await client.aclose()
    return value


async def resp_command(address: tuple[str, int], *args: bytes) -> bytes:
    """One RESP command; the raw first reply line (enough for +OK / :n)."""
    client = await LineClient.connect(address)
    request = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)
    await client.send(request)
    line = await client.read_line()
    await client.aclose()
    return line.rstrip(b"\r")


# --- routes, status codes and bodies --------------------------------------------


async def test_put_get_delete(client):
    with trio.fail_after(TIMEOUT_SECONDS):
        response = await client.put("/key/user:1", content=b'{"name": "Ada", "tags": ["x", "y z"]}')
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert response.json() == {"success": True, "key": "user:1", "value": {"name": "Ada", "tags": ["x", "y z"]}}
        response = await client.get("/key/user:1")
        assert (response.status_code, response.json()) == (200, {"key": "user:1", "value": {"name": "Ada", "tags": ["x", "y z"]}})
        response = await client.delete("/key/user:1")
        assert (response.status_code, response.json()) == (200, {"success": True, "key": "user:1"})
        response = await client.get("/key/user:1")
        assert (response.status_code, response.json()) == (404, {"error": "Key not found", "key": "user:1"})
        response = await client.delete("/key/user:1")
        assert (response.status_code, response.json()) == (404, {"error": "Key not found", "key": "user:1"})


@pytest.mark.parametrize(
    "body", [b"", b"{", b"{'a': 1}", b"NaN", b"[Infinity]", b"\xff", b"\xef\xbb\xbf1", b"1 2", b"[" * 5000]
)
async def test_put_invalid_json(client, body):
    with trio.fail_after(TIMEOUT_SECONDS):
        response = await client.put("/key/k", content=body)
        assert (response.status_code, response.json()) == (400, {"error": "Invalid JSON"})
        assert (await client.get("/key/k")).status_code == 404


async def test_values_are_compact_json_text_read_by_every_protocol(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        body = b' { "price" : 1.10 , "big": 123456789012345678901234567890, "s": "a  b\\"c" } '
        compact = b'{"price":1.10,"big":123456789012345678901234567890,"s":"a  b\\"c"}'
        assert (await client.put("/key/doc", content=body)).status_code == 200
        assert (await client.get("/key/doc")).content == b'{"key":"doc","value":' + compact + b"}"
        text = await LineClient.connect(http_server.main)
        assert await text.command(b"GET doc") == b"VALUE " + compact
        assert await resp_get(http_server.redis, b"doc") == compact
        for value in (b'"text"', b"42", b"true", b"null", b"[]"):
            assert (await client.put("/key/scalar", content=value)).status_code == 200
            assert await resp_get(http_server.redis, b"scalar") == value


async def test_values_set_over_other_protocols(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        text = await LineClient.connect(http_server.main)
        assert await text.command(b"SET plain hello") == b"OK"
        assert await text.command(b"SET number 42") == b"OK"
        assert await text.command(b'SET spaced "[1, 2]"') == b"OK"
        assert await resp_command(http_server.redis, b"SET", b"binary", b"\xffok") == b"+OK"
        assert await resp_command(http_server.redis, b"SET", b"\xc3\xa9t\xc3\xa9", b'{"a":true}') == b"+OK"
        expected = {
            "plain": "hello",
            "number": 42,
            "spaced": [1, 2],
            "binary": "\ufffdok",
            "%C3%A9t%C3%A9": {"a": True},
        }
        for path_key, value in expected.items():
            response = await client.get(f"/key/{path_key}")
            assert response.status_code == 200, path_key
            assert response.json()["value"] == value
        assert (await client.get("/key/%C3%A9t%C3%A9")).json()["key"] == "été"


async def test_keys_are_percent_decoded_path_segments(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        response = await client.put("/key/a%2Fb%20c%3F", content=b"1")
        assert response.json()["key"] == "a/b c?"
        text = await LineClient.connect(http_server.main)
        assert await text.command(b'GET "a/b c?"') == b"VALUE 1"
        assert (await client.get("/key/a/b")).status_code == 404  # two segments: no such route
        assert (await client.get("/key/")).status_code == 404


async def test_ttl(nursery, fake_clock):
    config = Config(port=0, redis_port=0, http_port=0, active_expire_interval_seconds=0.01, appendonly=False)
    store = Store(config, keyspace=Keyspace(clock_ms=fake_clock))
    addresses = await nursery.start(functools.partial(serve, config, store=store))
    with trio.fail_after(TIMEOUT_SECONDS):
        async with httpx.AsyncClient(base_url=base_url(addresses)) as client:
            assert (await client.put("/key/session?ttl=100", content=b'"x"')).status_code == 200
            assert await resp_command(addresses.redis, b"TTL", b"session") == b":100"
            for bad in ("0", "-1", "1.5", "soon", "", "99999999999999999999"):
                response = await client.put(f"/key/bad?ttl={bad}", content=b"1")
                assert response.status_code == 400, bad
                assert response.json()["error"].startswith("Invalid ttl")
            # In range for our check, past Redis' limit for SET EX: the store's error, as a 400.
            response = await client.put("/key/bad?ttl=9223372036854775", content=b"1")
            assert (response.status_code, response.json()) == (400, {"error": "invalid expire time in 'set' command"})
            fake_clock.advance(100_001)
            assert (await client.get("/key/session")).status_code == 404


async def test_keys_listing_filters(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        for key in ("user:1", "user:2", "user:10", "order:9", "us*er"):
            assert (await client.put(f"/key/{key}", content=b"0")).status_code == 200
        response = await client.get("/keys")
        assert response.json() == {
            "totalKeys": 5,
            "keys": sorted(["user:1", "user:2", "user:10", "order:9", "us*er"]),
            "cursor": None,
        }
        assert (await client.get("/keys", params={"pattern": "user:*"})).json()["keys"] == ["user:1", "user:10", "user:2"]
        assert (await client.get("/keys", params={"pattern": "user:?"})).json()["keys"] == ["user:1", "user:2"]
        # A prefix is literal: its glob characters match only themselves.
        assert (await client.get("/keys", params={"prefix": "us*"})).json()["keys"] == ["us*er"]
        assert (await client.get("/keys", params={"prefix": "user:1"})).json()["keys"] == ["user:1", "user:10"]
        both = await client.get("/keys", params={"pattern": "*1*", "prefix": "user"})
        assert both.json()["keys"] == ["user:1", "user:10"]
        assert both.json()["totalKeys"] == 5  # the whole store, whatever the filter
        for params in ({"limit": "0"}, {"limit": "x"}, {"limit": "10001"}, {"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "1-0"}):
            response = await client.get("/keys", params=params)
            assert response.status_code == 400, params


async def test_pagination_returns_every_key_exactly_once(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        text = await LineClient.connect(http_server.main)
        keys = [f"k:{index}" for index in range(PAGINATION_KEYS)] + [f"other:{index}" for index in range(100)]
        await text.send(b"".join(b"SET %s v\n" % key.encode() for key in keys))
        assert await text.read_lines(len(keys)) == [b"OK"] * len(keys)
        for params, expected in (
            ({"limit": "100"}, keys),
            ({"limit": "77", "prefix": "k:"}, keys[:PAGINATION_KEYS]),
            ({"limit": "50", "pattern": "other:*"}, keys[PAGINATION_KEYS:]),
            ({"limit": "1", "pattern": "other:*"}, keys[PAGINATION_KEYS:]),
            ({"limit": "2", "prefix": "other:1"}, [key for key in keys if key.startswith("other:1")]),
        ):
            listed: list[str] = []
            cursor = "0"
            pages = 0
            while cursor is not None:
                page = (await client.get("/keys", params={**params, "cursor": cursor})).json()
                assert set(page) == {"totalKeys", "keys", "cursor"}  # the reference store's shape + cursor
                assert page["totalKeys"] == len(keys)
                assert len(page["keys"]) <= int(params["limit"])  # a hard maximum
                listed += page["keys"]
                cursor = page["cursor"]
                pages += 1
            assert sorted(listed) == sorted(expected), params
            assert len(listed) == len(set(listed))
            assert pages >= len(expected) // int(params["limit"])


async def test_health_readiness_and_openapi(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        http_server.store.ready = False  # what recovery sets while it loads
        response = await client.get("/readyz")
        assert (response.status_code, response.json()) == (503, {"status": "not ready", "reason": "loading"})
        assert (await client.get("/healthz")).status_code == 200
        http_server.store.ready = True
        document = (await client.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.1")
        assert set(document["paths"]) == {"/key/{key}", "/keys", "/range", "/metrics", "/healthz", "/readyz", "/openapi.json"}


async def test_methods_paths_and_cors(client):
    with trio.fail_after(TIMEOUT_SECONDS):
        response = await client.post("/key/a", content=b"1")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"
        assert response.json() == {"error": "Method not allowed", "allow": ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]}
        response = await client.delete("/keys")
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD, OPTIONS")
        response = await client.get("/nope")
        assert (response.status_code, response.json()) == (404, {"error": "Not found", "method": "GET", "path": "/nope"})
        assert not any(name.startswith("access-control-") for name in response.headers)
        # CORS is off by default: a preflight gets Allow, and no allowance.
        response = await client.options(
            "/key/a",
            headers={"Origin": "http://example.com", "Access-Control-Request-Method": "PUT",
                     "Access-Control-Request-Headers": "content-type,x-trace"},
        )
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["allow"] == "GET, HEAD, PUT, DELETE, OPTIONS"
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert "content-length" not in response.headers


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        ("*", "http://example.com", "*"),
        ("*", None, "*"),  # the reference store: on every response
        ("http://app.example,https://other.example:8443", "http://app.example", "http://app.example"),
        ("http://app.example,https://other.example:8443", "https://other.example:8443", "https://other.example:8443"),
        ("http://app.example", "http://evil.example", None),
        ("http://app.example", "http://app.example:80", None),  # exact origins only
        ("http://app.example", None, None),
        ("", "http://example.com", None),
    ],
)
async def test_cors_origins(nursery, origins, origin, allowed):
    addresses = await start_server(nursery, http_port=0, http_cors_origins=origins)
    extra = {} if origin is None else {"Origin": origin}
    async with httpx.AsyncClient(base_url=base_url(addresses)) as client:
        with trio.fail_after(TIMEOUT_SECONDS):
            responses = [
                await client.put("/key/c", content=b"1", headers=extra),
                await client.get("/key/c", headers=extra),
                await client.get("/nope", headers=extra),
            ]
            for response in responses:
                assert response.headers.get("access-control-allow-origin") == allowed
                if origins not in ("", "*"):
                    assert response.headers["vary"] == "Origin"  # caches keep origins apart
            preflight = await client.options(
                "/key/c",
                headers={**extra, "Access-Control-Request-Method": "DELETE",
                         "Access-Control-Request-Headers": "content-type"},
            )
            assert preflight.status_code == 204
            assert preflight.headers.get("access-control-allow-origin") == allowed
            if allowed is None:
                assert not any(name.startswith("access-control-") for name in preflight.headers)
            else:
                assert preflight.headers["access-control-allow-methods"] == "GET,HEAD,PUT,DELETE,OPTIONS"
                assert preflight.headers["access-control-allow-headers"] == "content-type"


async def test_head_has_the_get_headers_and_no_body(client):
    with trio.fail_after(TIMEOUT_SECONDS):
        await client.put("/key/h", content=b'{"a":1}')
        get = await client.get("/key/h")
        head = await client.head("/key/h")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
        assert (await client.head("/key/missing")).status_code == 404


async def test_host_check_on_loopback(client):
    with trio.fail_after(TIMEOUT_SECONDS):
        port = client.base_url.port
        for host in (f"localhost:{port}", "127.0.0.1", f"[::1]:{port}", "app.localhost", "127.1.2.3:80"):
            assert (await client.get("/healthz", headers={"Host": host})).status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "[::2]", "[::1]x"):
            response = await client.get("/healthz", headers={"Host": host})
            assert response.status_code == 403, host
            assert response.json()["error"].startswith("Host header not allowed")


# --- metrics --------------------------------------------------------------------


async def test_metrics_parse_and_move(client, http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        before = await metrics(client)
        for index in range(5):
            await client.put(f"/key/m{index}", content=b'"vv"')
        await client.get("/key/m0")
        await client.get("/key/missing")
        await client.get("/nope")
        text = await LineClient.connect(http_server.main)
        assert await text.command(b"BADCMD") == b"ERROR unknown command"
        after = await metrics(client)

        def moved(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        assert moved("trio_kv_commands_total", command="set", result="ok") == 5
        assert moved("trio_kv_commands_total", command="get", result="ok") == 2
        assert moved("trio_kv_command_latency_seconds_count", command="set") == 5
        assert moved("trio_kv_command_latency_seconds_bucket", command="set", le="+Inf") == 5
        assert moved("trio_kv_command_latency_seconds_sum", command="set") > 0
        buckets = [
            value for (name, labels), value in after.items()
            if name == "trio_kv_command_latency_seconds_bucket" and ("command", "set") in labels
        ]
        assert buckets == sorted(buckets) and len(buckets) > 10
        assert sample(after, "trio_kv_keys") == 5
        assert sample(after, "trio_kv_value_bytes") == 5 * len(b'"vv"')
        assert moved("trio_kv_keyspace_hits_total") == 1
        assert moved("trio_kv_keyspace_misses_total") == 1
        assert moved("trio_kv_errors_total") == 2  # the unknown path and the unknown command
        assert sample(after, "trio_kv_connected_clients", protocol="http") >= 1
        assert sample(after, "trio_kv_connected_clients", protocol="text") == 1
        assert moved("trio_kv_http_requests_total", route="/key/{key}", method="PUT", code="200") == 5
        assert moved("trio_kv_http_requests_total", route="/key/{key}", method="GET", code="404") == 1
        assert moved("trio_kv_http_requests_total", route="unmatched", method="GET", code="404") == 1
        assert sample(after, "trio_kv_ready") == 1
        assert sample(after, "trio_kv_max_clients") == http_server.control.max_clients
        for name in ("trio_kv_expired_keys_total", "trio_kv_rejected_connections_total", "trio_kv_uptime_seconds"):
            assert (name, ()) in after


async def test_persistence_metrics_and_readiness(nursery, tmp_path):
    addresses = await start_server(nursery, http_port=0, appendonly=True, data_dir=str(tmp_path))
    with trio.fail_after(TIMEOUT_SECONDS):
        async with httpx.AsyncClient(base_url=base_url(addresses)) as client:
            assert (await client.put("/key/durable", content=b"[1]")).status_code == 200
            samples = await metrics(client)
            assert sample(samples, "trio_kv_persistence_aof_enabled") == 1
            assert sample(samples, "trio_kv_persistence_aof_last_write_status") == 1
            assert sample(samples, "trio_kv_persistence_writes_refused") == 0
            assert sample(samples, "trio_kv_persistence_aof_current_size") > 0
            persistence = addresses.store.persistence
            persistence.write_error = "No space left on device"  # what a failed append records
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["reason"] == "writes refused: No space left on device"
            assert sample(await metrics(client), "trio_kv_persistence_writes_refused") == 1
            persistence.write_error = None
            assert (await client.get("/readyz")).status_code == 200


async def test_keep_alive_reuses_one_connection(client):
    with trio.fail_after(TIMEOUT_SECONDS):
        before = sample(await metrics(client), "trio_kv_connections_received_total")
        for _ in range(10):
            assert (await client.get("/healthz")).status_code == 200
        after = sample(await metrics(client), "trio_kv_connections_received_total")
        assert after == before


# --- framing, limits and slow clients (raw sockets, responses parsed by h11) ----


class RawHttp:
    """A socket that writes raw bytes and reads responses with h11's client side."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> "RawHttp":
        return cls(await trio.open_tcp_stream(*address))

    async def response(self) -> tuple[h11.Response | h11.InformationalResponse, bytes]:
        """The next response and its body; h11 must see requests to match responses
        to, so this tracks only what the server sends (requests sent raw)."""
        head = None
        body = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, (h11.Response, h11.InformationalResponse)):
                head = event
                if isinstance(event, h11.InformationalResponse):
                    return head, b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return head, bytes(body)
            else:
                raise AssertionError(event)

    async def request(self, method: bytes, target: bytes, body: bytes = b"", headers=()) -> None:
        """Send a request through h11 (so it can parse the reply)."""
        all_headers = [("Host", "localhost"), *headers]
        if body:
            all_headers.append(("Content-Length", str(len(body))))
        data = self.h11.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.h11.send(h11.Data(data=body))
        data += self.h11.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    def next_cycle(self) -> None:
        self.h11.start_next_cycle()

    async def read_until_eof(self) -> bytes:
        received = bytearray()
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not data:
                break
            received += data
        return bytes(received)


async def test_pipelined_requests_answered_in_order(http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        stream = await trio.open_tcp_stream(*http_server.http)
        requests = b"".join(
            [
                b"PUT /key/p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\n[1]",
                b"GET /key/p HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"DELETE /key/p HTTP/1.1\r\nHost: localhost\r\n\r\n",
                b"GET /key/p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            ]
        )
        await stream.send_all(requests)
        client = RawHttp(stream)
        received = await client.read_until_eof()  # the last request asked to close
        statuses = re.findall(rb"HTTP/1.1 (\d+) ", received)
        assert statuses == [b"200", b"200", b"200", b"404"]
        assert b'{"key":"p","value":[1]}' in received
        assert received.lower().count(b"connection: close") == 1


async def test_head_too_large_is_431(nursery):
    addresses = await start_server(nursery, http_port=0, http_max_head_bytes=1024)
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await RawHttp.connect(addresses.http)
        await client.stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
        received = await client.read_until_eof()
        assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert b"connection: close" in received.lower()
        assert b'"error"' in received


async def test_body_too_large_is_413(nursery):
    addresses = await start_server(nursery, http_port=0, http_max_body_bytes=100)
    with trio.fail_after(TIMEOUT_SECONDS):
        async with httpx.AsyncClient(base_url=base_url(addresses)) as client:
            assert (await client.put("/key/k", content=b"1" * 100)).status_code == 200
            response = await client.put("/key/k", content=b"2" * 101)
            assert (response.status_code, response.json()) == (413, {"error": "Request body larger than 100 bytes"})

            async def chunks():
                for _ in range(5):
                    yield b"3" * 30

            response = await client.put("/key/k", content=chunks())  # chunked: no Content-Length
            assert response.status_code == 413
            assert (await client.get("/key/k")).json()["value"] == int("1" * 100)


async def test_expect_100_continue(http_server):
    with trio.fail_after(TIMEOUT_SECONDS):
        client = await RawHttp.connect(http_server.http)
        headers = [("Host", "localhost"), ("Content-Length", "4"), ("Expect", "100-continue")]
        await client.stream.send_all(client.h11.send(h11.Request(method="PUT", target="/key/e", headers=headers)))
        informational, _ = await client.response()
        assert informational.status_code == 100
        await client.stream.send_all(client.h11.send(h11.Data(data=b"true")) + client.h11.send(h11.EndOfMessage()))
        response, body = await client.response()
        assert (response.status_code, json.loads(body)) == (200, {"success": True, "key": "e", "value": True})


async def test_slow_clients_time_out(nursery):
    addresses = await start_server(
        nursery, http_port=0, http_idle_timeout_seconds=0.2, http_request_timeout_seconds=0.3
    )
    with trio.fail_after(TIMEOUT_SECONDS):
        idle = await RawHttp.connect(addresses.http)
        assert await idle.read_until_eof() == b""  # closed quietly
        slow = await RawHttp.connect(addresses.http)
        await slow.stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        received = await slow.read_until_eof()
        assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        # Keep-alive: after an answered request, the idle timeout applies again.
        kept = await RawHttp.connect(addresses.http)
        await kept.request(b"GET", b"/healthz")
        response, _ = await kept.response()
        assert response.status_code == 200
        assert await kept.read_until_eof() == b""


async def test_bad_requests_never_crash_the_server(http_server):
    rng = random.Random(5)
    garbage = [
        b"\x00" * 100 + b"\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"PUT /key/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
        b"PUT /key/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET http://localhost/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET *bad HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /key/%ZZ%%% HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /keys?limit=%FF&cursor=%00 HTTP/1.1\r\nHost: localhost\r\n\r\n",
        *[rng.randbytes(rng.randint(1, 3000)) for _ in range(20)],
    ]
    with trio.fail_after(TIMEOUT_SECONDS):
        for data in garbage:
            stream = await trio.open_tcp_stream(*http_server.http)
            await stream.send_all(data)
            await stream.send_eof()
            received = await RawHttp(stream).read_until_eof()
            if received:
                status = int(received.split(b" ", 2)[1])
                assert status < 500 or status == 505, (data[:60], received[:200])
            await stream.aclose()
        async with httpx.AsyncClient(base_url=base_url(http_server)) as client:
            assert (await client.get("/healthz")).status_code == 200


async def test_max_clients_applies_across_protocols(nursery):
    addresses = await start_server(nursery, http_port=0, max_clients=1)
    with trio.fail_after(TIMEOUT_SECONDS):
        text = await LineClient.connect(addresses.main)
        assert await text.command(b"PING") == b"PONG"
        refused = await RawHttp.connect(addresses.http)
        received = await refused.read_until_eof()
        assert received.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert received.endswith(b'{"error":"max clients reached"}')
        await text.aclose()
        with trio.move_on_after(2):
            while addresses.control.clients():
                await trio.sleep(0.01)
        async with httpx.AsyncClient(base_url=base_url(addresses)) as client:
            assert (await client.get("/healthz")).status_code == 200


async def test_shutdown_closes_keep_alive_connections(nursery):
    addresses = await start_server(nursery, http_port=0)
    with trio.fail_after(TIMEOUT_SECONDS):
        kept = await RawHttp.connect(addresses.http)
        await kept.request(b"GET", b"/readyz")
        response, _ = await kept.response()
        assert response.status_code == 200
        addresses.shutdown.set()
        assert await kept.read_until_eof() == b""


async def test_http_port_off_by_default(server):
    assert server.http is None
