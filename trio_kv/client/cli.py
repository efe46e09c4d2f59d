"""``trio-kv cli``: a redis-cli for trio_kv (and Redis), on ``BlockingClient``.

    trio-kv cli [-h HOST] [-p PORT] [-3] [--raw|--no-raw] [--user U] [-a PASSWORD]
                [--tls --cacert F --cert F --key F --sni NAME] [COMMAND [ARG ...]]

Three modes, as redis-cli: with a COMMAND, one-shot (the reply printed; exit
status 1 on an error reply, where redis-cli needs ``-e``); without one, an
interactive prompt with readline history when standard input is a
terminal; commands read from standard input, one a line, otherwise. Lines
are split as the line protocol splits them (``protocol.split_args``:
quotes and escapes as Redis' sdssplitargs). Replies are printed as redis-cli
7.0 prints them (``wire.cli_format``): its terminal format when standard
output is a terminal or with ``--no-raw``, its raw one otherwise or with
``--raw``. The password may come from ``REDISCLI_AUTH`` instead of ``-a``
(a flag shows in ps); history goes to ``REDISCLI_HISTFILE`` or
``~/.trio_kv_cli_history``.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ..protocol.split_args import split_args
from .blocking import BlockingClient
from .wire.cli_format import format_raw, format_tty
from .wire.errors import ClientConnectionError, ReplyError
from .wire.typed import Aggregate, ErrorReply

HISTORY_ENV = "REDISCLI_HISTFILE"
AUTH_ENV = "REDISCLI_AUTH"
DEFAULT_HISTORY = "~/.trio_kv_cli_history"
HISTORY_LINES = 1000
PASSWORD_WARNING = "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\n"


def _parser() -> argparse.ArgumentParser:
    # -h is the host, as in redis-cli: --help is the only help flag.
    parser = argparse.ArgumentParser(prog="trio-kv cli", add_help=False, description="A redis-cli for trio_kv.")
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("-h", dest="host", default="127.0.0.1", help="server host (127.0.0.1)")
    parser.add_argument("-p", dest="port", type=int, default=6379, help="server port (6379)")
    parser.add_argument("-3", dest="resp3", action="store_true", help="speak RESP3 (HELLO 3)")
    parser.add_argument("-2", dest="resp3", action="store_false", help="speak RESP2 (the default)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--raw", dest="raw", action="store_true", default=None, help="raw output, even on a terminal")
    output.add_argument("--no-raw", dest="raw", action="store_false", help="terminal output, even when piped")
    parser.add_argument(
        "--show-pushes", choices=("yes", "no"), help="print RESP3 push messages (default: yes on a terminal)"
    )
    parser.add_argument("--user", help="ACL user name (with a password)")
    parser.add_argument("-a", "--pass", dest="password", help=f"password (prefer the {AUTH_ENV} variable)")
    parser.add_argument("-n", dest="db", type=int, default=0, help="database number (SELECT)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--cacert", help="CA certificate file to verify the server with")
    parser.add_argument("--cert", help="client certificate file")
    parser.add_argument("--key", help="client private key file")
    parser.add_argument("--sni", help="server name for SNI and verification (default: the host)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments (none: interactive/stdin)")
    return parser


def _ssl_context(options: argparse.Namespace) -> ssl.SSLContext | None:
    if not options.tls:
        return None
    context = ssl.create_default_context(cafile=options.cacert)
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.cert:
        context.load_cert_chain(options.cert, options.key)
    return context


@dataclass
class _Session:
    """The connection and what the prompt shows (redis-cli's prompt: host:port, [db], (TX))."""

    client: BlockingClient
    raw: bool
    out: BinaryIO
    show_pushes: bool
    db: int = 0
    in_multi: bool = False

    def prompt(self) -> str:
        text = f"{self.client.host}:{self.client.port}"
        if self.db:
            text += f"[{self.db}]"
        if self.in_multi:
            text += "(TX)"
        return text + "> "

    def write(self, reply: object) -> None:
        self.out.write(format_raw(reply) if self.raw else format_tty(reply))
        self.out.flush()

    def run(self, args: list[bytes]) -> object:
        """Send one command, print pushes that come first (as redis-cli,
        only with ``--show-pushes``, a terminal's default) and attributes
        (which come before the reply they annotate), then the reply; the reply."""
        self.client.send_command(args)
        while True:
            reply = self.client.read_reply()
            if not (isinstance(reply, Aggregate) and reply.kind in ("push", "attribute")):
                break
            if self.show_pushes or reply.kind == "attribute":
                self.write(reply)
        self.write(reply)
        self._track(args, reply)
        return reply

    def _track(self, args: list[bytes], reply: object) -> None:
        name = args[0].lower()
        failed = isinstance(reply, ErrorReply)
        if name == b"select" and len(args) == 2 and not failed:
            self.db = int(args[1])
        elif name == b"multi" and len(args) == 1 and not failed:
            self.in_multi = True
        elif name in (b"exec", b"discard") and len(args) == 1:
            self.in_multi = False


def _connect(options: argparse.Namespace, password: str | None) -> BlockingClient:
    client = BlockingClient(
        options.host, options.port, protocol=3 if options.resp3 else 2, username=options.user,
        password=password, ssl_context=_ssl_context(options), server_hostname=options.sni, typed=True,
    )
    if options.db:
        client.execute("SELECT", options.db)
    return client


def _history_path() -> str:
    return os.path.expanduser(os.environ.get(HISTORY_ENV) or DEFAULT_HISTORY)


def _interactive_lines(session: _Session) -> Callable[[], bytes | None]:
    """A line reader with a prompt and readline history (saved on every line, as redis-cli does)."""
    import readline  # noqa: PLC0415 (only the interactive mode needs it; it changes input())

    path = _history_path()
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # no history yet
    readline.set_history_length(HISTORY_LINES)

    def read() -> bytes | None:
        try:
            line = input(session.prompt())
        except (EOFError, KeyboardInterrupt):
            # Ctrl-D or Ctrl-C at the prompt ends the session, as in redis-cli.
            return None
        if line.strip():
            try:
                readline.write_history_file(path)
            except OSError:
                pass  # a history that cannot be saved does not stop the session
        return line.encode("utf-8", "surrogateescape")

    return read


def _stdin_lines() -> Callable[[], bytes | None]:
    def read() -> bytes | None:
        line = sys.stdin.buffer.readline()
        return line.rstrip(b"\r\n") if line else None

    return read


def _repl(session: _Session, read_line: Callable[[], bytes | None]) -> int:
    while True:
        line = read_line()
        if line is None:
            return 0
        args = split_args(line, nul_ends_line=False)
        if args is None:
            session.out.write(b"Invalid argument(s)\n")
            session.out.flush()
            continue
        if not args:
            continue
        if args[0].lower() in (b"quit", b"exit"):
            return 0
        try:
            session.run(args)
        except ClientConnectionError as error:
            sys.stderr.write(f"Error: {error}\n")
            return 1


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    password = options.password
    if password is not None:
        sys.stderr.write(PASSWORD_WARNING)
    else:
        password = os.environ.get(AUTH_ENV)
    out = sys.stdout.buffer
    raw = options.raw if options.raw is not None else not out.isatty()
    try:
        client = _connect(options, password)
    except ClientConnectionError as error:
        sys.stderr.write(f"Could not connect to {options.host}:{options.port}: {error}\n")
        return 1
    except ReplyError as error:
        sys.stderr.write(f"AUTH failed: {error.message}\n")
        return 1
    with client:
        show_pushes = options.show_pushes == "yes" if options.show_pushes else out.isatty()
        session = _Session(client, raw, out, show_pushes, db=options.db)
        if options.command:
            args = [arg.encode("utf-8", "surrogateescape") for arg in options.command]
            try:
                reply = session.run(args)
            except ClientConnectionError as error:
                sys.stderr.write(f"Error: {error}\n")
                return 1
            return 1 if isinstance(reply, ErrorReply) else 0
        try:
            if sys.stdin.isatty():
                return _repl(session, _interactive_lines(session))
            return _repl(session, _stdin_lines())
        except KeyboardInterrupt:
            # Ctrl-C while a command waits: the reply is abandoned with the connection.
            sys.stderr.write("\n")
            return 130
