"""A private network namespace for one test, and ``nft`` rules that cut links inside it (stdlib only).

``NetworkNamespace()`` used as ``with`` moves the *calling thread* into a new,
empty network namespace (``unshare(CLONE_NEWNET)``, what ``unshare --net``
does), brings its ``lo`` up (so every 127.0.0.x is local: nodes listen on
127.0.0.11, .12, .13 and collide with nothing outside), and on the way out
puts the thread back into the namespace it came from. What the thread does
meanwhile happens inside: the processes it starts (subprocess.Popen forks
from the calling thread), the threads it starts, the sockets it opens. A
worker thread started *before* (a Trio thread cache) stays outside, so tests
start nodes and clients from the thread that entered (ProcessCluster and the
history workload do). The namespace disappears when its last process exits
and the ``with`` block has closed its handle: nothing outlives the test
except by PID, which the cluster's ``stop`` ends.

Cutting a link between two nodes cannot go by address alone: a node's
outbound connection to 127.0.0.12 leaves from 127.0.0.1 (the kernel's
source for the loopback route; the product does not bind its own address),
so a packet does not say which node sent it. Instead each node runs under
its own group id (``launcher(host)``: ``setpriv --regid=G``, still root, so
files and the virtualenv stay readable), a rule marks every new connection
with the gid of the socket that opened it (``ct mark``), and
``cut(a, b)`` drops every packet of a connection opened by ``a`` to ``b``'s
address or by ``b`` to ``a``'s, both directions (``ct original ip daddr``):
established connections stall, new ones time out, as a partition between
hosts. Connections opened by the test itself (gid 0) are never cut.
``heal(a, b)`` deletes those rules; ``isolate(a, others)`` cuts ``a`` from
each of ``others``, ``heal_all()`` ends every cut. The host's ruleset is
never touched. ``redirect(opener, host, port, to_host, to_port)`` sends the
connections the node at ``opener`` opens to ``host:port`` to ``to_host:to_port``
instead (DNAT: a fault proxy, harness/fault_proxy.py, on one direction of a
peer link; the proxy's own upstream connection, gid 0, goes straight
through); it applies to connections opened after it. ``nft`` runs through
``nsenter --net=<the namespace's handle>`` so any thread may call these.

``unavailable()`` says why a namespace cannot be made here (a missing tool,
``missing_tool()``, or no privilege), or None: tests skip with it (and fail
on a missing tool where the tools are required, as in CI).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

CLONE_NEWNET = 0x40000000
TABLE = "trio_kv_faults"
FIRST_GID = 40000
TOOL_SECONDS = 10.0

_libc = ctypes.CDLL(None, use_errno=True)


def _thread_namespace_path() -> str:
    return "/proc/thread-self/ns/net"


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def missing_tool() -> str | None:
    """The first tool ``NetworkNamespace`` needs that is not installed, as a sentence, or None."""
    for tool in ("unshare", "nft", "nsenter", "ip", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (.ci/run installs nftables, util-linux and iproute2)"
    return None


def unavailable() -> str | None:
    """Why ``NetworkNamespace`` cannot work on this machine, or None: a
    missing tool, or no privilege to make a namespace with ``nft`` rules in
    it (probed with ``unshare --net nft list ruleset``; an unprivileged
    container cannot)."""
    missing = missing_tool()
    if missing is not None:
        return missing
    probe = subprocess.run(["unshare", "--net", "nft", "list", "ruleset"], capture_output=True, text=True,
                           timeout=TOOL_SECONDS, check=False)
    if probe.returncode != 0:
        return f"cannot make a network namespace with nft rules here: {probe.stderr.strip()}"
    return None


class NetworkNamespace:
    def __init__(self) -> None:
        self._outer_fd = -1
        self._inner_fd = -1
        # (a, b) -> the rule handles that cut it.
        self._cuts: dict[tuple[str, str], list[int]] = {}
        # host -> the group id its node runs under (the mark of its connections).
        self._gids: dict[str, int] = {}

    @property
    def handle_path(self) -> str:
        """A path naming the namespace for ``nsenter --net=`` while the ``with`` block runs."""
        return f"/proc/{os.getpid()}/fd/{self._inner_fd}"

    def __enter__(self) -> NetworkNamespace:
        self._outer_fd = os.open(_thread_namespace_path(), os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            self._inner_fd = os.open(_thread_namespace_path(), os.O_RDONLY | os.O_CLOEXEC)
            self.run("ip", "link", "set", "lo", "up")
            self.run("nft", "add", "table", "inet", TABLE)
            # Output sees every loopback packet once (it never crosses a device), so one hook is
            # enough: first (after conntrack, -200) mark new connections, then cut.
            self.run("nft", "add", "chain", "inet", TABLE, "marker",
                     "{ type filter hook output priority -100; policy accept; }")
            self.run("nft", "add", "chain", "inet", TABLE, "cut",
                     "{ type filter hook output priority 0; policy accept; }")
            self.run("nft", "add", "chain", "inet", TABLE, "proxying",
                     "{ type nat hook output priority -100; policy accept; }")
        except BaseException:
            self._leave()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._outer_fd >= 0:
            _check(_libc.setns(self._outer_fd, CLONE_NEWNET), "setns back to the outer namespace")
            os.close(self._outer_fd)
            self._outer_fd = -1
        if self._inner_fd >= 0:
            os.close(self._inner_fd)
            self._inner_fd = -1

    def run(self, *argv: str) -> str:
        """Run a tool inside the namespace (from any thread); its stdout. Raises on failure."""
        completed = subprocess.run(["nsenter", f"--net={self.handle_path}", *argv], capture_output=True,
                                   text=True, timeout=TOOL_SECONDS, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({completed.returncode}): {completed.stderr.strip()}")
        return completed.stdout

    def gid(self, host: str) -> int:
        """The group id the node at ``host`` runs under (given on first use, with its marking rule)."""
        if host not in self._gids:
            gid = FIRST_GID + len(self._gids) + 1
            self.run("nft", "add", "rule", "inet", TABLE, "marker", "ct", "state", "new", "meta", "skgid", str(gid),
                     "ct", "mark", "set", str(gid))
            self._gids[host] = gid
        return self._gids[host]

    def launcher(self, host: str) -> list[str]:
        """The argv prefix that runs a node for ``host`` so ``cut`` can tell its connections apart."""
        return ["setpriv", f"--regid={self.gid(host)}", "--clear-groups", "--"]

    def cut(self, a: str, b: str) -> None:
        """Drop every packet between the nodes at ``a`` and ``b`` (both ways) until ``heal``."""
        key = (min(a, b), max(a, b))
        if key in self._cuts:
            return
        handles = []
        for opener, other in ((a, b), (b, a)):
            out = self.run("nft", "--echo", "--handle", "add", "rule", "inet", TABLE, "cut",
                           "ct", "mark", str(self.gid(opener)), "ct", "original", "ip", "daddr", other, "drop")
            handles.append(int(out.rsplit("# handle", 1)[1].split()[0]))
        self._cuts[key] = handles

    def redirect(self, opener: str, host: str, port: int, to_host: str, to_port: int) -> None:
        """New connections from the node at ``opener`` to ``host:port`` go to ``to_host:to_port``."""
        self.run("nft", "add", "rule", "inet", TABLE, "proxying", "meta", "skgid", str(self.gid(opener)),
                 "ip", "daddr", host, "tcp", "dport", str(port), "dnat", "ip", "to", f"{to_host}:{to_port}")

    def heal(self, a: str, b: str) -> None:
        for handle in self._cuts.pop((min(a, b), max(a, b)), []):
            self.run("nft", "delete", "rule", "inet", TABLE, "cut", "handle", str(handle))

    def isolate(self, a: str, others: list[str]) -> None:
        for other in others:
            self.cut(a, other)

    def heal_all(self) -> None:
        for a, b in list(self._cuts):
            self.heal(a, b)

    def rules(self) -> str:
        """The namespace's ruleset as ``nft list ruleset`` prints it (for failure reports)."""
        return self.run("nft", "list", "ruleset")
