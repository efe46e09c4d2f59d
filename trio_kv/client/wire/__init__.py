"""The client's pure parts: no trio, sockets or threads (tests/unit/test_layering.py
checks it), shared by the Trio client, the blocking client and the CLI; the
cluster's peer links share the packer and the typed parser underneath.
``packing`` turns commands into bytes with the project's one packer
(``protocol/resp_pack.py``, the peer links' too); ``replies`` turns bytes
into Python values with hiredis' ``Reader`` (C speed, no hand-written parser
on the client's ``execute`` path); ``typed`` keeps the RESP type of every
reply for the CLI, whose output depends on types hiredis does not report
(the project's one typed parser, ``protocol/resp_reply.py``, the peer
links' too, with the CLI's vocabulary); ``cli_format`` prints typed replies
as redis-cli 7.0 does; ``errors`` holds the exceptions every flavor raises."""
