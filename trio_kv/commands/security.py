"""Cross-protocol attacks: an HTTP request sent to a line or RESP port.

A web page the user opens can make the browser send a ``text/plain`` POST
(no CORS preflight) to any port on 127.0.0.1. Both the line protocol and
RESP inline commands are line based, so without this rule every line of
the POST body would run as a command (``SET pwned1 yes``).

Rules this module keeps (Redis 7 does the same with its ``post`` and
``host:`` commands, ``securityWarningCommand``):

* A request whose command name is ``POST`` or ``Host:`` (any case) is an
  HTTP request: the connection closes without a reply, nothing after it in
  the same read runs (``session.closing`` stops the engine's batch), and a
  warning is logged with Redis' text, at most once a minute (as Redis) so
  a flood of such requests cannot flood the log.
* Beyond Redis: a request that would otherwise fail (unknown command or
  wrong argument count) and is shaped like an HTTP request line
  (``GET / HTTP/1.1``: a method token, a target, ``HTTP/<digit>.<digit>``)
  is treated the same, so the connection closes at the request line rather
  than at the ``Host:`` line. A request that is a valid command (``SET k
  HTTP/1.1``) is never matched, since only failing requests are looked at.

Both tables (``commands.text`` and ``commands.redis``) carry such a spec,
hidden from COMMAND; ``CommandTable.resolve`` returns it for a failing
request shaped like a request line (``table.looks_like_http_request_line``).
"""

from __future__ import annotations

import logging
import time

from .table import CommandSpec, InMulti, Lock

log = logging.getLogger(__name__)

SECURITY_WARNING = (
    "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. "
    "This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis "
    "instance. Connection aborted."
)
# Redis logs the warning at most once every 60 seconds.
WARNING_INTERVAL_SECONDS = 60.0



class _WarningLimiter:
    """When the warning was last logged. Shared by every connection on
    purpose (the limit is per process, as in Redis); a race between two
    worker threads can only log one extra line."""

    def __init__(self) -> None:
        self.last_logged: float | None = None

    def should_log(self, now: float) -> bool:
        if self.last_logged is not None and now - self.last_logged < WARNING_INTERVAL_SECONDS:
            return False
        self.last_logged = now
        return True


_limiter = _WarningLimiter()


def security_warning_spec(name: str, no_reply: object) -> CommandSpec:
    """The spec that closes the connection; ``no_reply`` is what the
    protocol's encoder turns into no bytes at all."""

    def cmd_security_warning(session, args: list[bytes]) -> object:
        session.closing = True
        if _limiter.should_log(time.monotonic()):
            log.warning("%s (client %d, %s)", SECURITY_WARNING, session.id, session.address)
        return no_reply

    # InMulti.RUN: it runs (and closes) even inside MULTI, never queued.
    # no_auth: Redis checks for it before authentication, so it closes even
    # a connection that has not authenticated (Redis' CMD_NO_AUTH spelling).
    return CommandSpec(
        name=name, arity=-1, lock=Lock.READ, flags=("readonly", "fast", "no_auth"), in_multi=InMulti.RUN,
        since=None, group="generic", handler=cmd_security_warning,
        summary="Close the connection: an HTTP request sent to this port (cross-protocol attack)",
    )
