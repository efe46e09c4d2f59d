"""Which writes must first gather a read quorum's versions of their keys
(the write's context), without IO.

A coordinator's own copy of a key may miss writes that other members
acknowledged (it was down, or a replication to it failed). A write that
runs on that copy alone acts on the missed state: a DEL answers 0 and
deletes nothing (the key stays on the members that have it), an INCR
counts from 0, a SETNX sets, a SET GET answers nil. With R + W > N the
coordinator fixes that as Dynamo does (get, then put with the context): it
merges what R preference-list members hold of the write's keys into its
copy first, so the write acts on a state that includes every acknowledged
write and supersedes them all.

Rules kept here:

- A *blind* write sets its keys whatever they held and replies the same
  whatever they held: ``SET key value`` (with ``EX``/``PX``/``EXAT``/``PXAT``),
  ``SETEX``, ``PSETEX``, ``MSET``. It needs no context: its new version
  supersedes what this copy has seen, and a version it did not see becomes
  a sibling that loses to it (the newer timestamp) on GET.
- Every other write (DEL, INCR, APPEND, SETNX, SET with NX/XX/GET/KEEPTTL,
  HSET, EXPIRE, RENAME...) is read-modify-write: it gathers first.
- ``--cluster-write-context read`` makes blind writes gather too (no
  sibling left behind by a coordinator that missed writes).
- What a gathered write does with siblings is the store's
  (store/versions.py): it acts on the winner (GET's view) and, when it
  writes, supersedes every version gathered; a delete of a key whose
  winner is a tombstone but which still holds a live sibling (a
  concurrent write that lost by its clock) deletes that sibling too and
  counts the key (``Versions.delete_hidden``): it resolves what it saw.
"""

from __future__ import annotations

from collections.abc import Sequence

BLIND_WRITES = frozenset([b"set", b"setex", b"psetex", b"mset"])
# SET options that make its effect or reply depend on the key's prior state.
SET_STATE_OPTIONS = frozenset([b"nx", b"xx", b"get", b"keepttl"])


def is_blind_write(args: Sequence[bytes]) -> bool:
    """Whether the write request ``args`` (name first) is blind (above)."""
    if not args:
        return False
    name = args[0].lower()
    if name not in BLIND_WRITES:
        return False
    if name == b"set":
        # Options follow the value; an option's argument (EX's seconds) is a number, never an option name.
        return not any(option.lower() in SET_STATE_OPTIONS for option in args[3:])
    return True


def gathers_context(args: Sequence[bytes], *, write_context_read: bool) -> bool:
    """Whether the write request ``args`` gathers R members' versions first."""
    return write_context_read or not is_blind_write(args)
