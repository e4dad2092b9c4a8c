"""Networks of real gossiping nodes in one process, talking HTTP on 127.0.0.1.

Each node is a Tornado server with the registry routes, a small ``/health`` route and
``/metrics``, on a free port. The full node needs a database; membership does not.

NOTE: every node shares one event loop, so at 0.1 s per round these tests stay at or
below 15 nodes. On a 2-core machine 20 nodes still converged within 3 s, while 30 nodes
overloaded the loop: exchanges timed out and nodes declared each other dead.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.testing
import tornado.web

from seventweets.gossip import GossipConfig, Gossiper, JoinRejectedError, Member, Status
from seventweets.handlers.base import JsonHandler, NotFoundHandler
from seventweets.handlers.info import MetricsHandler
from seventweets.handlers.registry import (
    GossipHandler,
    RegistryHandler,
    RegistryMemberHandler,
)
from seventweets.metrics import NodeMetrics
from seventweets.netutil import LiteralAddressResolver

CONFIG = GossipConfig.fast(0.1)


class HealthHandler(JsonHandler):
    route = "/health"

    def get(self) -> None:
        self.write_json({"status": "ok", "name": self.settings["name"]})


class LaggingGossipHandler(GossipHandler):
    """Reply to gossip only after ``reply_delay`` seconds, like a busy process."""

    reply_delay: float

    async def post(self) -> None:  # type: ignore[override]
        await asyncio.sleep(self.reply_delay)
        super().post()


class LeaveLosingMemberHandler(RegistryMemberHandler):
    """Fail every leave announcement, as if each one were lost on the way."""

    def delete(self, name: str) -> None:
        raise tornado.web.HTTPError(503, "leave announcements are lost in this test")


def make_membership_app(
    gossiper: Gossiper,
    metrics: NodeMetrics,
    reply_delay: float = 0.0,
    lose_leaves: bool = False,
) -> tornado.web.Application:
    membership = {"gossiper": gossiper}
    member_handler = LeaveLosingMemberHandler if lose_leaves else RegistryMemberHandler
    gossip_route: tuple[Any, ...] = (r"/gossip/?", GossipHandler, membership)
    if reply_delay > 0:
        gossip_route = (
            r"/gossip/?",
            LaggingGossipHandler,
            {**membership, "reply_delay": reply_delay},
        )
    return tornado.web.Application(
        [
            (r"/registry/?", RegistryHandler, membership),
            (r"/registry/([^/]+)/?", member_handler, membership),
            gossip_route,
            (r"/health/?", HealthHandler),
            (r"/metrics/?", MetricsHandler),
        ],
        default_handler_class=NotFoundHandler,
        name=gossiper.name,
        metrics=metrics,
        log_function=lambda handler: None,
    )


class GossipNode:
    """One node: a gossiper behind an HTTP server on 127.0.0.1.

    ``transitions`` records every change of the node's table, oldest first.
    """

    def __init__(
        self,
        name: str,
        seeds: Iterable[str] = (),
        config: GossipConfig = CONFIG,
        secret: str | None = None,
        port: int | None = None,
        incarnation: int | None = None,
        reply_delay: float = 0.0,
        on_join_rejected: Callable[[str], None] | None = None,
        lose_leaves: bool = False,
    ) -> None:
        if port is None:
            sock, port = tornado.testing.bind_unused_port()
        else:
            sock = tornado.netutil.bind_sockets(
                port, "127.0.0.1", family=socket.AF_INET
            )[0]
        self.name = name
        self.port = port
        self.address = f"http://127.0.0.1:{port}"
        self.transitions: list[tuple[Member | None, Member | None]] = []
        self.metrics = NodeMetrics()
        self.gossiper = Gossiper(
            name=name,
            address=self.address,
            seeds=list(seeds),
            config=config,
            secret=secret,
            metrics=self.metrics,
            incarnation=incarnation,
            on_join_rejected=on_join_rejected,
            on_transition=lambda before, after: self.transitions.append(
                (before, after)
            ),
        )
        self.server = tornado.httpserver.HTTPServer(
            make_membership_app(self.gossiper, self.metrics, reply_delay, lose_leaves)
        )
        self.server.add_sockets([sock])
        self.running = True

    async def start(self) -> None:
        await self.gossiper.join()
        self.gossiper.start()

    async def crash(self) -> None:
        """Stop at once, without a leave: the port refuses connections afterwards."""
        self.gossiper.stop()
        await self._close()

    async def leave(self) -> None:
        await self.gossiper.leave()
        await self._close()

    async def _close(self) -> None:
        if self.running:
            self.running = False
            self.server.stop()
            await self.server.close_all_connections()

    def status_of(self, name: str) -> Status | None:
        member = self.gossiper.member(name)
        return member.status if member is not None else None

    def statuses_seen(self, name: str) -> set[Status]:
        """Return every status this node ever recorded for ``name``."""
        return {
            after.status
            for _, after in self.transitions
            if after and after.name == name
        }


def block(first: Iterable[GossipNode], second: Iterable[GossipNode]) -> None:
    """Cut all traffic between two groups of nodes, in both directions."""
    first, second = list(first), list(second)
    for node in first:
        node.gossiper.blocked_addresses.update(other.address for other in second)
    for node in second:
        node.gossiper.blocked_addresses.update(other.address for other in first)


def unblock(nodes: Iterable[GossipNode]) -> None:
    for node in nodes:
        node.gossiper.blocked_addresses.clear()


async def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.02
) -> float:
    """Wait until ``condition()`` is true and return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(poll)
    return time.monotonic() - started


def everyone_sees(
    observers: Iterable[GossipNode],
    subject: str,
    status: Status,
    address: str | None = None,
) -> Callable[[], bool]:
    observers = list(observers)

    def check() -> bool:
        for observer in observers:
            member = observer.gossiper.member(subject)
            if member is None or member.status is not status:
                return False
            if address is not None and member.address != address:
                return False
        return True

    return check


def full_view(nodes: list[GossipNode]) -> Callable[[], bool]:
    names = {node.name for node in nodes}

    def check() -> bool:
        for node in nodes:
            alive = {
                m.name for m in node.gossiper.members() if m.status is Status.ALIVE
            }
            if alive != names:
                return False
        return True

    return check


async def start_network(count: int, **node_options: Any) -> list[GossipNode]:
    """Start ``count`` nodes n0, n1, ..., all seeded at n0, and wait for full views."""
    seed = GossipNode("n0", **node_options)
    await seed.start()
    nodes = [seed]
    for index in range(1, count):
        node = GossipNode(f"n{index}", seeds=[seed.address], **node_options)
        await node.start()
        nodes.append(node)
    await wait_until(full_view(nodes), 10, "every node lists every node alive")
    return nodes


async def shut_down(nodes: Iterable[GossipNode]) -> None:
    for node in nodes:
        await node.crash()


async def hold(duration: float, check: Callable[[], Awaitable[None] | None]) -> None:
    """Run ``check`` every few milliseconds for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        result = check()
        if result is not None:
            await result
        await asyncio.sleep(0.02)


@pytest.mark.gen_test(timeout=30)
async def test_ten_nodes_converge_from_one_seed() -> None:
    """Ten nodes seeded at one node all list each other alive within a few rounds."""
    seed = GossipNode("n0")
    await seed.start()
    nodes = [seed] + [GossipNode(f"n{i}", seeds=[seed.address]) for i in range(1, 10)]

    for node in nodes[1:]:
        await node.start()
    took = await wait_until(full_view(nodes), 5, "every node lists every node alive")

    assert took < 3.0
    for node in nodes:
        assert [m.name for m in node.gossiper.members()] == sorted(
            n.name for n in nodes
        )
    await shut_down(nodes)


@pytest.mark.gen_test(timeout=30)
async def test_seed_not_needed_after_join() -> None:
    """Once joined, the nodes keep full views of each other without their seed."""
    nodes = await start_network(4)
    seed, others = nodes[0], nodes[1:]

    await seed.crash()
    await wait_until(everyone_sees(others, "n0", Status.DEAD), 5, "the seed is dead")
    late = GossipNode("late", seeds=[others[0].address])
    await late.start()
    await wait_until(full_view([*others, late]), 5, "the late node is known everywhere")

    assert all(late.status_of(n.name) is Status.ALIVE for n in others)
    await shut_down([*others, late])


@pytest.mark.gen_test(timeout=30)
async def test_leave_marks_left_everywhere_and_stays() -> None:
    """A leaving node is left everywhere at once and never alive again meanwhile."""
    nodes = await start_network(5)
    leaver, others = nodes[4], nodes[:4]

    started = time.monotonic()
    await leaver.leave()
    took = time.monotonic() - started
    await wait_until(
        everyone_sees(others, "n4", Status.LEFT), 2 * CONFIG.interval, "n4 left"
    )

    assert took < CONFIG.leave_timeout + 0.5

    def never_alive_again() -> None:
        for node in others:
            assert node.status_of("n4") is Status.LEFT

    await hold(20 * CONFIG.interval, never_alive_again)
    await shut_down(others)


@pytest.mark.gen_test(timeout=30)
async def test_leave_spreads_when_announcements_lost() -> None:
    """When every leave announcement fails, the leave still reaches every node by
    gossip, before anyone could take the silent node for dead."""
    nodes = await start_network(6, lose_leaves=True)
    leaver, others = nodes[5], nodes[:5]

    await leaver.leave()
    took = await wait_until(everyone_sees(others, "n5", Status.LEFT), 5, "n5 left")

    assert took < CONFIG.suspect_timeout
    for node in others:
        assert Status.DEAD not in node.statuses_seen("n5")
        assert Status.SUSPECT not in node.statuses_seen("n5")
    await shut_down(others)


@pytest.mark.gen_test(timeout=30)
async def test_leave_reaches_many_members_at_once() -> None:
    """A leave reaches more members than the client's default of 10 in one timeout."""
    nodes = await start_network(15)
    leaver, others = nodes[0], nodes[1:]
    for node in others:
        node.gossiper.stop()

    started = time.monotonic()
    await leaver.leave()
    took = time.monotonic() - started

    assert took < CONFIG.leave_timeout + 0.5
    assert everyone_sees(others, "n0", Status.LEFT)()
    await shut_down(others)


@pytest.mark.gen_test(timeout=30)
async def test_crash_detected_within_dead_timeout() -> None:
    """A crashed node is dead everywhere within the dead timeout plus a few rounds."""
    nodes = await start_network(6)
    victim, others = nodes[3], [n for n in nodes if n.name != "n3"]

    await victim.crash()
    took = await wait_until(everyone_sees(others, "n3", Status.DEAD), 10, "n3 is dead")

    assert took < CONFIG.dead_timeout + 6 * CONFIG.interval
    assert all(Status.SUSPECT in node.statuses_seen("n3") for node in others)
    await shut_down(others)


@pytest.mark.gen_test(timeout=30)
async def test_restart_same_port_after_crash() -> None:
    """A crashed node restarted on its port is alive everywhere again."""
    nodes = await start_network(5)
    victim, others = nodes[2], [n for n in nodes if n.name != "n2"]
    await victim.crash()
    await wait_until(everyone_sees(others, "n2", Status.DEAD), 10, "n2 is dead")

    restarted = GossipNode("n2", seeds=[others[0].address], port=victim.port)
    await restarted.start()
    await wait_until(everyone_sees(others, "n2", Status.ALIVE), 5, "n2 is alive again")

    assert (
        restarted.gossiper.table.me.incarnation > victim.gossiper.table.me.incarnation
    )
    await shut_down([*others, restarted])


@pytest.mark.gen_test(timeout=30)
async def test_restart_after_leave_on_new_port() -> None:
    """A node that left and restarts on another port is alive at its new address."""
    nodes = await start_network(5)
    leaver, others = nodes[1], [n for n in nodes if n.name != "n1"]
    await leaver.leave()
    await wait_until(everyone_sees(others, "n1", Status.LEFT), 2, "n1 left")

    restarted = GossipNode("n1", seeds=[others[0].address])
    await restarted.start()
    await wait_until(
        everyone_sees(others, "n1", Status.ALIVE, restarted.address), 5, "n1 is back"
    )

    def old_address_never_returns() -> None:
        for node in others:
            member = node.gossiper.member("n1")
            assert member is not None
            assert member.address == restarted.address

    await hold(10 * CONFIG.interval, old_address_never_returns)
    await shut_down([*others, restarted])


@pytest.mark.gen_test(timeout=40)
async def test_partition_heals_without_restart() -> None:
    """Two halves cut apart declare each other dead, then rejoin once traffic flows."""
    nodes = await start_network(6)
    left_side, right_side = nodes[:3], nodes[3:]

    block(left_side, right_side)
    await wait_until(
        lambda: (
            all(everyone_sees(left_side, n.name, Status.DEAD)() for n in right_side)
            and all(everyone_sees(right_side, n.name, Status.DEAD)() for n in left_side)
        ),
        10,
        "each side sees the other dead",
    )
    unblock(nodes)
    took = await wait_until(full_view(nodes), 15, "the partition healed")

    assert took < 10
    await shut_down(nodes)


@pytest.mark.gen_test(timeout=30)
async def test_slow_node_not_declared_dead() -> None:
    """A node whose rounds run three times slower and whose replies lag is never
    declared dead, and declares nobody dead itself."""
    nodes = await start_network(4)
    slow = GossipNode(
        "slow",
        seeds=[nodes[0].address],
        config=GossipConfig.fast(3 * CONFIG.interval),
        reply_delay=0.6 * CONFIG.exchange_timeout,
    )
    everyone = [*nodes, slow]

    await slow.start()
    await wait_until(full_view(everyone), 5, "the slow node is known everywhere")
    await asyncio.sleep(3 * CONFIG.dead_timeout)

    for node in nodes:
        assert Status.DEAD not in node.statuses_seen("slow")
        assert node.status_of("slow") is not None
    assert not any(
        after and after.status is Status.DEAD for _, after in slow.transitions
    )
    await shut_down(everyone)


@pytest.mark.gen_test(timeout=30)
async def test_stalled_node_comes_back_without_convicting() -> None:
    """A node stalled past the dead timeout is declared dead, and after resuming it is
    alive everywhere again without having declared anybody dead itself."""
    nodes = await start_network(5)
    stalled, others = nodes[4], nodes[:4]

    stalled.gossiper.stop()
    block([stalled], others)
    await wait_until(everyone_sees(others, "n4", Status.DEAD), 10, "n4 is dead")
    stalled.gossiper.start()
    # Its first rounds after the stall still reach nobody, so all it has is stale news.
    await asyncio.sleep(3 * CONFIG.interval)
    unblock(nodes)
    await wait_until(full_view(nodes), 5, "n4 is alive everywhere again")
    await asyncio.sleep(CONFIG.dead_timeout)

    assert not any(
        after and after.status is Status.DEAD for _, after in stalled.transitions
    )
    assert full_view(nodes)()
    await shut_down(nodes)


@pytest.mark.gen_test(timeout=30)
async def test_join_retries_until_seed_is_up() -> None:
    """A node whose seed is down keeps serving and joins once the seed starts."""
    placeholder, seed_port = tornado.testing.bind_unused_port()
    placeholder.close()
    joiner = GossipNode("joiner", seeds=[f"http://127.0.0.1:{seed_port}"])

    await joiner.start()
    joined_at_start = joiner.gossiper.joined
    await asyncio.sleep(3 * CONFIG.interval)
    seed = GossipNode("seed", port=seed_port)
    await seed.start()
    await wait_until(full_view([seed, joiner]), 5, "the joiner reached the late seed")

    assert joined_at_start is False
    assert joiner.gossiper.joined is True
    await shut_down([seed, joiner])


@pytest.mark.gen_test(timeout=30)
async def test_name_live_elsewhere_rejected() -> None:
    """A second node claiming a live node's name is rejected and changes nothing."""
    nodes = await start_network(3)
    original = nodes[0].gossiper.member("n2")

    impostor = GossipNode("n2", seeds=[nodes[0].address])
    with pytest.raises(JoinRejectedError, match="n2") as raised:
        await impostor.start()
    await asyncio.sleep(5 * CONFIG.interval)

    assert "\n" not in str(raised.value)
    assert "409" in str(raised.value)
    for node in nodes[:2]:
        member = node.gossiper.member("n2")
        assert member is not None
        assert member.address == nodes[2].address
        assert member.status is Status.ALIVE
    assert original is not None and original.address == nodes[2].address
    await shut_down([*nodes, impostor])


@pytest.mark.gen_test(timeout=30)
async def test_background_join_rejection_reported() -> None:
    """A join retried in the background that meets a live name is reported once and
    ends the retries."""
    nodes = await start_network(2)
    placeholder, late_port = tornado.testing.bind_unused_port()
    placeholder.close()
    reasons: list[str] = []
    impostor = GossipNode(
        "n1", seeds=[f"http://127.0.0.1:{late_port}"], on_join_rejected=reasons.append
    )

    await impostor.start()
    late = GossipNode("late", seeds=[nodes[0].address], port=late_port)
    await late.start()
    await wait_until(lambda: bool(reasons), 5, "the rejection is reported")
    await asyncio.sleep(5 * CONFIG.interval)

    assert len(reasons) == 1
    assert "409" in reasons[0]
    assert impostor.gossiper.joined is False
    member = late.gossiper.member("n1")
    assert member is not None and member.address == nodes[1].address
    await shut_down([*nodes, impostor, late])


@pytest.mark.gen_test(timeout=30)
async def test_signed_network_converges_and_rejects_others() -> None:
    """Nodes sharing a secret converge and leave; a node with another secret or none
    cannot join."""
    nodes = await start_network(3, secret="shared-secret")

    outsider = GossipNode("outsider", seeds=[nodes[0].address], secret="wrong")
    with pytest.raises(JoinRejectedError, match="401"):
        await outsider.start()
    unsigned = GossipNode("unsigned", seeds=[nodes[0].address])
    with pytest.raises(JoinRejectedError, match="401"):
        await unsigned.start()

    await nodes[2].leave()
    await wait_until(everyone_sees(nodes[:2], "n2", Status.LEFT), 1, "n2 left")

    for node in nodes:
        assert node.gossiper.member("outsider") is None
        assert node.gossiper.member("unsigned") is None
    await shut_down([*nodes, outsider, unsigned])


@pytest.mark.gen_test(timeout=30)
async def test_metrics_count_rounds_failures_members() -> None:
    """Metrics count rounds, failed exchanges and members by status."""
    nodes = await start_network(3)
    await nodes[2].crash()
    await wait_until(everyone_sees(nodes[:2], "n2", Status.DEAD), 10, "n2 is dead")

    text = nodes[0].metrics.render().decode()

    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["seventweets_gossip_rounds_total"] > 5
    assert samples["seventweets_gossip_exchange_failures_total"] >= 1
    assert samples['seventweets_members{status="alive"}'] == 2
    assert samples['seventweets_members{status="dead"}'] == 1
    assert samples['seventweets_members{status="left"}'] == 0
    await shut_down(nodes[:2])


@pytest.mark.gen_test
async def test_resolver_literals_and_names() -> None:
    """IP literals resolve to themselves and host names go through the system."""
    resolver = LiteralAddressResolver()

    ipv4 = await resolver.resolve("127.0.0.1", 8001)
    ipv6 = await resolver.resolve("::1", 8001)
    named = await resolver.resolve("localhost", 8001, socket.AF_INET)

    assert ipv4 == [(socket.AF_INET, ("127.0.0.1", 8001))]
    assert ipv6 == [(socket.AF_INET6, ("::1", 8001, 0, 0))]
    assert (socket.AF_INET, ("127.0.0.1", 8001)) in named
    with pytest.raises(OSError):
        await resolver.resolve("::1", 8001, socket.AF_INET)


@pytest.mark.gen_test(timeout=30)
async def test_unresponsive_peer_never_stalls_rounds() -> None:
    """A member that accepts connections but never replies costs each round at most
    the exchange timeout: rounds keep their pace and nobody else is suspected."""
    nodes = await start_network(5)
    # The kernel completes TCP handshakes into the backlog, but nothing ever reads.
    hole, hole_port = tornado.testing.bind_unused_port()
    hole.listen(128)
    hole_address = f"http://127.0.0.1:{hole_port}"
    client = tornado.httpclient.AsyncHTTPClient()
    join = {"name": "hole", "address": hole_address, "incarnation": 1}
    await client.fetch(
        nodes[0].address + "/registry",
        method="POST",
        body=json.dumps(join),
        headers={"Content-Type": "application/json"},
    )
    rounds_before = [node.metrics.gossip_rounds._value.get() for node in nodes]

    await asyncio.sleep(20 * CONFIG.interval)

    rounds = [
        node.metrics.gossip_rounds._value.get() - before
        for node, before in zip(nodes, rounds_before, strict=True)
    ]
    assert min(rounds) >= 14
    for node in nodes:
        for other in nodes:
            assert Status.SUSPECT not in node.statuses_seen(other.name)
            assert node.status_of(other.name) is Status.ALIVE
    assert nodes[0].status_of("hole") in (Status.SUSPECT, Status.DEAD)
    hole.close()
    await shut_down(nodes)


class RecordingGossipHandler(tornado.web.RequestHandler):
    """Reply to gossip with a fixed gzip body and keep each request's headers and body."""

    def initialize(self, requests: list[tornado.httputil.HTTPServerRequest]) -> None:
        self.requests = requests

    def post(self) -> None:
        self.requests.append(self.request)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Encoding", "gzip")
        self.finish(gzip.compress(json.dumps({"members": []}).encode()))


@pytest.mark.gen_test
async def test_exchange_bytes_counted_as_sent() -> None:
    """The gossiper requests gzip and counts request and reply bodies as sent."""
    requests: list[tornado.httputil.HTTPServerRequest] = []
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application(
            [(r"/gossip", RecordingGossipHandler, {"requests": requests})]
        )
    )
    server.add_sockets([sock])
    node = GossipNode("n0")
    reply_size = len(gzip.compress(json.dumps({"members": []}).encode()))

    exchanged = await node.gossiper._exchange(f"http://127.0.0.1:{port}")

    assert exchanged
    assert len(requests) == 1
    assert "gzip" in requests[0].headers.get("Accept-Encoding", "")
    assert node.metrics.gossip_sent_bytes._value.get() == len(requests[0].body)
    assert node.metrics.gossip_received_bytes._value.get() == reply_size
    server.stop()
    await shut_down([node])
