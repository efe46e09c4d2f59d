"""The cluster's async shell: the bus (client port + 10000), one pipelined
link per peer, static membership and the up/down opinion
(design/cluster.md "Trio structure", "node-to-node protocol", "bus security").

Files, one idea each: ``start`` (whether the bus runs, its port, the
membership and node id), ``serve`` (the cluster nursery and its stop),
``bus_listener`` (inbound peer connections: plain ``server.connection``
with the ``TKV.*`` table), ``link`` (one connected stream as a pipelined
request/reply link), ``peer_link`` (one peer for the node's life: connect,
handshake, link, pinger, retry), ``transport`` (how a link connects:
TCP, or a test's in-memory network), ``node`` (membership, node ids, the
opinion, the ``ClusterView``), ``dev`` / ``status`` / ``cli`` (the
``trio-kv cluster`` tools).

The data path's API (everything else here is internal):

* ``ServerAddresses.cluster.node`` is the ``ClusterNode``; ``node.view()``
  the current ``ClusterView``; ``node.on_view_change(callback)``;
  ``node.links[member]`` the ``PeerLink`` of each other member.
* ``await link.request(args: Sequence[bytes]) -> object`` and
  ``await link.request_many(requests: Sequence[Sequence[bytes]]) -> list[object]``:
  replies as ``protocol.replies`` values (an error reply is an ``Error``
  value). With no connected link: waits for it while the node believes the
  peer up (it is reconnecting), ``LinkDown`` (nothing sent) at once while it
  believes it down or once it marks it down (``peer_link`` rule 4);
  ``LinkClosed`` when the connection ends first (``.sent``:
  whether it may have reached the peer). The caller's cancel scope may end
  the wait (for queue room or for the reply), never a send or a receive.
* ``link.send_nowait(data, count, on_replies) -> bool``: queue encoded
  requests (or a function that encodes them when the link's writer takes
  them) without waiting; ``on_replies`` gets the replies, or None if the
  link fails first; False when refused (no link, queue full). The
  replicator (``replicator.py``) gathers a peer's ``TKV.REPL.PUT`` pairs
  into one multi-key put this way.
* Jobs and sessions the cluster makes for itself come from
  ``internal_jobs`` (stamped with ``time.perf_counter()`` as client jobs).
* Bus commands the data path adds go in ``commands.peer.table.PEER_SPECS``
  with ``Access.PEER`` (``peer_spec(...)``); a replica's write runs under
  the write lock through the dispatcher, so its reply (the ack) is sent
  only after its own log flush.
"""
