"""The Redis command table: every RESP command, assembled from the modules
that define them (one module per command family), with Redis' wording for
unknown commands and wrong argument counts."""

from __future__ import annotations

from ..protocol.replies import NO_REPLY, Error
from . import (
    client,
    cluster,
    cluster_session,
    connection,
    dump_restore,
    functions,
    hashes,
    info,
    introspection,
    keys,
    ordered,
    memory,
    object_info,
    runtime_config,
    saving,
    security,
    server,
    snapshot,
    strings,
    transactions,
    versions,
)
from .hash_value import HashValue
from .table import CommandSpec, CommandTable
from .values import value_types


def _unknown_command(args: list[bytes]) -> Error:
    # Redis (server.c): each argument quoted and followed by a space, until
    # the list reaches 128 characters.
    name = args[0].decode("utf-8", "replace")
    shown = ""
    for arg in args[1:]:
        if len(shown) >= 128:
            break
        shown += "'" + arg.decode("utf-8", "replace")[: 128 - len(shown)] + "' "
    return Error(f"ERR unknown command '{name[:128]}', with args beginning with: {shown}")


def _wrong_arity(spec: CommandSpec) -> Error:
    return Error(f"ERR wrong number of arguments for '{spec.name}' command")


REDIS_COMMANDS = CommandTable(
    [
        *strings.SPECS,
        *keys.SPECS,
        ordered.KRANGE_SPEC,
        *dump_restore.SPECS,
        *hashes.SPECS,
        *transactions.SPECS,
        *connection.SPECS,
        *client.SPECS,
        *server.SPECS,
        *saving.SPECS,
        *runtime_config.SPECS,
        *info.SPECS,
        *introspection.SPECS,
        *memory.SPECS,
        *object_info.SPECS,
        *functions.SPECS,
        *cluster.SPECS,
        *cluster_session.SPECS,
        *versions.SPECS,
        *snapshot.SPECS,
    ],
    unknown_command=_unknown_command,
    wrong_arity=_wrong_arity,
    http_request=security.security_warning_spec("post", NO_REPLY),
)

# Every family whose values are not strings (commands/values.py): the log and
# snapshots name them by TYPE_CODE.
VALUE_TYPES = value_types(HashValue)
