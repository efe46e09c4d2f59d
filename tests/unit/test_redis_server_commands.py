"""Redis server and connection commands through the engine (``run_batch``), no sockets.

The error wordings in ``ERROR_CASES`` were checked against a real
redis-server 7.0 (``CLIENT SETINFO`` / ``NO-TOUCH``, new in 7.2, against its
source); the departures from Redis are the documented ones (one database, no
persistence, no passwords).
"""

from __future__ import annotations

import re
import time
import tracemalloc

import pytest

from trio_kv.commands.info import human_bytes
from trio_kv.commands.redis import REDIS_COMMANDS
from trio_kv.commands.runtime_config import PARAMETERS
from trio_kv.commands.session import Session
from trio_kv.commands.wire import RESP
from trio_kv.config import Config
from trio_kv.protocol.replies import NO_REPLY, OK, PONG, QUEUED, Error, Map, Set, SimpleString, Verbatim
from trio_kv.protocol.resp_encoder import encode_reply
from trio_kv.store.engine import Store
from trio_kv.store.local_control import LocalControl

from .redis_session import call, run

SYNTAX = Error("ERR syntax error")


def wrong_arity(name: str) -> Error:
    return Error(f"ERR wrong number of arguments for '{name}' command")


def unknown_subcommand(sent: str, container: str) -> Error:
    return Error(f"ERR unknown subcommand '{sent}'. Try {container} HELP.")


def connect(store: Store, control: LocalControl, client_id: int = 1) -> Session:
    """A client of ``store``, listed by ``control`` as connected."""
    session = Session(client_id, store, control, wire=RESP, address=f"127.0.0.1:{50000 + client_id}")
    session.created_ms = time.time_ns() // 1_000_000
    control.sessions[client_id] = session
    return session


def connect_another(session: Session, client_id: int) -> Session:
    assert isinstance(session.control, LocalControl)
    return connect(session.store, session.control, client_id)


@pytest.fixture
def session() -> Session:
    store = Store(Config())
    return connect(store, LocalControl(store))


def info_fields(session: Session, section: str = "everything") -> dict[str, str]:
    reply = call(session, f"INFO {section}")
    assert isinstance(reply, Verbatim) and reply.format == "txt"
    lines = reply.data.decode().split("\r\n")
    return dict(line.split(":", 1) for line in lines if line and not line.startswith("#"))


ERROR_CASES = [
    ("PING a b", wrong_arity("ping")),
    ("ECHO", wrong_arity("echo")),
    ("SELECT 1", Error("ERR DB index is out of range")),
    ("SELECT -1", Error("ERR DB index is out of range")),
    ("SELECT x", Error("ERR value is not an integer or out of range")),
    ("SELECT 01", Error("ERR value is not an integer or out of range")),
    (
        "AUTH secret",
        Error(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        ),
    ),
    ("AUTH alice secret", Error("WRONGPASS invalid username-password pair or user is disabled.")),
    ("AUTH a b c", SYNTAX),
    ("HELLO 4", Error("NOPROTO unsupported protocol version")),
    ("HELLO 1", Error("NOPROTO unsupported protocol version")),
    ("HELLO x", Error("ERR Protocol version is not an integer or out of range")),
    ("HELLO 3 FOO", Error("ERR Syntax error in HELLO option 'FOO'")),
    ("HELLO 3 SETNAME", Error("ERR Syntax error in HELLO option 'SETNAME'")),
    ("HELLO 3 AUTH default", Error("ERR Syntax error in HELLO option 'AUTH'")),
    ("HELLO 3 AUTH bob pw", Error("WRONGPASS invalid username-password pair or user is disabled.")),
    ("HELLO 2 SETNAME 'a b'", Error("ERR Client names cannot contain spaces, newlines or special characters.")),
    ("RESET x", wrong_arity("reset")),
    ("CLIENT", wrong_arity("client")),
    ("CLIENT FOO", unknown_subcommand("FOO", "CLIENT")),
    ("CLIENT ID x", wrong_arity("client|id")),
    ("CLIENT SETNAME 'a b'", Error("ERR Client names cannot contain spaces, newlines or special characters.")),
    ("CLIENT LIST TYPE foo", Error("ERR Unknown client type 'foo'")),
    ("CLIENT LIST ID 1 x", Error("ERR Invalid client ID")),
    ("CLIENT LIST FOO", SYNTAX),
    ("CLIENT KILL 1.2.3.4:5", Error("ERR No such client")),
    ("CLIENT KILL ID", Error("ERR No such client")),
    ("CLIENT KILL ID x", Error("ERR client-id should be greater than 0")),
    ("CLIENT KILL ID 0", Error("ERR client-id should be greater than 0")),
    ("CLIENT KILL TYPE foo", Error("ERR Unknown client type 'foo'")),
    ("CLIENT KILL USER x", Error("ERR No such user 'x'")),
    ("CLIENT KILL SKIPME maybe", SYNTAX),
    ("CLIENT KILL ID 1 SKIPME", SYNTAX),
    ("CLIENT KILL FOO bar", SYNTAX),
    ("CLIENT NO-EVICT maybe", SYNTAX),
    ("CLIENT SETINFO foo x", Error("ERR Unrecognized option 'foo'")),
    ("CLIENT SETINFO LIB-VER '1 2'", Error("ERR LIB-VER cannot contain spaces, newlines or special characters.")),
    ("CLIENT SETINFO lib-name", wrong_arity("client|setinfo")),
    ("CONFIG", wrong_arity("config")),
    ("CONFIG GET", wrong_arity("config|get")),
    ("CONFIG FOO", unknown_subcommand("FOO", "CONFIG")),
    ("CONFIG SET slowlog-max-len", wrong_arity("config|set")),
    ("CONFIG SET a 1 b", SYNTAX),
    ("CONFIG SET foo 1", Error("ERR Unknown option or number of arguments for CONFIG SET - 'foo'")),
    (
        "CONFIG SET databases 2",
        Error("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"),
    ),
    (
        "CONFIG SET slowlog-max-len x",
        Error(
            "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - "
            "argument couldn't be parsed into an integer"
        ),
    ),
    (
        "CONFIG SET slowlog-max-len -1",
        Error(
            "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - "
            "argument must be between 0 and 9223372036854775807 inclusive"
        ),
    ),
    (
        "CONFIG SET slowlog-log-slower-than -2",
        Error(
            "ERR CONFIG SET failed (possibly related to argument 'slowlog-log-slower-than') - "
            "argument must be between -1 and 9223372036854775807 inclusive"
        ),
    ),
    (
        "CONFIG SET slowlog-max-len 1 SLOWLOG-MAX-LEN 2",
        Error("ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - duplicate parameter"),
    ),
    ("CONFIG RESETSTAT x", wrong_arity("config|resetstat")),
    ("SLOWLOG", wrong_arity("slowlog")),
    ("SLOWLOG FOO", unknown_subcommand("FOO", "SLOWLOG")),
    ("SLOWLOG GET x", Error("ERR count should be greater than or equal to -1")),
    ("SLOWLOG GET -2", Error("ERR count should be greater than or equal to -1")),
    ("SLOWLOG GET 1 2", Error("ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")),
    ("LATENCY FOO", unknown_subcommand("FOO", "LATENCY")),
    ("TIME x", wrong_arity("time")),
    ("SHUTDOWN FOO", SYNTAX),
    ("SHUTDOWN NOSAVE SAVE", SYNTAX),
    ("SHUTDOWN NOW ABORT", SYNTAX),
    ("SHUTDOWN ABORT", Error("ERR No shutdown in progress.")),
    ("SHUTDOWN SAVE", Error("ERR SHUTDOWN SAVE is not supported: trio_kv keeps no data on disk. Use SHUTDOWN NOSAVE.")),
    ("COMMAND FOO", unknown_subcommand("FOO", "COMMAND")),
    ("COMMAND COUNT x", wrong_arity("command|count")),
    ("COMMAND GETKEYS get", wrong_arity("command|getkeys")),
    ("COMMAND GETKEYS nosuch a", Error("ERR Invalid command specified")),
    ("COMMAND GETKEYS get a b", Error("ERR Invalid number of arguments specified for command")),
    ("COMMAND GETKEYS ping x", Error("ERR The command has no key arguments")),
    ("COMMAND LIST x", SYNTAX),
    ("COMMAND LIST FILTERBY FOO x", SYNTAX),
]


@pytest.mark.parametrize(("command", "expected"), ERROR_CASES, ids=[case[0] for case in ERROR_CASES])
def test_error_wording(session: Session, command: str, expected: Error) -> None:
    assert call(session, command) == expected


REPLY_CASES = [
    ("PING", PONG),
    ("PING hello", b"hello"),
    ("ECHO 'a b'", b"a b"),
    ("SELECT 0", OK),
    ("AUTH default anything", OK),
    ("CLIENT ID", 1),
    ("CLIENT GETNAME", None),
    ("CLIENT NO-EVICT on", OK),
    ("CLIENT NO-TOUCH OFF", OK),
    ("CLIENT SETINFO lib-name redis-py", OK),
    ("CLIENT KILL ID 99", 0),
    ("CLIENT KILL ADDR 1.2.3.4:5", 0),
    ("CLIENT KILL LADDR 127.0.0.1:6379", 0),
    ("CONFIG GET nosuch", Map([])),
    ("CONFIG SET save ''", OK),
    ("CONFIG SET APPENDONLY no", OK),
    ("CONFIG RESETSTAT", OK),
    ("SLOWLOG LEN", 0),
    ("SLOWLOG GET", []),
    ("SLOWLOG RESET", OK),
    ("LATENCY LATEST", []),
    ("LATENCY RESET", 0),
    ("LATENCY HISTOGRAM nosuch", Map([])),
    ("COMMAND GETKEYS mset a 1 b 2", [b"a", b"b"]),
    ("COMMAND GETKEYS get k", [b"k"]),
    ("COMMAND LIST FILTERBY MODULE x", []),
    ("COMMAND LIST FILTERBY ACLCAT nosuch", []),
    ("COMMAND DOCS nosuch", Map([])),
    ("COMMAND INFO nosuch", [None]),
    ("INFO nosuch", Verbatim("txt", b"")),
    ("RESET", SimpleString("RESET")),
]


@pytest.mark.parametrize(("command", "expected"), REPLY_CASES, ids=[case[0] for case in REPLY_CASES])
def test_reply(session: Session, command: str, expected: object) -> None:
    assert call(session, command) == expected


def test_hello_switches_protocol_and_replies_in_the_new_one(session: Session) -> None:
    reply = call(session, "HELLO 3 SETNAME app")
    assert session.protocol == 3 and session.name == b"app"
    assert reply == Map(
        [
            (b"server", b"redis"),
            (b"version", b"7.2.0"),
            (b"proto", 3),
            (b"id", 1),
            (b"mode", b"standalone"),
            (b"role", b"master"),
            (b"modules", []),
        ]
    )
    assert encode_reply(reply, session.protocol).startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
    assert call(session, "HELLO") == reply  # no argument: the protocol stays
    assert call(session, "HELLO 4") == Error("NOPROTO unsupported protocol version")
    assert session.protocol == 3
    reply = call(session, "HELLO 2 AUTH default pw")
    assert session.protocol == 2
    assert encode_reply(reply, 2).startswith(b"*14\r\n$6\r\nserver\r\n")


def test_reset_restores_a_fresh_connection(session: Session) -> None:
    run(session, "HELLO 3", "CLIENT SETNAME app", "SET k v", "WATCH k", "MULTI", "SET k w")
    assert session.transaction.queued is not None and session.transaction.watched
    # RESET runs at once inside MULTI (Redis' exemption), like QUIT.
    assert call(session, "RESET") == SimpleString("RESET")
    assert (session.protocol, session.name, session.transaction.queued, session.transaction.watched) == (2, b"", None, {})


def test_ping_is_queued_inside_multi_but_quit_is_not(session: Session) -> None:
    assert run(session, "MULTI", "PING", "HELLO 3", "CLIENT ID") == [OK, QUEUED, QUEUED, QUEUED]
    assert session.protocol == 2
    assert call(session, "QUIT") == OK
    assert session.closing


def test_quit_closes_and_stops_the_batch(session: Session) -> None:
    assert run(session, "QUIT", "PING") == [OK]
    assert session.closing


def test_client_names_and_library(session: Session) -> None:
    assert run(session, "CLIENT SETNAME worker-1", "CLIENT GETNAME") == [OK, b"worker-1"]
    assert run(session, "CLIENT SETNAME ''", "CLIENT GETNAME") == [OK, None]
    run(session, "CLIENT SETINFO LIB-NAME redis-py", "CLIENT SETINFO lib-ver 8.1.0")
    assert (session.library_name, session.library_version) == (b"redis-py", b"8.1.0")


CLIENT_LINE = re.compile(
    r"id=(\d+) addr=(\S+) laddr= fd=-1 name=(\S*) age=\d+ idle=0 flags=([Nx]) db=0 sub=0 psub=0 ssub=0 "
    r"multi=(-?\d+) qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
    r"events=r cmd=(\S+) user=default redir=-1 resp=([023]) lib-name=(\S*) lib-ver=(\S*)"
)


def test_client_list_lines_have_redis_field_order(session: Session) -> None:
    other = connect_another(session, 2)
    run(other, "HELLO 3", "CLIENT SETINFO LIB-NAME jedis", "MULTI", "PING")
    run(session, "CLIENT SETNAME me")
    reply = call(session, "CLIENT LIST")
    assert isinstance(reply, Verbatim) and reply.data.endswith(b"\n")
    lines = [CLIENT_LINE.fullmatch(line) for line in reply.data.decode().splitlines()]
    assert [match.groups() if match else None for match in lines] == [
        ("1", "127.0.0.1:50001", "me", "N", "-1", "client|list", "2", "", ""),
        ("2", "127.0.0.1:50002", "", "x", "1", "multi", "3", "jedis", ""),
    ]
    assert call(session, "CLIENT LIST TYPE normal") == reply
    assert call(session, "CLIENT LIST TYPE pubsub") == Verbatim("txt", b"")
    listed = call(session, "CLIENT LIST ID 2 99 1")
    assert [line.split()[0] for line in listed.data.decode().splitlines()] == ["id=2", "id=1"]
    info = call(session, "CLIENT INFO")
    assert CLIENT_LINE.fullmatch(info.data.decode().rstrip("\n")).group(6) == "client|info"


def test_client_kill_uses_the_hook_and_skips_itself_by_default(session: Session) -> None:
    control = session.control
    assert isinstance(control, LocalControl)
    connect_another(session, 2)
    connect_another(session, 3)
    assert call(session, "CLIENT KILL ID 2") == 1
    assert call(session, "CLIENT KILL ADDR 127.0.0.1:50003") == 1
    assert call(session, "CLIENT KILL 127.0.0.1:50002") == OK  # the old form
    assert call(session, "CLIENT KILL TYPE normal") == 2  # everyone but me
    assert call(session, "CLIENT KILL TYPE master") == 0
    killed = [("kill", 2), ("kill", 3), ("kill", 2), ("kill", 2), ("kill", 3)]
    assert control.requests == killed
    assert not session.closing
    assert run(session, "CLIENT KILL ID 1 SKIPME no", "PING") == [1]
    assert session.closing and control.requests == killed


def test_client_kill_old_form_can_kill_the_caller(session: Session) -> None:
    assert call(session, "CLIENT KILL 127.0.0.1:50001") == OK
    assert session.closing


def test_client_help_is_generated_from_the_table(session: Session) -> None:
    lines = [line.text for line in call(session, "CLIENT HELP")]
    assert lines[0] == "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert lines[-2:] == ["HELP", "    Prints this help."]
    assert "SETNAME <name>" in lines


def test_shutdown_requests_the_shutdown_and_sends_nothing(session: Session) -> None:
    assert call(session, "SHUTDOWN NOSAVE NOW FORCE") is NO_REPLY
    assert isinstance(session.control, LocalControl)
    assert session.control.requests == [("shutdown",)] and session.closing
    assert encode_reply(NO_REPLY, 2) == encode_reply(NO_REPLY, 3) == b""


def test_time_is_now(session: Session) -> None:
    seconds, micros = call(session, "TIME")
    assert abs(int(seconds) + int(micros) / 1e6 - time.time()) < 5
    assert 0 <= int(micros) < 1_000_000


def test_info_counts_commands_and_clients(session: Session) -> None:
    connect_another(session, 2)
    before = int(info_fields(session, "stats")["total_commands_processed"])
    run(session, *["PING"] * 5)
    fields = info_fields(session)
    # the five PINGs and the first INFO, which is counted once it has run
    assert int(fields["total_commands_processed"]) == before + 6
    assert fields["connected_clients"] == "2"
    assert fields["maxclients"] == str(Config().max_clients)
    assert fields["redis_version"] == "7.2.0" and fields["role"] == "master"
    assert (fields["aof_enabled"], fields["loading"], fields["cluster_enabled"]) == ("0", "0", "0")


def test_info_reports_the_store_counters(session: Session) -> None:
    store = session.store
    store.stats.add("rejected_connections", 2)
    store.stats.add("keyspace_hits", 5)
    store.keyspace.expired_keys = 7
    assert isinstance(session.control, LocalControl)
    session.control.started_at_s = time.time() - 90_000
    fields = info_fields(session)
    assert (fields["rejected_connections"], fields["keyspace_hits"], fields["expired_keys"]) == ("2", "5", "7")
    assert int(fields["uptime_in_seconds"]) >= 90_000 and fields["uptime_in_days"] == "1"
    assert fields["rdb_last_save_time"] == str(int(session.control.started_at_s))


def test_info_keyspace_and_changes(session: Session) -> None:
    assert call(session, "INFO keyspace") == Verbatim("txt", b"# Keyspace\r\n")
    run(session, "SET a 1", "SET b 2 EX 100", "GET a", "SET c")
    assert call(session, "INFO keyspace") == Verbatim("txt", b"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n")
    assert info_fields(session, "persistence")["rdb_changes_since_last_save"] == "2"


def test_info_command_and_latency_stats(session: Session) -> None:
    run(session, "GET a", "GET b", "GET c", "CLIENT FOO")
    fields = info_fields(session, "commandstats latencystats")
    assert re.fullmatch(
        r"calls=3,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,failed_calls=0", fields["cmdstat_get"]
    )
    assert "failed_calls=1" in fields["cmdstat_client"]
    assert re.fullmatch(r"p50=\d+\.000,p99=\d+\.000,p99\.9=\d+\.000", fields["latency_percentiles_usec_get"])
    p50, p99, p999 = (float(part.split("=")[1]) for part in fields["latency_percentiles_usec_get"].split(","))
    assert p50 <= p99 <= p999


def test_info_memory_is_measured(session: Session) -> None:
    fields = info_fields(session, "memory")
    assert int(fields["used_memory"]) > 1_000_000  # the process' RSS
    tracemalloc.start()
    try:
        traced = info_fields(session, "memory")
    finally:
        tracemalloc.stop()
    assert 0 < int(traced["used_memory"]) < int(fields["used_memory"])
    assert traced["mem_allocator"] == "pymalloc (tracemalloc)"


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0B"), (1023, "1023B"), (1024, "1.00K"), (1536, "1.50K"), (1048575, "1024.00K"), (3 << 30, "3.00G")],
)
def test_human_bytes_as_redis_writes_them(size: int, text: str) -> None:
    assert human_bytes(size) == text


def test_info_sections_format_and_encoding(session: Session) -> None:
    default = call(session, "INFO").data.decode()
    headers = [line for line in default.split("\r\n") if line.startswith("#")]
    assert headers == [
        "# Server", "# Clients", "# Memory", "# Persistence", "# Stats",
        "# Replication", "# CPU", "# Errorstats", "# Cluster", "# Keyspace",
    ]
    assert default.endswith("\r\n") and "\n" not in default.replace("\r\n", "")
    assert "\r\n\r\n# Clients\r\n" in default
    everything = call(session, "INFO all").data.decode()
    assert "# Commandstats\r\n" in everything and "# Latencystats\r\n" in everything
    two = call(session, "INFO CLIENTS server").data.decode()
    assert [line for line in two.split("\r\n") if line.startswith("#")] == ["# Server", "# Clients"]
    reply = call(session, "INFO cluster")
    assert encode_reply(reply, 2) == b"$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n"
    assert encode_reply(reply, 3) == b"=34\r\ntxt:# Cluster\r\ncluster_enabled:0\r\n\r\n"


def test_config_get_patterns(session: Session) -> None:
    assert call(session, "CONFIG GET save appendonly") == Map([(b"save", b""), (b"appendonly", b"no")])
    assert call(session, "CONFIG GET SLOWLOG-*") == Map(
        [(b"slowlog-log-slower-than", b"10000"), (b"slowlog-max-len", b"128")]
    )
    assert call(session, "CONFIG GET databases maxmemory s?ve") == Map(
        [(b"databases", b"1"), (b"save", b""), (b"maxmemory", b"0")]
    )
    assert call(session, "CONFIG GET save s*") == call(session, "CONFIG GET s*")
    everything = call(session, "CONFIG GET *")
    assert [name.decode() for name, _ in everything.pairs] == [
        parameter.name for parameter in PARAMETERS if not parameter.hidden
    ]
    assert encode_reply(call(session, "CONFIG GET appendonly"), 2) == b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"


def test_config_set_is_all_or_nothing(session: Session) -> None:
    assert call(session, "CONFIG SET slowlog-max-len 5 slowlog-log-slower-than x") != OK
    assert session.store.slowlog.max_len == 128
    assert call(session, "CONFIG SET slowlog-max-len 5 Slowlog-Log-Slower-Than 0") == OK
    assert (session.store.slowlog.max_len, session.store.slowlog.threshold_us) == (5, 0)
    assert call(session, "CONFIG GET slowlog-max-len") == Map([(b"slowlog-max-len", b"5")])


def test_config_resetstat_zeroes_the_counters(session: Session) -> None:
    run(session, *["PING"] * 3)
    call(session, "CONFIG RESETSTAT")
    fields = info_fields(session, "stats commandstats")
    assert fields["total_commands_processed"] == "1"  # the RESETSTAT itself
    assert "cmdstat_ping" not in fields


def test_config_resetstat_zeroes_expired_and_evicted_keys(session: Session) -> None:
    session.keyspace.expired_keys, session.keyspace.evicted_keys = 3, 2
    fields = info_fields(session, "stats")
    assert (fields["expired_keys"], fields["evicted_keys"]) == ("3", "2")
    call(session, "CONFIG RESETSTAT")
    fields = info_fields(session, "stats")
    assert (fields["expired_keys"], fields["evicted_keys"]) == ("0", "0")


def test_slowlog_with_threshold_zero(session: Session) -> None:
    run(session, "CONFIG SET slowlog-log-slower-than 0", "CLIENT SETNAME bob")
    call(session, "SET a b")
    (entry,) = call(session, "SLOWLOG GET 1")
    entry_id, timestamp_s, duration_us, args, address, name = entry
    assert (args, address, name) == ([b"SET", b"a", b"b"], b"127.0.0.1:50001", b"bob")
    assert abs(timestamp_s - time.time()) < 5 and duration_us >= 0
    assert call(session, "SLOWLOG LEN") == 4  # CONFIG SET, SETNAME, SET, SLOWLOG GET
    assert len(call(session, "SLOWLOG GET -1")) == 5  # and the LEN
    assert [item[0] for item in call(session, "SLOWLOG GET")][:2] == [entry_id + 3, entry_id + 2]
    call(session, "SLOWLOG RESET")
    assert call(session, "SLOWLOG LEN") == 1  # the RESET itself, as in Redis


def test_latency_histogram_shape(session: Session) -> None:
    run(session, *["SET k v"] * 3, "GET k")
    reply = call(session, "LATENCY HISTOGRAM set nosuch SET")
    ((name, histogram),) = reply.pairs
    assert name == b"set"
    (calls_key, calls), (buckets_key, buckets) = histogram.pairs
    assert (calls_key, calls, buckets_key) == (b"calls", 3, b"histogram_usec")
    bounds = [bound for bound, _ in buckets.pairs]
    counts = [count for _, count in buckets.pairs]
    assert all(bound & (bound - 1) == 0 for bound in bounds) and bounds == sorted(bounds)
    assert counts == sorted(set(counts)) and counts[-1] == 3
    assert [name for name, _ in call(session, "LATENCY HISTOGRAM").pairs] == [b"get", b"latency|histogram", b"set"]


def test_command_info_shapes(session: Session) -> None:
    get, client, missing = call(session, "COMMAND INFO get CLIENT nosuch")
    # Inner lists are sets (RESP3 ~, arrays in RESP2), as Redis sends them;
    # an empty subcommand list too, a non-empty one is an array.
    assert get == [
        b"get", 2, Set([SimpleString("readonly"), SimpleString("fast")]), 1, 1, 1,
        Set([SimpleString("@read"), SimpleString("@string"), SimpleString("@fast")]), Set([]),
        Set([
            Map(
                [
                    (b"flags", Set([SimpleString("RO"), SimpleString("access")])),
                    (b"begin_search", Map([(b"type", b"index"), (b"spec", Map([(b"index", 1)]))])),
                    (
                        b"find_keys",
                        Map([(b"type", b"range"), (b"spec", Map([(b"lastkey", 0), (b"keystep", 1), (b"limit", 0)]))]),
                    ),
                ]
            )
        ]),
        Set([]),
    ]
    assert missing is None
    assert client[:9] == [
        b"client", -2, Set([]), 0, 0, 0, Set([SimpleString("@slow"), SimpleString("@connection")]), Set([]), Set([])
    ]
    subcommands = {entry[0]: entry for entry in client[9]}
    assert subcommands[b"client|id"][1:3] == [2, Set([SimpleString(flag) for flag in ("noscript", "loading", "stale")])]
    assert call(session, "COMMAND INFO client|kill") == [subcommands[b"client|kill"]]


@pytest.mark.parametrize(
    ("name", "flags", "categories"),
    [
        ("ping", ["fast"], ["@fast", "@connection"]),
        ("quit", ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], ["@fast", "@connection"]),
        ("info", ["loading", "stale"], ["@slow", "@dangerous"]),
        (
            "shutdown",
            ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
            ["@admin", "@slow", "@dangerous"],
        ),
        ("time", ["loading", "stale", "fast"], ["@fast"]),
        ("mset", ["write", "denyoom"], ["@write", "@string", "@slow"]),
    ],
)
def test_command_info_flags_and_categories(
    session: Session, name: str, flags: list[str], categories: list[str]
) -> None:
    (entry,) = call(session, f"COMMAND INFO {name}")
    assert [flag.text for flag in entry[2].items] == flags
    assert [category.text for category in entry[6].items] == categories


def test_command_count_list_and_docs_cover_the_table(session: Session) -> None:
    count = call(session, "COMMAND COUNT")
    assert count == len(REDIS_COMMANDS) == len(call(session, "COMMAND"))
    names = call(session, "COMMAND LIST")
    assert b"client|list" in names and b"config|get" in names and len(names) > count
    assert call(session, "COMMAND LIST FILTERBY PATTERN conf*") == [
        b"config", b"config|get", b"config|set", b"config|resetstat", b"config|rewrite", b"config|help"
    ]
    assert b"ping" in call(session, "COMMAND LIST FILTERBY ACLCAT CONNECTION")
    docs = call(session, "COMMAND DOCS")
    assert len(docs.pairs) == count
    assert call(session, "COMMAND DOCS get") == Map(
        [(b"get", Map([(b"summary", b"Get the value of a key"), (b"since", b"1.0.0"), (b"group", b"string")]))]
    )
    (name, config_docs), = call(session, "COMMAND DOCS config").pairs
    subcommands = dict(config_docs.pairs)[b"subcommands"]
    assert [sub for sub, _ in subcommands.pairs][:2] == [b"config|get", b"config|set"]
