"""The client's pure parts: no trio, sockets or threads (tests/unit/test_layering.py
checks it), so the Trio client, the blocking client, the CLI and, later, the
cluster's peer links can share them. ``packing`` turns commands into bytes with
hiredis' ``pack_command``; ``replies`` turns bytes into Python values with
hiredis' ``Reader`` (C speed, no hand-written parser on the client's path);
``typed`` keeps the RESP type of every reply for the CLI, whose output
depends on types hiredis does not report; ``cli_format`` prints typed replies
as redis-cli 7.0 does; ``errors`` holds the exceptions every flavor raises."""
