"""Whether a peer is up: this node's opinion, from when it last heard the
peer answer. Pure (time comes in as ``now``, monotonic seconds).

A peer is up from its first answered ping (after a completed handshake)
until ``node_timeout_seconds`` pass with no answer; a broken link does not
by itself make it down (the next connection may come back at once), the
silence does. The opinion is local and used only for routing and
publishing (design: membership and failure detection).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PeerHealth:
    node_timeout_seconds: float
    # Monotonic seconds of the last answer; None: never heard.
    last_heard_s: float | None = None

    def heard(self, now: float) -> None:
        self.last_heard_s = now

    def is_up(self, now: float) -> bool:
        return self.last_heard_s is not None and now - self.last_heard_s < self.node_timeout_seconds

    def down_at(self) -> float | None:
        """When the peer turns down if nothing is heard before (None: it is not up)."""
        return None if self.last_heard_s is None else self.last_heard_s + self.node_timeout_seconds
