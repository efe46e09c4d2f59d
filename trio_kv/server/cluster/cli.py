"""``trio-kv cluster dev ...`` (dev.py: start a local cluster),
``trio-kv cluster status ...`` (status.py: one node's view) and
``trio-kv cluster add | remove | plan ... | finish`` (membership_cli.py: membership changes)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import dev, membership_cli, status

USAGE = (
    "usage: trio-kv cluster dev [--nodes N] [--base-port P] [--data-dir-root D] | status -p PORT [-h HOST]\n"
    "       | add HOST:PORT -p PORT [-h HOST] | remove NODE -p PORT [-h HOST] | plan add|remove ... -p PORT [-h HOST]\n"
    "       | finish -p PORT [-h HOST]   (membership: the secret from $TRIO_KV_CLUSTER_SECRET or --cluster-secret-file)"
)


def main(argv: Sequence[str]) -> int:
    commands = {
        "dev": dev.main, "status": status.main,
        "add": membership_cli.main, "remove": membership_cli.main, "plan": membership_cli.main,
        "finish": membership_cli.main,
    }
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    name = argv[0]
    return commands[name](argv if name in ("add", "remove", "plan", "finish") else argv[1:])
