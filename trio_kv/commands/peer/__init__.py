"""The cluster bus's commands (all ``TKV.*``), in their own table: a bus
connection (client port + 10000) runs only these, and a client port runs
none of them. Handlers return replies like every other command and run on
the workers through the normal dispatcher; what they ask of the node (its
id, ring, view) comes through the connection's ``PeerState``
(``session.peer``), built by the bus listener (``server.cluster``).

Files: ``state`` (the per-connection handshake and the ``BusNode``
protocol), ``access`` (who may run what before the handshake), ``hello``
(TKV.HELLO, TKV.AUTH), ``ping`` (TKV.PING), ``ring`` (TKV.RING), ``repl``
(TKV.REPL.PUT, TKV.REPL.GET: a key's versions between replicas), ``hint``
(TKV.HINT: sloppy quorum's hints held for a down member), ``table``
(the table), ``wire`` (the bus's ``WireProtocol``).
"""
