"""The HTTP JSON API as data: which route a request takes, the Redis commands
it runs and the JSON it answers. Pure: no IO, no trio, no store.

Routes (the reference REST store's, plus operations endpoints):

    PUT    /key/{key}[?ttl=S]  SET key <compact JSON body> [EX S]
                               -> 200 {"success": true, "key": k, "value": v}
                                  400 {"error": "Invalid JSON"} / bad ttl
    GET    /key/{key}          GET key -> 200 {"key": k, "value": v}
                                  404 {"error": "Key not found", "key": k}
    DELETE /key/{key}          DEL key -> 200 {"success": true, "key": k} / 404
    GET    /keys               SCAN (+ DBSIZE) -> 200 {"totalKeys": n,
                               "keys": [...], "cursor": "..."|null}
    GET    /range              KRANGE ... WITHVALUES -> 200 {"items":
                               [{"key": k, "value": v}, ...], "cursor": "..."|null}
    GET    /metrics            Prometheus text (http.prometheus)
    GET    /healthz, /readyz   alive; ready (200) or not (503)
    GET    /openapi.json       the OpenAPI document (http.openapi)

``HEAD`` works wherever ``GET`` does; ``OPTIONS`` answers 204 with ``Allow``
and the CORS preflight headers; any other method is 405 with ``Allow``; an
unknown path is a JSON 404.

A request becomes a ``Plan``: a finished ``HttpResponse``, or a ``StoreCall``
(the commands for one worker hop through the shared Redis command table, so
counters, latency, locks and durability apply exactly as for RESP, and a
function from their replies to the next plan). The connection task
(``server.http_connection``) runs the store calls; nothing here touches the
store. Value and key mapping between protocols: ``http.json_values``.

``GET /keys`` pages with SCAN and answers exactly ``{"totalKeys", "keys",
"cursor"}`` (the reference store's fields plus the cursor). ``limit``
(default ``DEFAULT_KEYS_LIMIT``, at most ``MAX_KEYS_LIMIT``) is a hard
maximum on the page; a page can hold fewer keys (a pattern filters after the
scan; a page stops after ``MAX_SCANS_PER_PAGE`` hops, or before a hop that
would overflow it: see ``_KeysListing``); follow ``cursor`` until it is
null. Every key present for the whole listing is listed; a key written
during the listing may be missed or repeated, as with SCAN (one exception,
``_KeysListing``: when a page split a single bucket, a key of that bucket
deleted before the next page can make it skip one other key of the bucket).
``totalKeys`` is DBSIZE: all keys in the store, whatever the filter.
A listing with only ``prefix=`` is served from the sorted key index instead
(KRANGE over the prefix's keys, ``_IndexListing``) when it is on: the
page's keys come in byte order and its cursor is ``k<hex of the last key
listed>``; the next page starts strictly after that key, so every key
present for the whole listing is listed exactly once.

``GET /range?start=&end=&limit=&cursor=`` pages through the keys from
``start`` (inclusive; absent: the first key) to ``end`` (exclusive;
absent: the last) in byte order, with their values (as ``GET /key`` gives
them; a value of another type than string is null): ``limit`` (default
``DEFAULT_KEYS_LIMIT``) is a hard maximum (at most ``MAX_KEYS_LIMIT``),
and ``cursor`` (``k<hex>``, as above) is null on the last page. Each page
is one KRANGE, so one page is an exact snapshot; a key present for the
whole paging is listed exactly once. With ``--sorted-index no`` the
answer is 400.

CORS is opt-in (``CorsPolicy``, from ``--http-cors-origins``): by default no
response carries an ``Access-Control-*`` header, so a page on another origin
can neither read a response nor pass a preflight (a DELETE, a JSON PUT). A
listed origin gets ``Access-Control-Allow-Origin: <that origin>`` (with
``Vary: Origin`` on every response, so caches keep the answers apart) and
its preflights get the route's methods and echo
``Access-Control-Request-Headers``; an unlisted origin gets no allowance,
preflight included. ``*`` is the reference store's behaviour (Express'
``cors()``): ``Access-Control-Allow-Origin: *`` on every response and every
preflight allowed.

Authentication: while a password is set (``--requirepass``, ``CONFIG SET
requirepass``), every request but ``GET``/``HEAD /healthz`` (liveness,
which says nothing but "the process answers") and ``OPTIONS`` (a CORS
preflight never carries credentials) needs ``Authorization: Bearer
<password>``; without it, or with another password, the answer is ``401``
with ``WWW-Authenticate: Bearer`` (RFC 6750), before routing, so an
unauthenticated client learns nothing (not even which paths exist).
``/metrics`` and ``/readyz`` need it too: they tell counters, keys and disk
errors. The password is compared in constant time (commands.auth).

Store error replies: ``LOADING``/``MISCONF``/``READONLY``/``BUSY`` (the server
cannot take it now) are 503, an internal error is 500, anything else (key or
value too long, TTL out of range) is 400; the body is ``{"error": message}``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from ..protocol.integers import parse_integer
from ..protocol.replies import Error
from ..commands.auth import bearer_token, password_matches
from ..commands.ordered import NO_INDEX_PREFIX
from ..commands.ordered_range import prefix_end
from .openapi import OPENAPI_JSON
from .json_values import compact_json, json_text, key_text, value_json

JSON_TYPE = b"application/json; charset=utf-8"
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
DEFAULT_KEYS_LIMIT = 1000
MAX_KEYS_LIMIT = 10_000
MAX_SCANS_PER_PAGE = 16
UNMATCHED_ROUTE = "unmatched"

# A SCAN cursor, optionally "-<keys of its first bucket already listed>".
_CURSOR = re.compile(rb"(0|[1-9][0-9]{0,19})(?:-([1-9][0-9]{0,4}))?")
# A sorted-index cursor: "k" and the hex of the last key listed.
_KEY_CURSOR = re.compile(rb"k((?:[0-9a-f]{2})*)")
_UNAVAILABLE_CODES = {"LOADING", "MISCONF", "READONLY", "BUSY", "NOREPLICAS", "TRYAGAIN"}
_GLOB_SPECIALS = re.compile(rb"([*?\[\]\\])")


def _parse_positive(token: bytes) -> int | None:
    """1 to 19 ASCII digits, no leading zero; no upper bound here (a ttl
    past 2**63 is the store's error to word, as it was)."""
    return parse_integer(token, minus=False, max_bytes=19, minimum=1, maximum=None)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: bytes
    target: bytes
    # Header names lower-case (as h11 gives them).
    headers: Sequence[tuple[bytes, bytes]] = ()
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        for header_name, value in self.headers:
            if header_name == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: bytes | None = JSON_TYPE
    headers: tuple[tuple[bytes, bytes], ...] = ()
    # An error reply that no command produced (routing, validation, framing):
    # counted in the server's ``errors`` as the other protocols count theirs.
    counts_as_error: bool = False


@dataclass(frozen=True, slots=True)
class StoreCall:
    commands: list[list[bytes]]
    then: Callable[[list[object]], "HttpResponse | StoreCall"]


Plan = HttpResponse | StoreCall


@dataclass(frozen=True, slots=True)
class Routed:
    # The route template (a metrics label: never the raw path, whose values are unbounded).
    route: str
    plan: Plan


def error_response(
    status: int,
    message: str,
    *,
    counts_as_error: bool = True,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    **fields: object,
) -> HttpResponse:
    """``{"error": message, **fields}``."""
    body = json_text({"error": message, **fields})
    return HttpResponse(status, body, headers=headers, counts_as_error=counts_as_error)


def _json_response(status: int, document: object) -> HttpResponse:
    return HttpResponse(status, json_text(document))


def _key_not_found(key: bytes) -> HttpResponse:
    return error_response(404, "Key not found", counts_as_error=False, key=key_text(key))


def _store_error(reply: Error) -> HttpResponse:
    code, _, rest = reply.message.partition(" ")
    if code in _UNAVAILABLE_CODES:
        return error_response(503, reply.message, counts_as_error=False)
    message = rest if code == "ERR" else reply.message
    if message.startswith("internal error"):
        return error_response(500, message, counts_as_error=False)
    return error_response(400, message, counts_as_error=False)


# --- request targets, query strings, Host --------------------------------------


def split_target(target: bytes) -> tuple[bytes, bytes] | None:
    """``(path, query)`` of an origin-form (``/p?q``) or absolute-form
    (``http://host/p?q``) target; None for anything else."""
    if not target.startswith(b"/"):
        scheme, separator, rest = target.partition(b"://")
        if not separator or scheme.lower() not in (b"http", b"https"):
            return None
        slash = rest.find(b"/")
        question = rest.find(b"?")
        if slash < 0 or 0 <= question < slash:
            target = b"/" + (rest[question:] if question >= 0 else b"")
        else:
            target = rest[slash:]
    path, _, query = target.partition(b"?")
    return path, query


def parse_query(query: bytes) -> dict[bytes, bytes]:
    """Form-style fields (``+`` is a space, ``%XX`` a byte); the last of a repeated name wins."""
    fields: dict[bytes, bytes] = {}
    for part in query.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            fields[unquote_to_bytes(name.replace(b"+", b" "))] = unquote_to_bytes(value.replace(b"+", b" "))
    return fields


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or name, no port) always means this machine."""
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)  # a server sees a handful of Host values
def host_header_allowed(value: bytes | None) -> bool:
    """DNS-rebinding guard for a loopback listener: the Host header must name
    loopback (``localhost``, ``*.localhost``, ``127.x.x.x``, ``[::1]``), port optional."""
    if not value:
        return False
    host = value.decode("ascii", "replace").strip()
    if host.startswith("["):
        address, bracket, port = host[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return False
        return is_loopback_host(address)
    name, _, _port = host.partition(":")
    return is_loopback_host(name)


# --- the routes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    request: HttpRequest
    query: dict[bytes, bytes]
    key: bytes = b""


def _get_key(api: HttpApi, call: _Call) -> Plan:
    key = call.key

    def answer(replies: list[object]) -> HttpResponse:
        reply = replies[0]
        if isinstance(reply, Error):
            return _store_error(reply)
        if reply is None:
            return _key_not_found(key)
        if type(reply) is memoryview:
            reply = reply.tobytes()  # a grown value (store.growable): JSON needs bytes
        assert isinstance(reply, bytes)
        return HttpResponse(200, b'{"key":' + json_text(key_text(key)) + b',"value":' + value_json(reply) + b"}")

    return StoreCall([[b"GET", key]], answer)


def _put_key(api: HttpApi, call: _Call) -> Plan:
    key = call.key
    value = compact_json(call.request.body)
    if value is None:
        return error_response(400, "Invalid JSON")
    command = [b"SET", key, value]
    ttl = call.query.get(b"ttl")
    if ttl is not None:
        if _parse_positive(ttl) is None:
            return error_response(400, "Invalid ttl: expected a positive whole number of seconds")
        command += [b"EX", ttl]

    def answer(replies: list[object]) -> HttpResponse:
        if isinstance(replies[0], Error):
            return _store_error(replies[0])
        return HttpResponse(
            200, b'{"success":true,"key":' + json_text(key_text(key)) + b',"value":' + value + b"}"
        )

    return StoreCall([command], answer)


def _delete_key(api: HttpApi, call: _Call) -> Plan:
    key = call.key

    def answer(replies: list[object]) -> HttpResponse:
        reply = replies[0]
        if isinstance(reply, Error):
            return _store_error(reply)
        if not reply:
            return _key_not_found(key)
        return _json_response(200, {"success": True, "key": key_text(key)})

    return StoreCall([[b"DEL", key]], answer)


class _KeysListing:
    """One ``GET /keys`` page: SCAN hops until the page is full, the scan
    ended, or ``MAX_SCANS_PER_PAGE`` hops were spent.

    ``limit`` is a hard maximum. A SCAN hop returns whole buckets, so a hop
    may bring more keys than the page has room for; then:

    * if the page already has keys, it ends before that hop: the page's
      cursor is where the hop started, and the next page repeats it;
    * if the page is empty, the hop is redone with ``COUNT 1`` (one bucket);
      if that one bucket still holds more keys than ``limit`` (practical
      only for a limit of 1 or 2), the page takes the first ``limit`` of
      them in key order and its cursor is ``<scan cursor>-<keys taken>``,
      so the next page skips those in that bucket.
    """

    def __init__(self, match: bytes | None, prefix: bytes | None, limit: int, skip: int) -> None:
        self.match = match
        self.prefix = prefix
        self.limit = limit
        self.keys: dict[bytes, None] = {}  # a dict: ordered and without repeats
        self.total: int | None = None
        self.scans = 0
        # Keys of the first bucket a previous page already listed (cursor "c-k").
        self.skip = skip
        # The next hop must be a single bucket (COUNT 1).
        self.single = skip > 0
        # Where the hop under way started (the page's cursor if it ends before it).
        self.step_cursor = b"0"

    def scan(self, cursor: bytes) -> StoreCall:
        self.step_cursor = cursor
        count = 1 if self.single else self.limit - len(self.keys)
        command = [b"SCAN", cursor, b"COUNT", b"%d" % count]
        if self.match is not None:
            command += [b"MATCH", self.match]
        commands = [command, [b"DBSIZE"]] if self.total is None else [command]
        return StoreCall(commands, self._scanned)

    def _scanned(self, replies: list[object]) -> Plan:
        reply = replies[0]
        if isinstance(reply, Error):
            return _store_error(reply)
        if len(replies) > 1 and isinstance(replies[1], int):
            self.total = replies[1]
        assert isinstance(reply, list)
        cursor, found = reply
        self.scans += 1
        prefix = self.prefix
        listed = self.keys
        fresh = sorted(key for key in found if (prefix is None or key.startswith(prefix)) and key not in listed)
        skip, self.skip = self.skip, 0
        fresh = fresh[skip:]
        room = self.limit - len(listed)
        if len(fresh) > room:
            if listed:
                return self._page(self.step_cursor)
            if not self.single:
                self.single = True
                self.skip = skip
                return self.scan(self.step_cursor)
            listed.update(dict.fromkeys(fresh[:room]))
            return self._page(self.step_cursor + b"-%d" % (skip + room))
        listed.update(dict.fromkeys(fresh))
        self.single = False
        if cursor != b"0" and len(listed) < self.limit and self.scans < MAX_SCANS_PER_PAGE:
            return self.scan(cursor)
        return self._page(None if cursor == b"0" else cursor)

    def _page(self, cursor: bytes | None) -> HttpResponse:
        return _json_response(
            200,
            {
                "totalKeys": self.total or 0,
                "keys": [key_text(key) for key in sorted(self.keys)],
                "cursor": None if cursor is None else cursor.decode("ascii"),
            },
        )


def _key_cursor(key: bytes) -> str:
    return "k" + key.hex()


def _page_limit(query: dict[bytes, bytes]) -> int | HttpResponse:
    limit_text = query.get(b"limit")
    if limit_text is None:
        return DEFAULT_KEYS_LIMIT
    parsed_limit = _parse_positive(limit_text)
    if parsed_limit is None or parsed_limit > MAX_KEYS_LIMIT:
        return error_response(400, f"Invalid limit: expected a whole number from 1 to {MAX_KEYS_LIMIT}")
    return parsed_limit


def _bad_cursor() -> HttpResponse:
    return error_response(400, "Invalid cursor: pass the cursor a previous page returned")


class _IndexListing:
    """A ``GET /keys?prefix=`` page from the sorted key index (one KRANGE
    of at most ``limit + 1`` keys after ``after``, and DBSIZE); if the
    index is off, or holds one node's share (a multi-node cluster: SCAN
    then lists every member), the SCAN listing (``fallback``) serves the page."""

    def __init__(self, prefix: bytes, after: bytes | None, limit: int, fallback: Callable[[], Plan]) -> None:
        self.limit = limit
        self.fallback = fallback
        end = prefix_end(prefix)
        low = b"[" + prefix if after is None else b"(" + after
        high = b"+" if end is None else b"(" + end
        self.call = StoreCall([[b"KRANGE", low, high, b"LIMIT", b"0", b"%d" % (limit + 1)], [b"DBSIZE"]], self._ranged)

    def _ranged(self, replies: list[object]) -> Plan:
        keys, total = replies
        if isinstance(keys, Error):
            # The index is off, or holds one node's share (a multi-node cluster).
            return self.fallback() if keys.message.startswith(NO_INDEX_PREFIX) else _store_error(keys)
        assert isinstance(keys, list) and isinstance(total, int)
        more = len(keys) > self.limit
        keys = keys[: self.limit]
        return _json_response(
            200,
            {
                "totalKeys": total,
                "keys": [key_text(key) for key in keys],
                "cursor": _key_cursor(keys[-1]) if more else None,
            },
        )


def _list_keys(api: HttpApi, call: _Call) -> Plan:
    query = call.query
    limit = _page_limit(query)
    if isinstance(limit, HttpResponse):
        return limit
    pattern = query.get(b"pattern")
    prefix = query.get(b"prefix")
    cursor_text = query.get(b"cursor", b"0")
    key_cursor = _KEY_CURSOR.fullmatch(cursor_text)
    if pattern is None and prefix:
        if key_cursor is not None or cursor_text == b"0":
            after = None if key_cursor is None else bytes.fromhex(key_cursor.group(1).decode("ascii"))
            fallback = functools.partial(_scan_listing, pattern, prefix, limit, b"0", 0)
            return _IndexListing(prefix, after, limit, fallback).call
    cursor_match = _CURSOR.fullmatch(cursor_text)
    if cursor_match is None:
        return _bad_cursor()
    return _scan_listing(pattern, prefix, limit, cursor_match.group(1), int(cursor_match.group(2) or 0))


def _scan_listing(pattern: bytes | None, prefix: bytes | None, limit: int, cursor: bytes, skip: int) -> Plan:
    if pattern is None and prefix:
        # Only a prefix: SCAN matches it directly (its glob characters escaped).
        listing = _KeysListing(_GLOB_SPECIALS.sub(rb"\\\1", prefix) + b"*", None, limit, skip)
    else:
        listing = _KeysListing(pattern, prefix or None, limit, skip)
    return listing.scan(cursor)


def _range(api: HttpApi, call: _Call) -> Plan:
    query = call.query
    limit = _page_limit(query)
    if isinstance(limit, HttpResponse):
        return limit
    start, end, cursor = query.get(b"start"), query.get(b"end"), query.get(b"cursor")
    if cursor is not None:
        key_cursor = _KEY_CURSOR.fullmatch(cursor)
        if key_cursor is None:
            return _bad_cursor()
        low = b"(" + bytes.fromhex(key_cursor.group(1).decode("ascii"))
    else:
        low = b"[" + start if start else b"-"
    high = b"(" + end if end else b"+"
    command = [b"KRANGE", low, high, b"LIMIT", b"0", b"%d" % (limit + 1), b"WITHVALUES"]

    def answer(replies: list[object]) -> HttpResponse:
        reply = replies[0]
        if isinstance(reply, Error):
            return _store_error(reply)
        assert isinstance(reply, list)
        more = len(reply) > 2 * limit
        items = []
        for at in range(0, min(len(reply), 2 * limit), 2):
            key, value = reply[at], reply[at + 1]
            if type(value) is memoryview:
                value = value.tobytes()  # a grown value (store.growable): JSON needs bytes
            items.append(
                b'{"key":' + json_text(key_text(key)) + b',"value":' + (b"null" if value is None else value_json(value)) + b"}"
            )
        next_cursor = json_text(_key_cursor(reply[2 * limit - 2])) if more else b"null"
        return HttpResponse(200, b'{"items":[' + b",".join(items) + b'],"cursor":' + next_cursor + b"}")

    return StoreCall([command], answer)


def _metrics(api: HttpApi, call: _Call) -> Plan:
    return HttpResponse(200, api.render_metrics(), METRICS_TYPE)


def _healthz(api: HttpApi, call: _Call) -> Plan:
    return _json_response(200, {"status": "ok"})


def _readyz(api: HttpApi, call: _Call) -> Plan:
    reason = api.not_ready_reason()
    if reason is None:
        return _json_response(200, {"status": "ready"})
    return _json_response(503, {"status": "not ready", "reason": reason})


def _openapi(api: HttpApi, call: _Call) -> Plan:
    return HttpResponse(200, OPENAPI_JSON)


_Handler = Callable[["HttpApi", _Call], Plan]


@dataclass(frozen=True)
class _Route:
    template: str
    handlers: dict[bytes, _Handler]

    @property
    def allowed(self) -> list[bytes]:
        methods = list(self.handlers)
        if b"GET" in self.handlers:
            methods.insert(methods.index(b"GET") + 1, b"HEAD")
        return methods + [b"OPTIONS"]


_KEY_ROUTE = _Route("/key/{key}", {b"GET": _get_key, b"PUT": _put_key, b"DELETE": _delete_key})
_FIXED_ROUTES = {
    route.template.encode(): route
    for route in (
        _Route("/keys", {b"GET": _list_keys}),
        _Route("/range", {b"GET": _range}),
        _Route("/metrics", {b"GET": _metrics}),
        _Route("/healthz", {b"GET": _healthz}),
        _Route("/readyz", {b"GET": _readyz}),
        _Route("/openapi.json", {b"GET": _openapi}),
    )
}
_ALL_METHODS = b"GET, HEAD, PUT, DELETE, OPTIONS"
_KEY_PREFIX = b"/key/"
# Served without a password (see the module docstring).
_OPEN_PATHS = frozenset({b"/healthz"})
_UNAUTHORIZED_HEADERS = ((b"www-authenticate", b'Bearer realm="trio_kv"'),)
_BAD_TOKEN_HEADERS = ((b"www-authenticate", b'Bearer realm="trio_kv", error="invalid_token"'),)


def _match(path: bytes) -> tuple[_Route, bytes] | None:
    route = _FIXED_ROUTES.get(path)
    if route is not None:
        return route, b""
    if path.startswith(_KEY_PREFIX):
        segment = path[len(_KEY_PREFIX) :]
        if segment and b"/" not in segment:
            return _KEY_ROUTE, unquote_to_bytes(segment)
    return None


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """Which browser origins may use the API (``--http-cors-origins``)."""

    # "*": every origin, and the header on every response (the reference store).
    any_origin: bool = False
    # Exact origins (``https://app.example:8443``), lower-case.
    origins: frozenset[bytes] = frozenset()

    @classmethod
    def parse(cls, text: str) -> CorsPolicy:
        """From the option's value (already checked by ``config``)."""
        names = [part.strip() for part in text.split(",") if part.strip()]
        if names == ["*"]:
            return cls(any_origin=True)
        return cls(origins=frozenset(name.lower().encode("ascii", "replace") for name in names))

    def allows(self, origin: bytes | None) -> bool:
        return self.any_origin or (origin is not None and origin.lower() in self.origins)

    def response_headers(self, origin: bytes | None) -> tuple[tuple[bytes, bytes], ...]:
        """The CORS headers for any response to a request from ``origin``
        (None: the request had no ``Origin`` header)."""
        if self.any_origin:
            return _ANY_ORIGIN_HEADERS
        if not self.origins:
            return ()
        if origin is not None and origin.lower() in self.origins:
            return ((b"access-control-allow-origin", origin), _VARY_ORIGIN)
        return (_VARY_ORIGIN,)


_ANY_ORIGIN_HEADERS = ((b"access-control-allow-origin", b"*"),)
_VARY_ORIGIN = (b"vary", b"Origin")
CORS_OFF = CorsPolicy()


def _options(route: _Route, request: HttpRequest, cors: CorsPolicy) -> HttpResponse:
    allowed = b", ".join(route.allowed)
    headers = [(b"allow", allowed)]
    if cors.allows(request.header(b"origin")):
        headers.append((b"access-control-allow-methods", b",".join(route.allowed)))
        requested = request.header(b"access-control-request-headers")
        if requested is not None:
            headers += [(b"access-control-allow-headers", requested), (b"vary", b"Access-Control-Request-Headers")]
    return HttpResponse(204, b"", None, tuple(headers))


class HttpApi:
    """The routes, bound to what they need from the running server."""

    def __init__(
        self,
        *,
        check_host: bool,
        render_metrics: Callable[[], bytes],
        not_ready_reason: Callable[[], str | None],
        password: Callable[[], bytes | None] = lambda: None,
        cors: CorsPolicy = CORS_OFF,
    ) -> None:
        # True when the listener is bound to loopback (the DNS-rebinding guard).
        self.check_host = check_host
        # The live password (Store.requirepass), or None: no authentication.
        self.password = password
        # Which browser origins get CORS headers (the connection adds them).
        self.cors = cors
        self.render_metrics = render_metrics
        self.not_ready_reason = not_ready_reason

    def handle(self, request: HttpRequest) -> Routed:
        if self.check_host and not host_header_allowed(request.header(b"host")):
            return Routed(UNMATCHED_ROUTE, error_response(403, "Host header not allowed: use localhost or 127.0.0.1"))
        if request.target == b"*" and request.method == b"OPTIONS":
            return Routed(UNMATCHED_ROUTE, HttpResponse(204, b"", None, ((b"allow", _ALL_METHODS),)))
        parts = split_target(request.target)
        if parts is None:
            return Routed(UNMATCHED_ROUTE, error_response(400, "Bad request target"))
        path, query = parts
        refusal = self._refuse_unauthenticated(request, path)
        if refusal is not None:
            return Routed(UNMATCHED_ROUTE, refusal)
        matched = _match(path)
        if matched is None:
            return Routed(
                UNMATCHED_ROUTE,
                error_response(404, "Not found", method=request.method.decode("ascii", "replace"), path=key_text(path)),
            )
        route, key = matched
        method = b"GET" if request.method == b"HEAD" else request.method
        handler = route.handlers.get(method)
        if handler is None:
            if request.method == b"OPTIONS":
                return Routed(route.template, _options(route, request, self.cors))
            allowed = route.allowed
            response = error_response(
                405,
                "Method not allowed",
                headers=((b"allow", b", ".join(allowed)),),
                allow=[name.decode() for name in allowed],
            )
            return Routed(route.template, response)
        return Routed(route.template, handler(self, _Call(request, parse_query(query), key)))

    def _refuse_unauthenticated(self, request: HttpRequest, path: bytes) -> HttpResponse | None:
        """The 401 for a request without the password, or None to serve it."""
        password = self.password()
        if password is None or path in _OPEN_PATHS or request.method == b"OPTIONS":
            return None
        token = bearer_token(request.header(b"authorization"))
        if token is None:
            return error_response(
                401, "Authentication required: send 'Authorization: Bearer <password>'",
                headers=_UNAUTHORIZED_HEADERS,
            )
        if not password_matches(password, token):
            return error_response(401, "Invalid password", headers=_BAD_TOKEN_HEADERS)
        return None
