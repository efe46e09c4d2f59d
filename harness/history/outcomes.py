"""Which client errors are definite and which leave an operation in doubt.

The rule: ``fail`` only when the server promised the operation did not
apply; everything else is ``unknown``. Guessing "failed" for a write that did
apply hides lost updates from the checkers; guessing "unknown" for one that
did not only costs the checkers a little search. So:

* an error reply (redis-py's ``ResponseError``: ``-ERR syntax``,
  ``-WRONGTYPE``, ``-MOVED``, ``-LOADING``, ``-MISCONF``, ...) is ``fail``:
  the command was refused before it ran, which is what Redis' error replies
  mean (also the few redis-py raises as connection errors: ``-LOADING``,
  ``-NOAUTH``, max clients), *except* the codes in ``INDEFINITE_ERROR_CODES``: ``-NOREPLICAS``
  (the coordinator applied the write but too few replicas acknowledged in
  time: it may survive, and may be read later);
* a timeout, a reset or closed connection, a broken pipe, a protocol error
  mid-reply (the server was killed while answering) is ``unknown``: the
  request may have reached the server and been applied.

A connection that could not be *opened* sends nothing, so the workload opens
its connection before recording an operation (workload.py): refused
connections never appear in a history.
"""

from __future__ import annotations

import redis.exceptions

from .model import FAIL, UNKNOWN

# Error-reply codes after which the write may still have happened.
INDEFINITE_ERROR_CODES = frozenset({"NOREPLICAS"})

# Error replies redis-py raises as ConnectionError subclasses: still refusals (fail).
REFUSAL_REPLY_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.BusyLoadingError,  # -LOADING
    redis.exceptions.AuthenticationError,  # -NOAUTH, -WRONGPASS
    redis.exceptions.MaxClientsReachedError,  # -ERR max number of clients reached
)

# What a client call can raise that says nothing definite about the server's state.
INDEFINITE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.InvalidResponse,
    OSError,  # socket.timeout, ConnectionResetError, BrokenPipeError
)


def error_code(error: redis.exceptions.ResponseError) -> str:
    """The reply's code word (``NOREPLICAS``, ``WRONGTYPE``), however redis-py split it."""
    code = getattr(error, "status_code", None)
    return code if code else str(error).split(" ", 1)[0]


def classify(error: BaseException) -> tuple[str, str]:
    """(``fail`` or ``unknown``, the error's text); other exceptions are the caller's bug: re-raise them."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, redis.exceptions.ResponseError):
        return (UNKNOWN if error_code(error) in INDEFINITE_ERROR_CODES else FAIL), text
    if isinstance(error, REFUSAL_REPLY_ERRORS):
        return FAIL, text
    if isinstance(error, INDEFINITE_ERRORS):
        return UNKNOWN, text
    raise TypeError(f"unclassified client error {text}") from error
