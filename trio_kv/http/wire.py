"""The JSON API's wire protocol (``--http-port``): ``commands.wire``'s
``WireProtocol`` for HTTP.

h11 frames HTTP (``server.http_connection``), so the object has no
``Framing``. Its store work runs Redis commands, so the engine's own errors
are worded as RESP's; what a client turned away at accept reads (over
``--max-clients``: a ``503``; protected mode: a ``403``) is JSON built by the
routes' ``error_response``, which is why this object lives here and not in
``commands/``.
"""

from __future__ import annotations

from ..commands.auth import DENIED_HTTP_REASON
from ..commands.wire import RESP, WireProtocol, resp_error_text, resp_refused_write
from .routes import error_response


def _rejection(status_line: bytes, message: str) -> bytes:
    # Sent before any request is read: no Origin, so no CORS headers.
    response = error_response(int(status_line[:3]), message)
    assert response.content_type is not None  # error responses are JSON
    return (
        b"HTTP/1.1 " + status_line + b"\r\n"
        + b"content-type: " + response.content_type + b"\r\n"
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(response.body)
        + response.body
    )


HTTP = WireProtocol(
    label="http",
    framing=None,
    table=RESP.table,
    noauth=RESP.noauth,
    internal_error=RESP.internal_error,
    refused_write=resp_refused_write,
    error_text=resp_error_text,
    max_clients_reply=_rejection(b"503 Service Unavailable", "max clients reached"),
    denied_reply=_rejection(b"403 Forbidden", DENIED_HTTP_REASON),
    shows_resp_version=True,
)
