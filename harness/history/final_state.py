"""The final read: every key's values on every node, after the run.

For each node (waiting up to ``wait_up_s`` for one that is restarting), each
key is read with ``TKV.SIBLINGS`` (all sibling values; cluster mode) when the
node answers it, else with ``GET`` (one value or none: a single node, or a
cluster node before TKV.SIBLINGS exists). Which one is decided once per node
from the first key's reply, so a node never mixes the two. With
``consistency`` (``QUORUM``, ``ALL``) the connection first sends
``TKV.CONSISTENCY``, and the reads are labelled ``host:port@LEVEL``.

A node that cannot be reached, or a read that errs, gives ``values=None``
(unreadable), never an empty value: the survival checker must not take
"could not read" for "absent".
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .model import FinalRead
from .siblings_reply import sibling_values

Address = tuple[str, int]


def _connect(address: Address, timeout_s: float, wait_up_s: float) -> tuple[redis.Redis | None, str]:
    deadline = time.monotonic() + wait_up_s
    error_text = ""
    while True:
        client = None
        try:
            client = redis.Redis(
                host=address[0], port=address[1], socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0), single_connection_client=True,
            )
            client.ping()
            return client, ""
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            if client is not None:
                client.close()
            error_text = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            return None, error_text
        time.sleep(0.05)


def _read_node(client: redis.Redis, label: str, keys: Sequence[str], siblings: bool) -> list[FinalRead]:
    finals = []
    use_siblings: bool | None = None if siblings else False
    for key in keys:
        try:
            if use_siblings is not False:
                try:
                    values = sibling_values(client.execute_command("TKV.SIBLINGS", key))
                    use_siblings = True
                except redis.exceptions.ResponseError:
                    if use_siblings:
                        raise
                    use_siblings = False
            if use_siblings is False:
                raw = client.get(key)
                values = [] if raw is None else [raw.decode()]
        except (redis.exceptions.RedisError, OSError) as error:
            finals.append(FinalRead(label, key, None, f"{type(error).__name__}: {error}"))
            continue
        finals.append(FinalRead(label, key, values))
    return finals


def read_final_state(
    nodes: Sequence[Address],
    keys: Sequence[str],
    *,
    consistency: str | None = None,
    siblings: bool = True,
    timeout_s: float = 5.0,
    wait_up_s: float = 15.0,
) -> list[FinalRead]:
    finals: list[FinalRead] = []
    for address in nodes:
        label = f"{address[0]}:{address[1]}" + (f"@{consistency}" if consistency else "")
        client, error_text = _connect(address, timeout_s, wait_up_s)
        if client is None:
            finals.extend(FinalRead(label, key, None, error_text) for key in keys)
            continue
        try:
            if consistency is not None:
                client.execute_command("TKV.CONSISTENCY", consistency)
            finals.extend(_read_node(client, label, keys, siblings))
        finally:
            client.close()
    return finals
