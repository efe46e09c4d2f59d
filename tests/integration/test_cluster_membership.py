"""Membership changes in one process (issue 11 item 4, steps 1 and 3):
TKV.RING.CHANGE makes a new ring epoch on one node and pushes it; every
member adopts it (a new member learns it from its first ping), links follow
the ring; PLAN changes nothing; a node never goes back to a lower epoch; a
restarted node starts from its saved ring, not its seeds."""

from __future__ import annotations

import trio

from trio_kv.cluster.handshake import admin_proof, new_nonce
from trio_kv.cluster.ring import Member
from trio_kv.cluster.ring_document import ring_hash
from trio_kv.cluster.ring_record import decode_ring, encode_ring
from trio_kv.protocol.replies import Error, SimpleString
from trio_kv.server.lifecycle import ServerAddresses

from .cluster_nodes import BusClient, free_cluster_port, node_hosts, seeds_of, start_node, wait_until

WAIT_SECONDS = 20
# How BusClient reads +OK.
OK_REPLY = SimpleString("OK")


def _agree(nodes: list[ServerAddresses], epoch: int) -> bool:
    rings = [node.cluster.node.view().ring for node in nodes]
    return all(ring.epoch == epoch for ring in rings) and len({ring_hash(ring) for ring in rings}) == 1


def _fields(reply: object) -> dict[bytes, object]:
    assert isinstance(reply, list), reply
    return dict(zip(reply[::2], reply[1::2]))


async def _lock_all(hosts: list[str], port: int, epoch: int, token: bytes) -> None:
    """TKV.RING.LOCK on every member, in address order (as the admin tool)."""
    for host in sorted(hosts):
        client = await BusClient.connect(host, port + 10000)
        assert await client.call(b"TKV.RING.LOCK", b"%d" % epoch, token, b"30") == OK_REPLY


async def test_add_then_remove_a_node_changes_every_members_ring() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(4)
            port = free_cluster_port(hosts)
            seeds = seeds_of(hosts[:3], port)
            nodes = [await start_node(nursery, host, port, seeds) for host in hosts[:3]]
            # The new node names itself and one member: refused until it is added.
            fourth = await start_node(nursery, hosts[3], port, seeds_of([hosts[0], hosts[3]], port))
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 3 for node in nodes))
            admin = await BusClient.connect(hosts[1], port + 10000)
            target = f"{hosts[3]}:{port}".encode()

            plan = _fields(await admin.call(b"TKV.RING.CHANGE", b"ADD", target, b"PLAN"))
            assert plan[b"epoch"] == 2 and plan[b"moved_partitions"] == 16 and plan[b"replica_moves"] == 48
            assert len(plan[b"changes"]) == 48  # type: ignore[arg-type]
            await trio.sleep(0.3)
            assert all(node.cluster.node.view().ring.epoch == 1 for node in nodes)  # a plan changes nothing

            # Without the lock on this node the change is refused.
            refused = await admin.call(b"TKV.RING.CHANGE", b"ADD", target, b"LOCKED", b"t1")
            assert isinstance(refused, Error) and refused.message.startswith("CHANGELOCKED"), refused
            await _lock_all(hosts[:3], port, 1, b"t1")
            added = _fields(await admin.call(b"TKV.RING.CHANGE", b"ADD", target, b"LOCKED", b"t1"))
            assert added[b"hash"] == plan[b"hash"]
            everyone = [*nodes, fourth]
            await wait_until(lambda: _agree(everyone, 2))
            assert ring_hash(fourth.cluster.node.view().ring).encode() == added[b"hash"]
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 4 for node in everyone))
            assert (await admin.call(b"TKV.RING.CHANGE", b"ADD", target, b"PLAN")) == Error(
                "ERR ring epoch 2 is a staged change under way: finish it first (trio-kv cluster finish)"
            )
            # Staged: reads and coordination stay with the old lists; the new
            # member is pending (written to) in the 48 lists it joins.
            staged_ring = nodes[0].cluster.node.view().ring
            fourth_member = Member(hosts[3], port)
            assert staged_ring.staged and staged_ring.preference_lists == nodes[0].cluster.node.previous_ring.preference_lists
            assert sum(staged_ring.pending(partition) == (fourth_member,) for partition in range(64)) == 48
            finished = _fields(await admin.call(b"TKV.RING.CHANGE", b"FINISH"))
            assert finished[b"epoch"] == 3 and finished[b"replica_moves"] == 0  # finishing copies nothing
            await wait_until(lambda: _agree(everyone, 3))
            final_ring = nodes[0].cluster.node.view().ring
            assert sum(chosen[0] == fourth_member for chosen in final_ring.preference_lists) == 16
            assert final_ring.preference_lists == staged_ring.next_lists
            assert isinstance(await admin.call(b"TKV.RING.CHANGE", b"FINISH"), Error)  # nothing left to finish

            # Remove it by node id, asked of another node.
            other = await BusClient.connect(hosts[2], port + 10000)
            await _lock_all(hosts, port, 3, b"t2")
            removed = _fields(await other.call(b"TKV.RING.CHANGE", b"REMOVE", fourth.cluster.node.node_id.encode(),
                                               b"LOCKED", b"t2"))
            assert removed[b"epoch"] == 4 and removed[b"replica_moves"] == 48
            await wait_until(lambda: _agree(everyone, 4))
            assert _fields(await other.call(b"TKV.RING.CHANGE", b"FINISH"))[b"epoch"] == 5
            await wait_until(lambda: _agree(everyone, 5))
            ring = nodes[0].cluster.node.view().ring
            assert Member(hosts[3], port) not in ring.members and len(ring.members) == 3
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 3 for node in nodes))
            assert all(len(node.cluster.node.link_statistics()) == 2 for node in nodes)
            for node in everyone:
                node.shutdown.set()


async def test_a_node_fetches_a_higher_epoch_and_never_adopts_a_lower_one() -> None:
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(2)
            port = free_cluster_port(hosts)
            nodes = [await start_node(nursery, host, port, seeds_of(hosts, port)) for host in hosts]
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 2 for node in nodes))
            node = nodes[0].cluster.node
            newer = type(node.ring)(epoch=5, members=node.ring.members, partition_count=node.ring.partition_count,
                                    preference_lists=tuple(reversed(node.ring.preference_lists)))
            assert await node.adopt(newer)
            # The other node sees epoch 5 in its pings and fetches it.
            await wait_until(lambda: _agree(nodes, 5))
            older = type(node.ring)(epoch=4, members=node.ring.members, partition_count=node.ring.partition_count,
                                    preference_lists=node.ring.preference_lists)
            assert not await node.adopt(older)
            assert node.view().ring == newer
            client = await BusClient.connect(hosts[1], port + 10000)
            record = await client.call(b"TKV.RING", b"RECORD")
            assert isinstance(record, bytes) and decode_ring(record) == newer
            # A push needs the handshake: a stray client is refused and closed.
            reply = await client.call(b"TKV.RING.PUSH", encode_ring(older))
            assert isinstance(reply, Error) and "needs the bus handshake" in reply.message
            assert await client.closed_by_peer()
            assert node.view().ring == newer
            for each in nodes:
                each.shutdown.set()


async def test_a_restarted_node_starts_from_its_saved_ring(tmp_path) -> None:
    with trio.fail_after(WAIT_SECONDS * 2):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(3)
            port = free_cluster_port(hosts)
            seeds = seeds_of(hosts[:2], port)

            async def start(index: int, node_seeds: tuple[str, ...]) -> ServerAddresses:
                return await start_node(nursery, hosts[index], port, node_seeds, appendonly=True,
                                        data_dir=str(tmp_path / f"node{index}"))

            nodes = [await start(0, seeds), await start(1, seeds)]
            third = await start(2, seeds_of([hosts[0], hosts[2]], port))
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 2 for node in nodes))
            admin = await BusClient.connect(hosts[0], port + 10000)
            await _lock_all(hosts[:2], port, 1, b"t")
            await admin.call(b"TKV.RING.CHANGE", b"ADD", f"{hosts[2]}:{port}".encode(), b"LOCKED", b"t")
            everyone = [*nodes, third]
            await wait_until(lambda: _agree(everyone, 2))
            assert (tmp_path / "node1" / "cluster-ring.json").exists()
            nodes[1].shutdown.set()
            await wait_until(lambda: len(nodes[0].cluster.node.view().up) == 2)
            # Restarted with its old seeds (two members): it comes back at epoch 2, three members.
            restarted = await start(1, seeds)
            assert restarted.cluster.node.view().ring.epoch == 2
            assert len(restarted.cluster.node.view().ring.members) == 3
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 3 for node in [nodes[0], restarted, third]))
            for node in [nodes[0], restarted, third]:
                node.shutdown.set()


async def test_an_admin_tool_proves_the_secret_and_runs_admin_commands_only() -> None:
    secret = "admin secret"
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(2)
            port = free_cluster_port(hosts)
            nodes = [await start_node(nursery, host, port, seeds_of(hosts, port), cluster_secret=secret)
                     for host in hosts]
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 2 for node in nodes))
            target = b"127.0.0.1:7777"
            # Unproven: refused and closed.
            bare = await BusClient.connect(hosts[0], port + 10000)
            reply = await bare.call(b"TKV.RING.CHANGE", b"ADD", target, b"PLAN")
            assert isinstance(reply, Error) and "needs the bus handshake" in reply.message
            assert await bare.closed_by_peer()
            # A wrong proof: refused and closed.
            wrong = await BusClient.connect(hosts[0], port + 10000)
            nonce = await wrong.call(b"TKV.ADMIN.HELLO")
            assert isinstance(nonce, bytes)
            mine = new_nonce()
            reply = await wrong.call(b"TKV.ADMIN.AUTH", mine.encode(),
                                     admin_proof("wrong", nonce.decode(), mine).encode())
            assert isinstance(reply, Error) and "wrong cluster secret" in reply.message
            assert await wrong.closed_by_peer()
            # The right proof: admin and read commands, never a peer's.
            admin = await BusClient.connect(hosts[0], port + 10000)
            nonce = await admin.call(b"TKV.ADMIN.HELLO")
            assert isinstance(nonce, bytes)
            assert await admin.call(b"TKV.ADMIN.AUTH", mine.encode(),
                                    admin_proof(secret, nonce.decode(), mine).encode()) == OK_REPLY
            plan = _fields(await admin.call(b"TKV.RING.CHANGE", b"ADD", target, b"PLAN"))
            assert plan[b"epoch"] == 2
            assert await admin.call(b"TKV.RING.LOCK", b"1", b"t", b"30") == OK_REPLY
            assert await admin.call(b"TKV.RING.UNLOCK", b"t") == 1
            reply = await admin.call(b"TKV.RING.PUSH", encode_ring(nodes[0].cluster.node.ring))
            assert isinstance(reply, Error) and "needs the bus handshake" in reply.message
            for node in nodes:
                node.shutdown.set()


async def test_a_member_locked_by_one_change_refuses_another_changes_ring() -> None:
    """Two admins at once, in one process: the change that locked the lowest
    member first wins; the other is refused there, and even a ring the
    other change made on a node it had locked is not adopted by the members
    the first change holds."""
    with trio.fail_after(WAIT_SECONDS):
        async with trio.open_nursery() as nursery:
            hosts = node_hosts(3)
            port = free_cluster_port(hosts)
            nodes = [await start_node(nursery, host, port, seeds_of(hosts, port)) for host in hosts]
            await wait_until(lambda: all(len(node.cluster.node.view().up) == 3 for node in nodes))
            ordered = sorted(hosts, key=lambda host: Member(host, port))
            first = await BusClient.connect(ordered[0], port + 10000)
            assert await first.call(b"TKV.RING.LOCK", b"1", b"winner", b"30") == OK_REPLY
            refused = await first.call(b"TKV.RING.LOCK", b"1", b"loser", b"30")
            assert isinstance(refused, Error) and refused.message.startswith("CHANGELOCKED another ring change")
            # Suppose the loser had locked the last member alone and changed the ring there.
            last = await BusClient.connect(ordered[2], port + 10000)
            assert await last.call(b"TKV.RING.LOCK", b"1", b"loser", b"30") == OK_REPLY
            lost = await last.call(b"TKV.RING.CHANGE", b"REMOVE", f"{ordered[1]}:{port}".encode(), b"LOCKED", b"loser")
            assert _fields(lost)[b"epoch"] == 2
            by_host = {node.cluster.node.myself.host: node for node in nodes}
            await wait_until(lambda: by_host[ordered[2]].cluster.node.ring.epoch == 2)
            await trio.sleep(1.5)  # pushes and pings: the locked member still refuses it
            assert by_host[ordered[0]].cluster.node.ring.epoch == 1
            for node in nodes:
                node.shutdown.set()
