"""INFO cluster's version fields: how many keys have versions, siblings
and tombstones on this node (``Versions.statistics()``, store/versions.py,
kept per write: reading them walks no key). Shown beside the bus fields
(commands/cluster_bus_info.py), only while the cluster bus runs, so a lone
node's INFO cluster stays redis-server's (the emulated differential test).
``trio-kv cluster status`` reads them back.

    cluster_versions_keys:1000                 keys with versions (tombstones included)
    cluster_versions_keys_with_siblings:2      keys holding more than one sibling now
    cluster_versions_largest_siblings:3        the most siblings one key holds now (127: 127 or more)
    cluster_versions_largest_siblings_peak:4   the most one key held since start
    cluster_versions_tombstones:10             deleted keys kept as tombstones
    cluster_versions_bytes:48000               bytes of the stored clocks
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.store import Store
    from .control import ServerControl

# Versions.statistics() name -> INFO field name.
FIELDS = (
    ("versioned_keys", "cluster_versions_keys"),
    ("keys_with_siblings", "cluster_versions_keys_with_siblings"),
    ("largest_siblings", "cluster_versions_largest_siblings"),
    ("largest_siblings_peak", "cluster_versions_largest_siblings_peak"),
    ("tombstone_keys", "cluster_versions_tombstones"),
    ("version_bytes", "cluster_versions_bytes"),
)


def versions_info_fields(store: Store, control: ServerControl) -> list[tuple[str, object]]:
    versions = store.versions
    if versions is None or control.cluster_bus_status() is None:
        return []
    statistics = versions.statistics()
    return [(field, statistics[name]) for name, field in FIELDS]
