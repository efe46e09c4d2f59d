"""The cluster's pure logic: key -> slot -> partition -> preference list,
versions, clocks and quorum counting (design: ../shared/design/cluster.md).

Rules kept here: no trio, no sockets, no threads, no store; everything is a
function of its inputs (time comes in as an argument), so hypothesis drives it
and every node computes the same answer from the same members. The async
shell (``trio_kv.server.cluster``) owns links and timers; the store keeps
versions; the commands layer publishes the map to clients.
"""
