"""HTTP/1.1 responses as bytes, and the keep-alive rule (pure, no IO).

h11 parses every request (``server.http_connection``); responses are
written here. A response is simple to write correctly, and this runs once
per request: h11's ``send`` validates each header and steps its state
machine, about 20 us a response (measured), as much as the rest of the
request's own work. The rules h11 would enforce on the way out are kept:

* ``Content-Length`` is always the body's length, except on 1xx, 204 and
  304, which have neither the header nor a body;
* a response to HEAD has the headers a GET would get and no body;
* ``Connection: close`` is sent whenever the server closes after the
  response, and the server closes whenever the client asked to
  (``keep_alive`` is h11's own rule: HTTP/1.1 without a ``close`` token).

Header names and values come from the server's own code, or (CORS'
``Access-Control-Allow-Headers``) echo a request header h11 has validated,
so none holds CR or LF.
"""

from __future__ import annotations

import http
from collections.abc import Iterable

REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


def encode_response(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    *,
    head_only: bool = False,
    close: bool = False,
) -> bytes:
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b""))]
    parts += [name + b": " + value + b"\r\n" for name, value in headers]
    has_body = status >= 200 and status not in _NO_BODY_STATUSES
    if has_body:
        parts.append(b"content-length: %d\r\n" % len(body))
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if has_body and not head_only:
        parts.append(body)
    return b"".join(parts)


def keep_alive(http_version: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the client lets the connection stay open after this request."""
    if http_version < b"1.1":
        return False
    for name, value in headers:
        if name == b"connection" and b"close" in (token.strip().lower() for token in value.split(b",")):
            return False
    return True
