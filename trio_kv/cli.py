"""The ``trio-kv`` command (and ``python -m trio_kv``): parse the
configuration, set up logging, run the server until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import trio

from .config import parse_config
from .server.lifecycle import serve


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    trio.run(lambda: serve(config, handle_signals=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
