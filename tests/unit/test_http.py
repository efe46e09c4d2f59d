"""The HTTP API's pure parts without sockets: JSON value mapping, targets,
the Host guard, routes as store calls, the metrics text, response framing
and the options."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from trio_kv.http.routes import (
    CorsPolicy,
    HttpApi,
    HttpRequest,
    HttpResponse,
    StoreCall,
    host_header_allowed,
    parse_query,
    split_target,
)
from trio_kv.http.json_values import compact_json, is_json, value_json
from trio_kv.http.prometheus import LATENCY_BUCKETS_SECONDS, CommandLatency, MetricsSnapshot, render_metrics
from trio_kv.config import Config, parse_config
from trio_kv.protocol.http_response import encode_response, keep_alive
from trio_kv.protocol.replies import Error


@pytest.mark.parametrize(
    ("body", "compact"),
    [
        (b' { "a" : [ 1 , 2.10 ] } ', b'{"a":[1,2.10]}'),
        (b'"  spaced \\" string  "', b'"  spaced \\" string  "'),
        (b"\t123456789012345678901234567890123\n", b"123456789012345678901234567890123"),
        (b'{"\xc3\xa9" : "\\ud800"}', b'{"\xc3\xa9":"\\ud800"}'),
        (b"1e999", b"1e999"),
        (b"[]", b"[]"),
    ],
)
def test_compact_json_keeps_the_text(body, compact):
    assert compact_json(body) == compact


@pytest.mark.parametrize("body", [b"", b" ", b"{", b"NaN", b"-Infinity", b"[1,]", b"\xff", b"\xef\xbb\xbf{}", b"[" * 3000])
def test_invalid_json_is_refused(body):
    assert compact_json(body) is None


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20))
@settings(max_examples=100, deadline=None)
def test_compact_json_is_json_dumps_compact(value):
    pretty = json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8", "surrogatepass")
    compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    if is_json(pretty):  # text with lone surrogates is not UTF-8
        assert compact_json(pretty) == compact


def test_value_json_maps_other_values_to_strings():
    assert value_json(b"42") == b"42"
    assert value_json(b"hello") == b'"hello"'
    assert value_json(b"\xffa\"b") == '"\ufffda\\"b"'.encode()
    assert value_json(b" [1, 2] ") == b"[1,2]"


@pytest.mark.parametrize(
    ("target", "parts"),
    [
        (b"/key/a?ttl=5", (b"/key/a", b"ttl=5")),
        (b"/keys", (b"/keys", b"")),
        (b"http://localhost:9100/keys?limit=1", (b"/keys", b"limit=1")),
        (b"https://h", (b"/", b"")),
        (b"http://h?x=1", (b"/", b"x=1")),
        (b"*", None),
        (b"ftp://h/x", None),
        (b"keys", None),
    ],
)
def test_split_target(target, parts):
    assert split_target(target) == parts


def test_parse_query():
    assert parse_query(b"pattern=user%3A*&prefix=a+b&&limit=5&limit=6&flag") == {
        b"pattern": b"user:*",
        b"prefix": b"a b",
        b"limit": b"6",
        b"flag": b"",
    }


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (b"localhost", True),
        (b"LOCALHOST:9100", True),
        (b"api.localhost:1", True),
        (b"127.0.0.1:9100", True),
        (b"127.9.9.9", True),
        (b"[::1]:9100", True),
        (b"[::1]", True),
        (b"localhost.", True),
        (None, False),
        (b"", False),
        (b"evil.example", False),
        (b"localhost.evil.example", False),
        (b"10.0.0.1", False),
        (b"[::1", False),
        (b"[::1]9100", False),
        (b"::1", False),
    ],
)
def test_host_header_allowed(host, allowed):
    assert host_header_allowed(host) is allowed


def _api(check_host: bool = False) -> HttpApi:
    return HttpApi(check_host=check_host, render_metrics=lambda: b"m 1\n", not_ready_reason=lambda: None)


def _handle(method: bytes, target: bytes, body: bytes = b"", host: bytes = b"localhost"):
    return _api(check_host=True).handle(HttpRequest(method, target, [(b"host", host)], body))


def test_routes_become_store_calls():
    routed = _handle(b"PUT", b"/key/a%20b?ttl=30", b' {"x": 1} ')
    assert routed.route == "/key/{key}"
    call = routed.plan
    assert isinstance(call, StoreCall)
    assert call.commands == [[b"SET", b"a b", b'{"x":1}', b"EX", b"30"]]
    done = call.then([Error("MISCONF disk full")])
    assert (done.status, json.loads(done.body)) == (503, {"error": "MISCONF disk full"})
    assert call.then([Error("ERR internal error, see the server log")]).status == 500

    get = _handle(b"HEAD", b"/key/k").plan
    assert get.commands == [[b"GET", b"k"]]
    assert get.then([None]).status == 404
    assert json.loads(get.then([b"not json"]).body) == {"key": "k", "value": "not json"}

    assert _handle(b"DELETE", b"/key/k").plan.then([0]).status == 404


def test_keys_prefix_listing_pages_through_the_sorted_index():
    listing = _handle(b"GET", b"/keys?prefix=u%2A&limit=3").plan
    assert listing.commands == [[b"KRANGE", b"[u*", b"(u+", b"LIMIT", b"0", b"4"], [b"DBSIZE"]]
    page = listing.then([[b"u*1", b"u*2", b"u*3", b"u*4"], 10])
    assert json.loads(page.body) == {"totalKeys": 10, "keys": ["u*1", "u*2", "u*3"], "cursor": "k" + b"u*3".hex()}
    following = _handle(b"GET", b"/keys?prefix=u%2A&limit=3&cursor=k" + b"u*3".hex().encode()).plan
    assert following.commands == [[b"KRANGE", b"(u*3", b"(u+", b"LIMIT", b"0", b"4"], [b"DBSIZE"]]
    last = following.then([[b"u*4"], 10])
    assert json.loads(last.body) == {"totalKeys": 10, "keys": ["u*4"], "cursor": None}
    everything = _handle(b"GET", b"/keys?prefix=%FF&limit=3").plan
    assert everything.commands[0] == [b"KRANGE", b"[\xff", b"+", b"LIMIT", b"0", b"4"]


def test_keys_listing_pages_through_scan():
    listing = _handle(b"GET", b"/keys?prefix=u%2A&limit=3").plan
    # The sorted index is off (or holds one node's share): the SCAN listing.
    listing = listing.then([Error("ERR the sorted key index is off (--sorted-index no)"), 10])
    assert listing.commands == [[b"SCAN", b"0", b"COUNT", b"3", b"MATCH", b"u\\**"], [b"DBSIZE"]]
    following = listing.then([[b"17", [b"u*1"]], 10])
    assert following.commands == [[b"SCAN", b"17", b"COUNT", b"2", b"MATCH", b"u\\**"]]
    page = following.then([[b"0", [b"u*3", b"u*1"]]])
    assert json.loads(page.body) == {"totalKeys": 10, "keys": ["u*1", "u*3"], "cursor": None}


def test_keys_limit_is_a_hard_maximum_hop_ends_the_page_before_it():
    # The second hop returns a whole bucket of 3 keys with room for 2: the
    # page ends before that hop, and the next page starts where it started.
    listing = _handle(b"GET", b"/keys?limit=3").plan
    second = listing.then([[b"17", [b"a"]], 9])
    assert second.commands == [[b"SCAN", b"17", b"COUNT", b"2"]]
    page = second.then([[b"5", [b"b", b"c", b"d"]]])
    assert json.loads(page.body) == {"totalKeys": 9, "keys": ["a"], "cursor": "17"}


def test_keys_overflowing_first_hop_is_redone_one_bucket_at_a_time():
    listing = _handle(b"GET", b"/keys?limit=2&cursor=4").plan
    assert listing.commands[0] == [b"SCAN", b"4", b"COUNT", b"2"]
    single = listing.then([[b"6", [b"x", b"y", b"z"]], 3])
    assert single.commands == [[b"SCAN", b"4", b"COUNT", b"1"]]
    # One bucket of 3 keys: the first 2 in key order, and a cursor into the bucket.
    page = single.then([[b"6", [b"z", b"x", b"y"]]])
    assert json.loads(page.body) == {"totalKeys": 3, "keys": ["x", "y"], "cursor": "4-2"}
    resumed = _handle(b"GET", b"/keys?limit=2&cursor=4-2").plan
    assert resumed.commands[0] == [b"SCAN", b"4", b"COUNT", b"1"]
    following = resumed.then([[b"6", [b"y", b"z", b"x"]], 3])
    assert following.commands == [[b"SCAN", b"6", b"COUNT", b"1"]]
    page = following.then([[b"0", []]])
    assert json.loads(page.body) == {"totalKeys": 3, "keys": ["z"], "cursor": None}


@pytest.mark.parametrize("cursor", [b"-1", b"1-0", b"01", b"1-", b"1-2-3", b"x"])
def test_keys_bad_cursor(cursor):
    assert _handle(b"GET", b"/keys?cursor=" + cursor).plan.status == 400


def test_answers_without_the_store():
    assert _handle(b"GET", b"/metrics").plan.body == b"m 1\n"
    assert _handle(b"GET", b"/healthz", host=b"evil.example").plan.status == 403
    assert _api(check_host=False).handle(HttpRequest(b"GET", b"/healthz", [(b"host", b"evil")])).plan.status == 200
    unknown = _handle(b"GET", b"/key/a/b")
    assert (unknown.route, unknown.plan.status, unknown.plan.counts_as_error) == ("unmatched", 404, True)
    wrong = _handle(b"PATCH", b"/healthz").plan
    assert (wrong.status, dict(wrong.headers)[b"allow"]) == (405, b"GET, HEAD, OPTIONS")
    invalid = _handle(b"PUT", b"/key/a", b"{").plan
    assert isinstance(invalid, HttpResponse) and (invalid.status, invalid.counts_as_error) == (400, True)


def test_metrics_text_parses():
    snapshot = MetricsSnapshot(
        counters={"errors": 3, "keyspace_hits": 1, "keyspace_misses": 2, "total_connections": 4, "rejected_connections": 0},
        commands={"get": (10, 1), 'we"ird\\name': (1, 0)},
        latency={"get": CommandLatency(10, 0.002, [0, 5] + [10] * (len(LATENCY_BUCKETS_SECONDS) - 2))},
        keys=7,
        value_bytes=70,
        expired_keys=1,
        connected_clients={"http": 1, "resp": 0, "text": 2},
        max_clients=100,
        ready=True,
        uptime_seconds=1.5,
        http_requests={("/keys", "GET", 200): 2},
        persistence={"aof_enabled": 1},
    )
    families = {family.name: family for family in text_string_to_metric_families(render_metrics(snapshot).decode())}
    commands = {(s.labels["command"], s.labels["result"]): s.value for s in families["trio_kv_commands"].samples}
    assert commands == {("get", "ok"): 9, ("get", "error"): 1, ('we"ird\\name', "ok"): 1, ('we"ird\\name', "error"): 0}
    histogram = families["trio_kv_command_latency_seconds"]
    assert histogram.type == "histogram"
    buckets = [s for s in histogram.samples if s.name.endswith("_bucket")]
    assert [s.labels["le"] for s in buckets][-1] == "+Inf"
    assert [s.value for s in buckets][:3] == [0, 5, 10]
    assert families["trio_kv_persistence_aof_enabled"].samples[0].value == 1
    assert families["trio_kv_ready"].samples[0].value == 1


def test_http_options():
    assert Config().http_port is None
    assert parse_config(["--http-port", "0"], {}).http_port == 0
    assert parse_config([], {"TRIO_KV_HTTP_PORT": "9100"}).http_port == 9100
    # "off" on the command line wins over the environment.
    assert parse_config(["--http-port", "off"], {"TRIO_KV_HTTP_PORT": "9100"}).http_port is None
    config = parse_config(
        ["--http-max-head-bytes", "2048", "--http-max-body-bytes", "10", "--http-idle-timeout-seconds", "0.5"], {}
    )
    assert (config.http_max_head_bytes, config.http_max_body_bytes, config.http_idle_timeout_seconds) == (2048, 10, 0.5)
    for argv in (["--http-port", "65536"], ["--http-request-timeout-seconds", "0"], ["--http-max-head-bytes", "10"]):
        with pytest.raises(SystemExit):
            parse_config(argv, {})


def test_cors_origins_option():
    assert Config().http_cors_origins == ""
    assert parse_config(["--http-cors-origins", " https://a.example:8443 , http://b.example "], {}).http_cors_origins == (
        "https://a.example:8443,http://b.example"
    )
    assert parse_config([], {"TRIO_KV_HTTP_CORS_ORIGINS": "*"}).http_cors_origins == "*"
    for value in ("app.example", "http://app.example/path", "ftp://x", "*,http://a.example", "http://"):
        with pytest.raises(SystemExit):
            parse_config(["--http-cors-origins", value], {})
    policy = CorsPolicy.parse("https://A.example:8443,http://b.example")
    assert policy.response_headers(b"https://a.example:8443") == (
        (b"access-control-allow-origin", b"https://a.example:8443"), (b"vary", b"Origin"),
    )
    assert policy.response_headers(b"http://evil.example") == ((b"vary", b"Origin"),)
    assert CorsPolicy.parse("").response_headers(b"http://b.example") == ()
    assert CorsPolicy.parse("*").response_headers(None) == ((b"access-control-allow-origin", b"*"),)


def test_encode_response_framing():
    headers = [(b"content-type", b"text/plain")]
    assert encode_response(200, headers, b"hi") == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nhi"
    )
    assert encode_response(404, [], b"gone", head_only=True, close=True) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\nconnection: close\r\n\r\n"
    )
    assert encode_response(204, [(b"allow", b"GET")], b"") == b"HTTP/1.1 204 No Content\r\nallow: GET\r\n\r\n"


@pytest.mark.parametrize(
    ("version", "headers", "kept"),
    [
        (b"1.1", [], True),
        (b"1.1", [(b"connection", b"keep-alive")], True),
        (b"1.1", [(b"connection", b"Upgrade, Close")], False),
        (b"1.0", [], False),
        (b"1.0", [(b"connection", b"keep-alive")], False),  # h11's rule: 1.0 always closes
    ],
)
def test_keep_alive(version, headers, kept):
    assert keep_alive(version, headers) is kept


def test_range_pages_with_krange_withvalues():
    plan = _handle(b"GET", b"/range?start=a&end=c&limit=2").plan
    assert plan.commands == [[b"KRANGE", b"[a", b"(c", b"LIMIT", b"0", b"3", b"WITHVALUES"]]
    page = plan.then([[b"a", b"1", b"b", memoryview(b'{"x":2}'), b"b2", None]])
    assert json.loads(page.body) == {
        "items": [{"key": "a", "value": 1}, {"key": "b", "value": {"x": 2}}], "cursor": "k" + b"b".hex(),
    }
    resumed = _handle(b"GET", b"/range?start=a&end=c&limit=2&cursor=k" + b"b".hex().encode()).plan
    assert resumed.commands[0][1:3] == [b"(b", b"(c"]
    last = resumed.then([[b"b2", None]])
    assert json.loads(last.body) == {"items": [{"key": "b2", "value": None}], "cursor": None}
    assert _handle(b"GET", b"/range").plan.commands == [
        [b"KRANGE", b"-", b"+", b"LIMIT", b"0", b"1001", b"WITHVALUES"]
    ]
    refused = _handle(b"GET", b"/range").plan.then([Error("ERR the sorted key index is off (--sorted-index no)")])
    assert refused.status == 400


@pytest.mark.parametrize("query", [b"limit=0", b"limit=10001", b"cursor=0", b"cursor=kx", b"cursor=k1", b"cursor="])
def test_range_bad_limit_or_cursor(query):
    assert _handle(b"GET", b"/range?" + query).plan.status == 400
