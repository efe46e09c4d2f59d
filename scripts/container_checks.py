"""The container checks: the built image, run as a user runs it, with real clients.

Run by scripts/container-test once the image is built (it sets KV_IMAGE,
CONTAINERS_CONF and KV_CA_MOUNT). Standard library only, plus the real
tools: podman, podman-compose, nc, redis-cli and curl.

Rules this script keeps:

* Every container, volume and compose project it makes carries this run's
  prefix and is removed at the end, whatever happened.
* Every wait is bounded (a deadline, or a subprocess timeout).
* Timing is asserted only where the image promises it, and then through
  podman's own semantics: ``podman stop -t 2`` sends SIGKILL after 2 s, so
  exit code 0 means the server exited by itself within 2 s. Durations are
  printed, not compared.
* Checks that need authentication (``--requirepass``, protected mode) are
  skipped, with the reason, when the image's ``trio-kv --help`` does not
  know ``--requirepass``.
* A failing check prints why and the container's log tail; the script goes
  on with the next check and exits 1 at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

IMAGE = os.environ.get("KV_IMAGE", "localhost/trio-kv:container-test")
# Mounted into the build's RUN steps (egress here goes through a TLS proxy).
CA_MOUNT = os.environ.get("KV_CA_MOUNT", "")
REPO = Path(__file__).resolve().parent.parent
PREFIX = f"tkv-ct-{os.getpid()}"
PASSWORD = "ct-" + secrets.token_hex(8)
# The image's user (Dockerfile: useradd --uid 10001).
IMAGE_UID = "10001"
# How long a container may take to serve after `podman run` (a slow CI VM).
START_DEADLINE_SECONDS = 60.0
# The promise tested with `podman stop -t`: the server exits by itself within.
STOP_TIMEOUT_SECONDS = 2

results: list[tuple[str, str, str]] = []


class Skip(Exception):
    """A check that cannot run here; the message says why."""


def run(*argv: str, timeout: float = 120, check: bool = True, env: dict | None = None,
        input: bytes | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        argv, capture_output=True, timeout=timeout, input=input,
        env=None if env is None else {**os.environ, **env},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[-800:]}"
        )
    return proc


def out(*argv: str, **kwargs) -> str:
    return run(*argv, **kwargs).stdout.decode(errors="replace").strip()


def podman(*args: str, **kwargs) -> str:
    return out("podman", *args, **kwargs)


@contextlib.contextmanager
def check(name: str, logs_of: "Container | None" = None) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    except Skip as reason:
        results.append((name, "SKIP", str(reason)))
        print(f"SKIP {name}: {reason}", flush=True)
    # A reply not shaped as expected (JSON, a port, a missing line) fails
    # this check too, instead of ending the run.
    except (AssertionError, subprocess.SubprocessError, OSError, ValueError, LookupError,
            StopIteration) as error:
        results.append((name, "FAIL", str(error)))
        print(f"FAIL {name}: {error}", flush=True)
        if logs_of is not None:
            print(f"     log of {logs_of.name} (tail):\n{logs_of.log_tail()}", flush=True)
    else:
        results.append((name, "ok", ""))
        print(f"ok   {name} ({time.monotonic() - started:.1f} s)", flush=True)


def skip(name: str, reason: str) -> None:
    with check(name):
        raise Skip(reason)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Container:
    """One `podman run -d` of the image, its published ports on 127.0.0.1."""

    def __init__(self, label: str, *, env: dict[str, str] | None = None,
                 volume: str | None = None, args: tuple[str, ...] = ()) -> None:
        self.name = f"{PREFIX}-{label}"
        self.env = env or {}
        self.volume = volume
        self.args = args
        self.main_port = self.http_port = 0

    @classmethod
    def of_compose(cls, project: str) -> "Container":
        """The one container podman-compose runs for `project`."""
        names = podman("ps", "-a", "--filter", f"label=io.podman.compose.project={project}",
                       "--format", "{{.Names}}").split()
        expect(len(names) == 1, f"compose project {project} has containers {names}")
        box = cls("compose")
        box.name = names[0]
        return box

    def start(self) -> "Container":
        argv = ["run", "-d", "--name", self.name,
                "-p", "127.0.0.1::9099", "-p", "127.0.0.1::9100"]
        for key, value in self.env.items():
            argv += ["-e", f"{key}={value}"]
        if self.volume:
            argv += ["-v", f"{self.volume}:/data"]
        podman(*argv, IMAGE, *self.args)
        self._read_ports()
        self.wait_healthy()
        return self

    def restart(self) -> "Container":
        podman("start", self.name)
        self._read_ports()  # podman keeps the mapping, but ask again
        self.wait_healthy()
        return self

    def _read_ports(self) -> None:
        self.main_port = int(podman("port", self.name, "9099/tcp").rsplit(":", 1)[1])
        self.http_port = int(podman("port", self.name, "9100/tcp").rsplit(":", 1)[1])

    def wait_healthy(self) -> None:
        """Until the image's own HEALTHCHECK passes (it runs inside, so
        protected mode does not stop it)."""
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while True:
            if run("podman", "healthcheck", "run", self.name, check=False).returncode == 0:
                return
            state = podman("inspect", self.name, "--format", "{{.State.Status}}")
            expect(state == "running", f"{self.name} is {state}, not running:\n{self.log_tail()}")
            expect(time.monotonic() < deadline,
                   f"{self.name} not healthy after {START_DEADLINE_SECONDS} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def exec(self, *argv: str, check: bool = True) -> str:
        return out("podman", "exec", self.name, *argv, check=check)

    def exit_code(self) -> int:
        return int(podman("inspect", self.name, "--format", "{{.State.ExitCode}}"))

    def stop(self) -> float:
        """`podman stop -t 2`; returns the seconds it took."""
        started = time.monotonic()
        podman("stop", "-t", str(STOP_TIMEOUT_SECONDS), self.name)
        return time.monotonic() - started

    def log_tail(self, lines: int = 15) -> str:
        proc = run("podman", "logs", "--tail", str(lines), self.name, check=False)
        return (proc.stdout + proc.stderr).decode(errors="replace")

    def remove(self) -> None:
        # -v: the anonymous /data volume of a container started without one.
        run("podman", "rm", "-f", "-v", "-t", "0", self.name, check=False)


# --- clients -----------------------------------------------------------------

def nc(port: int, lines: list[str]) -> list[str]:
    """Send lines with nc (openbsd: -N shuts the write side at EOF) and
    return the reply lines; the server closes after QUIT."""
    data = "".join(line + "\r\n" for line in lines + ["QUIT"]).encode()
    proc = run("nc", "-N", "-w", "10", "127.0.0.1", str(port), input=data, timeout=20)
    return proc.stdout.decode(errors="replace").splitlines()


def redis_cli(port: int, *args: str, password: str | None = None) -> str:
    auth = ["-a", password, "--no-auth-warning"] if password else []
    return out("redis-cli", "-p", str(port), *auth, *args, timeout=20)


def curl(port: int, path: str, *args: str, password: str | None = None) -> tuple[int, str]:
    """(status, body) of one request with curl."""
    auth = ["-H", f"Authorization: Bearer {password}"] if password else []
    proc = run("curl", "-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}", *auth, *args,
               f"http://127.0.0.1:{port}{path}", timeout=20)
    body, _, status = proc.stdout.decode(errors="replace").rpartition("\n")
    return int(status), body


def recv_all(sock: socket.socket, deadline_seconds: float = 10.0) -> bytes:
    """Everything until the server closes (bounded)."""
    sock.settimeout(deadline_seconds)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def busy_connections(port: int, password: str | None) -> list[socket.socket]:
    """Two clients a stop must not wait for: one that pipelined big GETs and
    reads nothing (the server cannot send), one in the middle of a pipeline
    (two whole commands, then half a bulk string)."""
    auth = b"" if password is None else (
        b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password.encode()))
    reader = socket.create_connection(("127.0.0.1", port), timeout=10)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    value = b"x" * (4 << 20)
    reader.sendall(auth + b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(value), value))
    expected = b"+OK\r\n+OK\r\n" if password else b"+OK\r\n"
    got = b""
    while len(got) < len(expected):
        got += reader.recv(len(expected) - len(got))
    expect(got == expected, f"SET big answered {got!r}")
    reader.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 20)
    partial = socket.create_connection(("127.0.0.1", port), timeout=10)
    partial.sendall(auth + b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100\r\nabc")
    time.sleep(0.5)  # let the server take both in (a stop before it would test less)
    return [reader, partial]


# --- the checks ----------------------------------------------------------------

def image_knows_auth() -> bool:
    help_text = out("podman", "run", "--rm", "--network", "none", IMAGE, "--help")
    return "--requirepass" in help_text


NO_AUTH_REASON = ("the server in this image has no --requirepass (trio-kv --help): "
                  "authentication (issue 8 item 3, branch auth) is not merged yet")


def check_image_config() -> None:
    with check("image config: non-root user, entrypoint, healthcheck, stop signal, ports, volume"):
        image = json.loads(podman("image", "inspect", IMAGE))[0]
        config = image["Config"]
        expect(config.get("User") not in (None, "", "root", "0"), f"User is {config.get('User')!r}")
        expect(config.get("Entrypoint") == ["trio-kv"], f"Entrypoint {config.get('Entrypoint')}")
        expect(config.get("StopSignal") == "SIGTERM", f"StopSignal {config.get('StopSignal')}")
        # podman shows it beside Config (docker format only: OCI has none).
        expect(bool((image.get("Healthcheck") or {}).get("Test")), "no HEALTHCHECK")
        expect({"9099/tcp", "9100/tcp"} <= set(config.get("ExposedPorts", {})),
               f"ExposedPorts {config.get('ExposedPorts')}")
        expect("/data" in config.get("Volumes", {}), f"Volumes {config.get('Volumes')}")


def check_running_server(has_auth: bool, volume: str) -> None:
    """The documented way to run it: a password from the environment, ports
    published, a named volume; then stop, restart, a new container."""
    password = PASSWORD if has_auth else None
    env = {"TRIO_KV_REQUIREPASS": PASSWORD} if has_auth else {}
    box = Container("main", env=env, volume=volume)
    with check("podman run: serves, HEALTHCHECK passes", box):
        started = time.monotonic()
        box.start()
        print(f"     healthy {time.monotonic() - started:.2f} s after podman run", flush=True)
    if not box.main_port:
        raise SystemExit(report())

    with check("PID 1 is the server, running as the non-root image user", box):
        cmdline = box.exec("cat", "/proc/1/cmdline").replace("\0", " ")
        expect("trio-kv" in cmdline, f"PID 1 is {cmdline!r}")
        status = box.exec("cat", "/proc/1/status")
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        expect(uids == [IMAGE_UID] * 4, f"PID 1 Uid (real, effective, saved, fs) {uids}")
        expect(box.exec("id", "-u") == IMAGE_UID, "podman exec does not run as the image user")
        if has_auth:
            expect(PASSWORD not in cmdline, "the password is visible in PID 1's command line")

    with check("podman exec redis-cli: a client inside the container", box):
        auth = ["-a", PASSWORD, "--no-auth-warning"] if has_auth else []
        expect(box.exec("redis-cli", "-p", "9099", *auth, "PING") == "PONG", "PING inside")

    with check("podman healthcheck run: healthy", box):
        run("podman", "healthcheck", "run", box.name)
        status = podman("inspect", box.name, "--format", "{{.State.Health.Status}}")
        expect(status == "healthy", f"health status {status!r}")

    with check("nc: line protocol on the published port", box):
        auth = [f"AUTH {PASSWORD}"] if has_auth else []
        replies = nc(box.main_port, auth + ["PING", "SET ct:nc hello", "GET ct:nc"])
        expected = (["OK"] if has_auth else []) + ["PONG", "OK", "VALUE hello", "OK"]
        expect(replies == expected, f"nc got {replies}, expected {expected}")

    with check("redis-cli: RESP on the published port", box):
        expect(redis_cli(box.main_port, "PING", password=password) == "PONG", "PING")
        expect(redis_cli(box.main_port, "SET", "ct:cli", "v1", password=password) == "OK", "SET")
        expect(redis_cli(box.main_port, "GET", "ct:nc", password=password) == "hello", "GET ct:nc")

    with check("curl: HTTP API, /healthz, /readyz, /metrics on the published port", box):
        status, body = curl(box.http_port, "/healthz")
        expect((status, json.loads(body)) == (200, {"status": "ok"}), f"/healthz {status} {body}")
        status, body = curl(box.http_port, "/readyz", password=password)
        expect(status == 200, f"/readyz {status} {body}")
        status, body = curl(box.http_port, "/key/ct:http", "-X", "PUT", "-d", '{"a":1}',
                            password=password)
        expect(status == 200, f"PUT /key/ct:http {status} {body}")
        status, body = curl(box.http_port, "/key/ct:cli", password=password)
        expect((status, json.loads(body)) == (200, {"key": "ct:cli", "value": "v1"}),
               f"GET /key/ct:cli {status} {body}")
        status, body = curl(box.http_port, "/metrics", password=password)
        expect(status == 200 and "trio_kv_keys " in body, f"/metrics {status} {body[:200]}")

    with check("the password comes from TRIO_KV_REQUIREPASS", box):
        if not has_auth:
            raise Skip(NO_AUTH_REASON)
        expect(redis_cli(box.main_port, "PING").startswith("NOAUTH"), "PING without AUTH")
        wrong = redis_cli(box.main_port, "AUTH", "not-" + PASSWORD)
        expect(wrong.startswith("WRONGPASS"), f"a wrong password: {wrong!r}")
        replies = nc(box.main_port, ["GET ct:nc"])
        expect(replies[0].startswith("ERROR NOAUTH"), f"line protocol without AUTH: {replies}")
        status, body = curl(box.http_port, "/key/ct:cli")
        expect(status == 401, f"HTTP without a bearer token: {status} {body}")
        status, body = curl(box.http_port, "/key/ct:cli", password="not-" + PASSWORD)
        expect(status == 401, f"HTTP with a wrong bearer token: {status} {body}")
        status, _ = curl(box.http_port, "/healthz")
        expect(status == 200, f"/healthz without a token (liveness stays open): {status}")

    with check(f"podman stop -t {STOP_TIMEOUT_SECONDS}: the server exits 0 by itself", box):
        elapsed = box.stop()
        code = box.exit_code()
        print(f"     podman stop took {elapsed:.2f} s, exit code {code}", flush=True)
        expect(code == 0, f"exit code {code} (137: killed after {STOP_TIMEOUT_SECONDS} s)")

    with check("podman start: the data is back (same container, same volume)", box):
        box.restart()
        expect(redis_cli(box.main_port, "GET", "ct:cli", password=password) == "v1", "GET ct:cli")

    with check(f"podman stop -t {STOP_TIMEOUT_SECONDS} with busy connections: exits 0", box):
        clients = busy_connections(box.main_port, password)
        try:
            elapsed = box.stop()
        finally:
            for client in clients:
                client.close()
        code = box.exit_code()
        print(f"     podman stop took {elapsed:.2f} s, exit code {code}", flush=True)
        expect(code == 0, f"exit code {code} (137: killed after {STOP_TIMEOUT_SECONDS} s)")
        expect("SIGTERM received" in box.log_tail(40), "no 'SIGTERM received' in the log")

    with check("a second SIGTERM exits at once with status 1", box):
        box.restart()
        clients = busy_connections(box.main_port, password)
        try:
            podman("kill", "-s", "TERM", box.name)
            time.sleep(0.2)  # inside the 1 s grace the busy client holds open
            podman("kill", "-s", "TERM", box.name)
            podman("wait", box.name, timeout=30)
        finally:
            for client in clients:
                client.close()
        expect(box.exit_code() == 1, f"exit code {box.exit_code()}")

    box.remove()
    fresh = Container("fresh", env=env, volume=volume)
    with check("a new container on the same volume has the data", fresh):
        fresh.start()
        got = {key: redis_cli(fresh.main_port, "GET", key, password=password)
               for key in ("ct:nc", "ct:cli", "ct:http")}
        expect(got == {"ct:nc": "hello", "ct:cli": "v1", "ct:http": '{"a":1}'}, f"got {got}")
        size = redis_cli(fresh.main_port, "STRLEN", "big", password=password)
        expect(size == str(4 << 20), f"STRLEN big {size}")
    fresh.remove()


def check_protected_mode(has_auth: bool) -> None:
    """No password: the published ports refuse, `podman exec redis-cli` works."""
    if not has_auth:
        skip("protected mode: no password, published ports answer DENIED", NO_AUTH_REASON)
        skip("TRIO_KV_PROTECTED_MODE=no: published ports serve without a password",
             NO_AUTH_REASON)
        return
    box = Container("open")
    try:
        with check("protected mode: no password, published ports answer DENIED", box):
            box.start()  # its HEALTHCHECK runs inside: loopback, served
            with socket.create_connection(("127.0.0.1", box.main_port), timeout=10) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                reply = recv_all(sock)  # ends: the server closes
            expect(reply.startswith(b"-DENIED"), f"RESP client got {reply[:80]!r}")
            line_reply = nc(box.main_port, ["PING"])
            expect(line_reply and "DENIED" in line_reply[0], f"nc got {line_reply}")
            cli_reply = redis_cli(box.main_port, "PING")
            expect("DENIED" in cli_reply, f"redis-cli got {cli_reply[:80]!r}")
            status, body = curl(box.http_port, "/key/x")
            expect(status == 403, f"HTTP got {status} {body[:80]}")
        with check("protected mode: podman exec redis-cli (loopback) is served", box):
            expect(box.exec("redis-cli", "-p", "9099", "PING") == "PONG", "PING inside")
            expect(box.exec("redis-cli", "-p", "9099", "SET", "in", "1") == "OK", "SET inside")
    finally:
        box.remove()
    opted_out = Container("optout", env={"TRIO_KV_PROTECTED_MODE": "no"})
    try:
        with check("TRIO_KV_PROTECTED_MODE=no: published ports serve without a password",
                   opted_out):
            opted_out.start()
            expect(redis_cli(opted_out.main_port, "PING") == "PONG", "PING from outside")
    finally:
        opted_out.remove()


def compose(project: str, *args: str, env: dict[str, str], check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
    build_args = "--format docker" + (f" -v {CA_MOUNT}" if CA_MOUNT else "")
    return run("podman-compose", "-f", str(REPO / "docker-compose.yml"), "-p", project,
               "--podman-build-args", build_args, *args, env=env, check=check, timeout=timeout)


def check_compose(has_auth: bool) -> None:
    project = PREFIX.replace("-", "")
    base_env = {"KV_PUBLISH_PORT": str(free_port()), "KV_PUBLISH_HTTP_PORT": str(free_port())}
    # The variable must not leak in from the caller's environment.
    no_password = {k: v for k, v in os.environ.items() if k != "TRIO_KV_REQUIREPASS"}
    with check("podman-compose: refuses to start without TRIO_KV_REQUIREPASS"):
        proc = subprocess.run(
            # `ps` reads the file like any command (podman-compose 1.0 has no `config`).
            ["podman-compose", "-f", str(REPO / "docker-compose.yml"), "-p", project, "ps"],
            capture_output=True, timeout=60, env={**no_password, **base_env},
        )
        said = (proc.stdout + proc.stderr).decode(errors="replace")
        expect(proc.returncode != 0 and "TRIO_KV_REQUIREPASS" in said,
               f"exit {proc.returncode}: {said[-300:]}")
    if not has_auth:
        skip("podman-compose up --build: password required, ports published, healthy",
             NO_AUTH_REASON + " (the compose file passes TRIO_KV_REQUIREPASS to it)")
        return
    env = {**base_env, "TRIO_KV_REQUIREPASS": PASSWORD}
    port, http_port = int(base_env["KV_PUBLISH_PORT"]), int(base_env["KV_PUBLISH_HTTP_PORT"])
    try:
        with check("podman-compose up --build: password required, ports published, healthy"):
            started = time.monotonic()
            compose(project, "up", "-d", "--build", env=env)
            Container.of_compose(project).wait_healthy()
            print(f"     up and healthy in {time.monotonic() - started:.1f} s", flush=True)
            expect(redis_cli(port, "PING").startswith("NOAUTH"), "PING without the password")
            expect(redis_cli(port, "SET", "ct:compose", "1", password=PASSWORD) == "OK", "SET")
            status, _ = curl(http_port, "/healthz")
            expect(status == 200, f"/healthz {status}")
        with check("podman-compose stop: the server exits 0; up again keeps the data"):
            started = time.monotonic()
            box = Container.of_compose(project)
            compose(project, "stop", "-t", str(STOP_TIMEOUT_SECONDS), env=env)
            code = box.exit_code()
            print(f"     stop took {time.monotonic() - started:.2f} s, exit code {code}", flush=True)
            expect(code == 0, f"exit code {code}")
            compose(project, "down", env=env)
            compose(project, "up", "-d", env=env)
            Container.of_compose(project).wait_healthy()
            expect(redis_cli(port, "GET", "ct:compose", password=PASSWORD) == "1", "GET after up")
    finally:
        compose(project, "down", "-v", "-t", "0", env=env, check=False)
        run("podman", "rmi", f"{project}_trio-kv", check=False)  # the image compose built


def report() -> int:
    failed = [name for name, status, _ in results if status == "FAIL"]
    skipped = [(name, why) for name, status, why in results if status == "SKIP"]
    print(f"container checks: {len(results) - len(failed) - len(skipped)} passed, "
          f"{len(failed)} failed, {len(skipped)} skipped", flush=True)
    for name, why in skipped:
        print(f"  skipped: {name}: {why}")
    return 1 if failed else 0


def main() -> int:
    volume = f"{PREFIX}-data"
    try:
        check_image_config()
        has_auth = image_knows_auth()
        if not has_auth:
            print(f"NOTE {NO_AUTH_REASON}: those checks are skipped", flush=True)
        check_running_server(has_auth, volume)
        check_protected_mode(has_auth)
        check_compose(has_auth)
    finally:
        for name in podman("ps", "-a", "--filter", f"name={PREFIX}", "--format", "{{.Names}}",
                           check=False).split():
            run("podman", "rm", "-f", "-v", "-t", "0", name, check=False)
        run("podman", "volume", "rm", "-f", volume, check=False)
    return report()


if __name__ == "__main__":
    sys.exit(main())
