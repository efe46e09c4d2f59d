"""``python -m trio_kv``: the same as the ``trio-kv`` command."""

import sys

from .cli import main

sys.exit(main())
