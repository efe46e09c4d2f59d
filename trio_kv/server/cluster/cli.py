"""``trio-kv cluster dev ...`` (dev.py: start a local cluster) and
``trio-kv cluster status ...`` (status.py: one node's view)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from . import dev, status

USAGE = "usage: trio-kv cluster dev [--nodes N] [--base-port P] [--data-dir-root D] | status -p PORT [-h HOST]"


def main(argv: Sequence[str]) -> int:
    commands = {"dev": dev.main, "status": status.main}
    if not argv or argv[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
