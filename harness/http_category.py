"""The http category: the HTTP JSON API, /metrics and the health checks,
driven by the real `curl`, with `nc` on the line protocol for the
cross-protocol checks.

The server runs with ``HTTP_FLAGS`` (a free HTTP port, a small body limit so
413 is cheap to provoke); the HTTP address comes from its ``HTTP API on
HOST:PORT`` log line, which it writes before the ``listening on`` line the
harness waits for.

(Named ``http_category`` because a module called ``http`` here would shadow
the standard library's ``http`` package for the whole harness.)
"""

from __future__ import annotations

import json
import re
import subprocess

from checker import Checker
from clients import lines
from server_process import ServerProcess

HTTP_MAX_BODY_BYTES = 1024
HTTP_FLAGS = ("--http-port", "0", "--http-max-body-bytes", str(HTTP_MAX_BODY_BYTES))
CURL_SECONDS = 10
ADDRESS_SECONDS = 5.0
_HTTP_LINE = re.compile(r"HTTP API on (\S+):(\d+)")
_METRIC = re.compile(r"^(\S+?)(\{[^}]*\})? (\S+)$")


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> object:
        return json.loads(self.body)


def curl(url: str, *args: str) -> Reply:
    """One `curl -i` request: status, headers (names lower-case) and body."""
    result = subprocess.run(
        ["curl", "-s", "-S", "-i", "--max-time", str(CURL_SECONDS), *args, url],
        capture_output=True,
        timeout=CURL_SECONDS + 5,
    )
    if result.returncode != 0:
        raise RuntimeError(f"curl {url} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, body)


def _http_base(server: ServerProcess) -> str:
    match = server.wait_for_log(_HTTP_LINE, ADDRESS_SECONDS)
    if match is None:
        raise RuntimeError("no 'HTTP API on' line in the server log")
    return f"http://{match.group(1)}:{match.group(2)}"


def _metrics(base: str) -> dict[str, float]:
    reply = curl(base + "/metrics")
    samples = {}
    for line in reply.body.decode().splitlines():
        match = _METRIC.match(line)
        if match and not line.startswith("#"):
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def check_http(server: ServerProcess, check: Checker) -> None:
    base = _http_base(server)
    address = server.address

    reply = curl(base + "/key/user:1", "-X", "PUT", "--data-binary", '{"name": "Ada", "langs": ["en", "fr"]}')
    check.equal("PUT stores the compact JSON", (reply.status, reply.json()),
                (200, {"success": True, "key": "user:1", "value": {"name": "Ada", "langs": ["en", "fr"]}}))
    check.equal("no CORS headers by default (--http-cors-origins unset)",
                [name for name in reply.headers if name.startswith("access-control-")], [])
    reply = curl(base + "/key/user:1")
    check.equal("GET", (reply.status, reply.body), (200, b'{"key":"user:1","value":{"name":"Ada","langs":["en","fr"]}}'))
    check.equal("the text protocol reads the JSON text", lines("nc", address, ["GET user:1"]),
                ['VALUE {"name":"Ada","langs":["en","fr"]}'])
    check.equal("SET over the text protocol", lines("nc", address, ["SET plain hello", "SET n 42"]), ["OK", "OK"])
    check.equal("a non-JSON value reads as a JSON string", curl(base + "/key/plain").json(),
                {"key": "plain", "value": "hello"})
    check.equal("a JSON value set elsewhere reads as JSON", curl(base + "/key/n").json(), {"key": "n", "value": 42})
    check.equal("percent-decoded keys", curl(base + "/key/a%2Fb", "-X", "PUT", "--data-binary", "true").json()["key"], "a/b")

    reply = curl(base + "/key/plain", "-X", "DELETE")
    check.equal("DELETE", (reply.status, reply.json()), (200, {"success": True, "key": "plain"}))
    reply = curl(base + "/key/plain")
    check.equal("GET after DELETE", (reply.status, reply.json()), (404, {"error": "Key not found", "key": "plain"}))
    check.equal("DELETE of a missing key", curl(base + "/key/plain", "-X", "DELETE").status, 404)
    reply = curl(base + "/key/bad", "-X", "PUT", "--data-binary", "{oops")
    check.equal("invalid JSON", (reply.status, reply.json()), (400, {"error": "Invalid JSON"}))

    check.equal("PUT with ttl", curl(base + "/key/session?ttl=100", "-X", "PUT", "--data-binary", '"s"').status, 200)
    ttl = lines("nc", address, ["TTL session"])
    check.true("TTL set over HTTP, read over the text protocol", ttl and 99_000 < int(ttl[0].split()[1]) <= 100_000, ttl)

    reply = curl(base + "/keys?prefix=user:")
    check.equal("GET /keys?prefix=", reply.json(), {"totalKeys": 4, "keys": ["user:1"], "cursor": None})
    listed: list[str] = []
    cursor = "0"
    while cursor is not None:
        page = curl(base + f"/keys?limit=2&cursor={cursor}").json()
        check.true("limit is a hard maximum", len(page["keys"]) <= 2, page)
        listed += page["keys"]
        cursor = page["cursor"]
    check.equal("pages of 2 list every key once", sorted(listed), ["a/b", "n", "session", "user:1"])

    reply = curl(base + "/key/x", "-X", "OPTIONS", "-H", "Origin: http://example.com",
                 "-H", "Access-Control-Request-Method: PUT", "-H", "Access-Control-Request-Headers: content-type")
    check.equal("CORS preflight from an unlisted origin: Allow, no allowance",
                (reply.status, reply.headers.get("allow"), reply.headers.get("access-control-allow-methods"),
                 reply.headers.get("access-control-allow-origin")),
                (204, "GET, HEAD, PUT, DELETE, OPTIONS", None, None))
    reply = curl(base + "/keys", "-X", "POST")
    check.equal("405 with Allow", (reply.status, reply.headers.get("allow")), (405, "GET, HEAD, OPTIONS"))
    reply = curl(base + "/nope")
    check.equal("unknown path: JSON 404", (reply.status, reply.json()["error"]), (404, "Not found"))
    check.equal("Host check on loopback", curl(base + "/healthz", "-H", "Host: evil.example").status, 403)
    reply = curl(base + "/key/big", "-X", "PUT", "--data-binary", "1" * (HTTP_MAX_BODY_BYTES + 1))
    check.equal("body over --http-max-body-bytes: 413", reply.status, 413)
    check.equal("head over the limit: 431", curl(base + "/healthz", "-H", "X-Big: " + "a" * 20_000).status, 431)

    check.equal("/healthz", curl(base + "/healthz").json(), {"status": "ok"})
    check.equal("/readyz", curl(base + "/readyz").json(), {"status": "ready"})
    check.true("/openapi.json lists the routes", "/key/{key}" in curl(base + "/openapi.json").json()["paths"])

    before = _metrics(base)
    curl(base + "/healthz", base + "/key/user:1", base + "/key/n")  # one curl, one kept-alive connection
    after = _metrics(base)
    check.equal(
        "keep-alive: three requests, one connection (plus the /metrics one)",
        after["trio_kv_connections_received_total"] - before["trio_kv_connections_received_total"],
        2,
    )
    set_ok = 'trio_kv_commands_total{command="set",result="ok"}'
    check.equal("metrics count every SET, all protocols", after.get(set_ok), 5.0)
    check.equal("metrics: keys", after.get("trio_kv_keys"), 4.0)
    check.true(
        "metrics: a latency histogram per command",
        after.get('trio_kv_command_latency_seconds_count{command="get"}', 0) >= 5,
        sorted(name for name in after if "latency" in name)[:5],
    )
    check.notes.append(f"HTTP on {base.removeprefix('http://')}")
