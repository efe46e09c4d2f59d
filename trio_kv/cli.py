"""The ``trio-kv`` command (and ``python -m trio_kv``): parse the
configuration, set up logging, run the server until SIGTERM or SIGINT.
``trio-kv check-log PATH ...`` runs the log checker instead
(store/durability/check.py); ``trio-kv cluster dev|status ...`` the
cluster tools (server/cluster/cli.py); ``trio-kv cli ...`` the RESP
command-line client (client/cli.py)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import trio

from .cluster.ring_record import RingRecordError
from .client.cli import main as client_cli
from .cluster.seeds import MembershipError
from .config import parse_config
from .server.cluster.cli import main as cluster_command
from .server.lifecycle import serve
from .store.durability.check import main as check_log
from .store.durability.reader import DurabilityError


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["check-log"]:
        return check_log(args[1:])
    if args[:1] == ["cluster"]:
        return cluster_command(args[1:])
    if args[:1] == ["cli"]:
        return client_cli(args[1:])
    config = parse_config(args)
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        trio.run(lambda: serve(config, handle_signals=True, freeze_start_up=True))
    except (DurabilityError, OSError, MembershipError, RingRecordError) as error:
        # Damaged or locked data (refuse to start rather than start empty), an
        # unusable data directory, an address in use, a node missing from
        # its own --cluster-seeds: one line, exit 1.
        logging.getLogger("trio_kv").critical("cannot start: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
