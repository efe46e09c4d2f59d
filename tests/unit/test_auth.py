"""Authentication without sockets: AUTH / HELLO AUTH / NOAUTH through the
engine (RESP and line protocol), CONFIG SET requirepass, the RESP parser's
unauthenticated limits, the HTTP API's Bearer check, protected mode's
address rule, and the configuration options.

Expected replies are Redis 7.0's (src/acl.c, networking.c, server.c);
tests/integration/test_auth.py compares the same replies byte for byte with
a real redis-server.
"""

from __future__ import annotations

import time

import pytest

from trio_kv.commands import auth
from trio_kv.http.routes import HttpApi, HttpRequest
from trio_kv.commands.session import Session
from trio_kv.commands.text import TEXT_COMMANDS
from trio_kv.commands.wire import LINE, RESP
from trio_kv.config import Config, parse_config
from trio_kv.protocol import resp
from trio_kv.protocol.replies import OK, QUEUED, Error, Map, SimpleString
from trio_kv.protocol.text import encode_text_reply
from trio_kv.store.engine import Job, Store, run_batch
from trio_kv.store.local_control import LocalControl

from .redis_session import call, make_session, run

NOAUTH = Error("NOAUTH Authentication required.")
WRONGPASS = Error("WRONGPASS invalid username-password pair or user is disabled.")
NO_PASSWORD = Error(
    "ERR AUTH <password> called without any password configured for the default user. "
    "Are you sure your configuration is correct?"
)


def locked_session(password: str = "s3cret") -> Session:
    session, _clock = make_session(Config(requirepass=password))
    return session


def test_without_a_password_every_connection_is_authenticated():
    session, _ = make_session()
    assert session.authenticated
    assert call(session, "AUTH secret") == NO_PASSWORD
    assert call(session, "AUTH default anything") == OK  # nopass: any password
    assert call(session, "AUTH bob anything") == WRONGPASS
    assert call(session, "SET k v") == OK


def test_noauth_until_auth_then_commands_run():
    session = locked_session()
    assert not session.authenticated
    assert run(session, "SET k v", "PING", "GET k") == [NOAUTH, NOAUTH, NOAUTH]
    assert call(session, "AUTH wrong!") == WRONGPASS
    assert call(session, "SET k v") == NOAUTH
    assert call(session, "AUTH s3cret") == OK
    assert run(session, "SET k 100", "INCR k") == [OK, 101]


def test_name_and_arity_errors_come_before_noauth():
    session = locked_session()
    assert call(session, "NOSUCH a") == Error(
        "ERR unknown command 'NOSUCH', with args beginning with: 'a' "
    )
    assert call(session, "GET") == Error("ERR wrong number of arguments for 'get' command")
    assert call(session, "AUTH a b c") == Error("ERR syntax error")


def test_auth_in_a_pipeline_unlocks_the_commands_after_it():
    session = locked_session()
    assert run(session, "SET a 1", "AUTH default s3cret", "SET b 2", "GET b") == [NOAUTH, OK, OK, b"2"]


def test_auth_with_user_default_only():
    session = locked_session()
    assert call(session, "AUTH bob s3cret") == WRONGPASS
    assert call(session, "AUTH default wrong") == WRONGPASS
    assert call(session, "AUTH default s3cret") == OK


def test_hello_needs_auth_and_hello_auth_logs_in():
    session = locked_session()
    reply = call(session, "HELLO 3")
    assert isinstance(reply, Error) and reply.message.startswith("NOAUTH HELLO must be called")
    assert session.protocol == 2
    assert call(session, "HELLO 3 AUTH default wrong") == WRONGPASS
    assert call(session, "HELLO 2 AUTH bob s3cret") == WRONGPASS
    assert session.protocol == 2 and not session.authenticated
    reply = call(session, "HELLO 3 AUTH default s3cret SETNAME app")
    assert isinstance(reply, Map) and dict(reply.pairs)[b"proto"] == 3
    assert session.authenticated and session.protocol == 3 and session.name == b"app"
    assert call(session, "SET k v") == OK


def test_quit_and_reset_run_before_auth_and_reset_logs_out():
    session = locked_session()
    assert call(session, "AUTH s3cret") == OK
    assert call(session, "RESET") == SimpleString("RESET")
    assert call(session, "GET k") == NOAUTH
    assert call(session, "QUIT") == OK and session.closing


def test_noauth_inside_multi_fails_the_transaction():
    # Unauthenticated, but the password was removed: MULTI starts; then a
    # password is set again, and the next queued command is refused.
    session = locked_session()
    admin = Session(2, session.store, session.control, wire=RESP)
    admin.authenticated = True
    assert call(admin, "CONFIG SET requirepass ''") == OK
    assert run(session, "MULTI", "SET a 1") == [OK, QUEUED]
    assert call(admin, "CONFIG SET requirepass s3cret") == OK
    # EXEC too needs auth (Redis answers NOAUTH and stays in MULTI).
    assert run(session, "SET b 2", "EXEC") == [NOAUTH, NOAUTH]
    assert call(admin, "CONFIG SET requirepass ''") == OK
    assert call(session, "EXEC") == Error("EXECABORT Transaction discarded because of previous errors.")


def test_config_set_requirepass_is_live_and_binary_safe():
    session, _ = make_session()
    assert call(session, [b"CONFIG", b"SET", b"requirepass", b"abc\x00def"]) == OK
    assert call(session, "CONFIG GET requirepass") == Map([(b"requirepass", b"abc\x00def")])
    # As in Redis: the connection that set it stays authenticated ...
    assert call(session, "SET k v") == OK
    # ... a new one is not, and must send exactly those bytes.
    newcomer = Session(2, session.store, session.control, wire=RESP)
    assert call(newcomer, "GET k") == NOAUTH
    assert call(newcomer, "AUTH abc") == WRONGPASS
    assert call(newcomer, [b"AUTH", b"abc\x00def"]) == OK
    assert call(newcomer, "GET k") == b"v"
    # "" removes the password: unauthenticated connections may run anything.
    stranger = Session(3, session.store, session.control, wire=RESP)
    assert call(session, [b"CONFIG", b"SET", b"requirepass", b""]) == OK
    assert call(session, "CONFIG GET requirepass") == Map([(b"requirepass", b"")])
    assert call(stranger, "GET k") == b"v"
    assert call(stranger, "AUTH x") == NO_PASSWORD


def test_config_protected_mode():
    session, _ = make_session()
    assert call(session, "CONFIG GET protected-mode") == Map([(b"protected-mode", b"yes")])
    assert call(session, "CONFIG SET protected-mode no") == OK
    assert session.store.protected_mode is False
    reply = call(session, "CONFIG SET protected-mode maybe")
    assert isinstance(reply, Error) and "argument must be 'yes' or 'no'" in reply.message
    assert session.store.protected_mode is False


def _text(session: Session, *lines: str) -> list[object]:
    job = Job(session, TEXT_COMMANDS, [line.encode().split() for line in lines], time.perf_counter())
    run_batch(session.store, [job])
    return [encode_text_reply(reply) for reply in job.replies]


def test_line_protocol_auth():
    store = Store(Config(requirepass="pw"))
    session = Session(1, store, LocalControl(store), wire=LINE)
    replies = _text(session, "GET k", "AUTH nope", "AUTH bob pw", "AUTH pw", "SET k v", "GET k")
    assert replies == [encode_text_reply(auth.TEXT_NOAUTH), *[encode_text_reply(auth.TEXT_WRONGPASS)] * 2, b"OK\n", b"OK\n", b"VALUE v\n"]
    open_store = Store(Config())
    open_session = Session(2, open_store, LocalControl(open_store), wire=LINE)
    assert _text(open_session, "AUTH x", "PING") == [encode_text_reply(auth.TEXT_NO_PASSWORD_CONFIGURED), b"PONG\n"]
    assert _text(Session(3, store, LocalControl(store), wire=LINE), "QUIT") == [b"OK\n"]


def test_passwords_are_compared_with_compare_digest(monkeypatch):
    seen = []

    def spy(a, b):
        seen.append((a, b))
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    session = locked_session()
    call(session, "AUTH guess")
    assert seen == [(b"s3cret", b"guess")]


# --- the RESP parser's unauthenticated limits ---------------------------------


def _parser(required: list[bool]) -> resp.RespParser:
    return resp.RespParser(inline_allowed=False, auth_required=lambda: required[0])


def test_unauthenticated_multibulk_and_bulk_limits():
    required = [True]
    parser = _parser(required)
    parser.receive_data(b"*11\r\n")
    with pytest.raises(resp.RespProtocolError, match="unauthenticated multibulk length"):
        parser.next_commands(10)
    parser = _parser(required)
    parser.receive_data(b"*1\r\n$16385\r\n")
    with pytest.raises(resp.RespProtocolError, match="unauthenticated bulk length"):
        parser.next_commands(10)
    # At the limits, and once authenticated, no limit.
    parser = _parser(required)
    big = b"x" * 16384
    parser.receive_data(b"*10\r\n" + b"$16384\r\n" + big + b"\r\n" + b"$1\r\na\r\n" * 9)
    assert len(parser.next_commands(10)[0]) == 10
    required[0] = False
    parser.receive_data(b"*11\r\n" + b"$1\r\na\r\n" * 11)
    assert len(parser.next_commands(10)[0]) == 11


def test_unauthenticated_commands_are_parsed_one_at_a_time():
    # AUTH must run before the next command is judged, as in Redis.
    required = [True]
    parser = _parser(required)
    many = b"*12\r\n" + b"$1\r\na\r\n" * 12
    parser.receive_data(b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n" + many)
    assert parser.next_commands(100) == [[b"AUTH", b"pw"]]
    required[0] = False  # the AUTH succeeded
    assert parser.next_commands(100) == [[b"a"] * 12]


# --- HTTP ----------------------------------------------------------------------


def _http(password: bytes | None, method: bytes, target: bytes, authorization: bytes | None = None):
    api = HttpApi(check_host=False, render_metrics=lambda: b"", not_ready_reason=lambda: None, password=lambda: password)
    headers = [(b"host", b"localhost")]
    if authorization is not None:
        headers.append((b"authorization", authorization))
    return api.handle(HttpRequest(method, target, headers)).plan


@pytest.mark.parametrize("target", [b"/key/a", b"/keys", b"/metrics", b"/readyz", b"/openapi.json", b"/nowhere"])
def test_http_needs_the_bearer_password(target):
    refused = _http(b"pw", b"GET", target)
    assert refused.status == 401
    assert (b"www-authenticate", b'Bearer realm="trio_kv"') in refused.headers
    wrong = _http(b"pw", b"GET", target, b"Bearer nope")
    assert wrong.status == 401 and b'error="invalid_token"' in dict(wrong.headers)[b"www-authenticate"]
    assert _http(b"pw", b"GET", target, b"Basic cHc=").status == 401
    allowed = _http(b"pw", b"GET", target, b"bearer  pw ")
    assert getattr(allowed, "status", 200) != 401
    # No password: no check.
    assert getattr(_http(None, b"GET", target), "status", 200) != 401


def test_http_healthz_and_preflight_are_open():
    assert _http(b"pw", b"GET", b"/healthz").status == 200
    assert _http(b"pw", b"HEAD", b"/healthz").status == 200
    assert _http(b"pw", b"OPTIONS", b"/key/a").status == 204


# --- protected mode and options --------------------------------------------------


@pytest.mark.parametrize(
    "host, local",
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("", True),  # a Unix socket peer
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("2001:db8::1", False),
    ],
)
def test_loopback_peers(host, local):
    assert auth.is_loopback_peer(host) is local


def test_protected_mode_decision():
    store = Store(Config())
    assert auth.denies(store, "192.0.2.2") and not auth.denies(store, "127.0.0.1")
    store.requirepass = b"pw"
    assert not auth.denies(store, "192.0.2.2")
    store.requirepass = None
    store.protected_mode = False
    assert not auth.denies(store, "192.0.2.2")


def test_denied_text_keeps_redis_first_sentence():
    assert auth.DENIED_RESP.startswith(
        b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
        b"password is set for the default user. In this mode connections are only accepted from "
        b"the loopback interface."
    )
    assert auth.DENIED_RESP.endswith(b"\r\n") and b"\r\n" not in auth.DENIED_RESP[:-2]
    assert auth.DENIED_TEXT.startswith(b"ERROR DENIED ") and auth.DENIED_TEXT.count(b"\n") == 1
    for remedy in (b"--protected-mode no", b"TRIO_KV_REQUIREPASS", b"CONFIG SET protected-mode no"):
        assert remedy in auth.DENIED_RESP


def test_options():
    defaults = parse_config([], {})
    assert defaults.requirepass is None and defaults.protected_mode is True and defaults.tls_port is None
    assert parse_config([], {"TRIO_KV_REQUIREPASS": "pw"}).requirepass == "pw"
    assert parse_config(["--requirepass", "flag"], {"TRIO_KV_REQUIREPASS": "env"}).requirepass == "flag"
    assert parse_config([], {"TRIO_KV_REQUIREPASS": ""}).requirepass is None
    assert parse_config(["--protected-mode", "no"], {}).protected_mode is False
    assert parse_config([], {"TRIO_KV_PROTECTED_MODE": "no"}).protected_mode is False
    config = parse_config(["--tls-port", "0", "--tls-cert-file", "c.pem", "--tls-key-file", "k.pem"], {})
    assert (config.tls_port, config.tls_cert_file, config.tls_key_file, config.tls_ca_cert_file) == (
        0, "c.pem", "k.pem", None,
    )
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--tls-port", "0"], {})
    assert exit_info.value.code == 2
    assert Store(Config(requirepass="pw")).requirepass == b"pw"


def test_secrets_never_reach_the_slowlog():
    session = locked_session()
    admin = Session(2, session.store, session.control, wire=RESP)
    admin.authenticated = True
    assert call(admin, "CONFIG SET slowlog-log-slower-than 0") == OK
    run(session, "AUTH wrong1", "AUTH default wrong2", "HELLO 3 AUTH default wrong3", "AUTH s3cret")
    assert call(admin, "CONFIG SET requirepass newsecret") == OK
    text_session = Session(3, session.store, session.control, wire=LINE)
    _text(text_session, "AUTH wrong4", "AUTH newsecret")
    entries = call(admin, "SLOWLOG GET 100")
    logged = [arg for entry in entries for arg in entry[3]]
    for secret in (b"wrong1", b"wrong2", b"wrong3", b"s3cret", b"newsecret", b"wrong4"):
        assert secret not in logged
    assert logged.count(b"(redacted)") >= 7
