"""A deterministic simulator of a gossip network: real member tables, fake time.

Every simulated node owns a real ``MemberTable`` with the real merge rules and timers.
The simulator replaces only what ``Gossiper`` does with sockets and Tornado: it runs each
node's rounds on a simulated clock, delivers push-pull exchanges, joins and leave
announcements through an in-memory network, and injects faults. All randomness comes
from one seeded ``random.Random``, so a run is repeated exactly by its seed.

The network model follows the HTTP design of the gossiper:

- an exchange is one request carrying the sender's table and one response carrying the
  receiver's table. The receiver merges the request whenever it reads it, and the sender
  merges the response only if it arrives within ``exchange_timeout``;
- a lost exchange (injected loss, a partition, a killed receiver) merges nothing, as the
  test-only drop rule of the real node does;
- a paused node (SIGSTOP) runs no timer and reads nothing until it resumes, then runs
  one late round and reads everything that queued up meanwhile;
- a starved node runs its timers on time but reads every message late.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import heapq
import itertools
import json
import logging
import random
from collections.abc import Callable
from typing import Any

from seventweets.errors import NotFoundError
from seventweets.gossip.config import GossipConfig
from seventweets.gossip.members import (
    JoinRequest,
    Member,
    Status,
    is_view_change,
    members_to_json,
)
from seventweets.gossip.table import MemberTable

# Seconds a message spends between two nodes on a quiet loopback host, drawn uniformly.
DEFAULT_LATENCY = (0.001, 0.005)


@dataclasses.dataclass(frozen=True)
class ViewChange:
    """One change of one node's view of a member: added, dropped, or a new status,
    incarnation or address. ``status`` is None when the entry was dropped."""

    time: float
    observer: str
    observer_process: int
    subject: str
    status: Status | None
    previous_status: Status | None
    incarnation: int | None
    address: str | None


class SimNode:
    """One simulated node process: a member table and the state of its process."""

    def __init__(
        self,
        network: SimNetwork,
        process: int,
        name: str,
        address: str,
        incarnation: int,
        seeds: list[str],
    ) -> None:
        self.network = network
        self.process = process
        self.name = name
        self.address = address
        self.seeds = [seed for seed in seeds if seed != address]
        self.first_incarnation = incarnation
        self.table = MemberTable(
            name,
            address,
            incarnation,
            network.config,
            network.clock,
            on_transition=self._record,
        )
        self.running = True
        self.paused = False
        self.joined = not self.seeds
        # Seconds added to the reading of every message while the node is starved.
        self.read_delay: tuple[float, float] = (0.0, 0.0)
        # Seconds each round fires late, drawn uniformly, as on a saturated CPU.
        self.timer_delay: tuple[float, float] = (0.0, 0.0)
        self._queued: list[Callable[[], None]] = []
        self._round_due = False
        self._next_round = 0.0
        self._join_backoff = network.config.join_backoff_initial

    def _record(self, previous: Member | None, current: Member | None) -> None:
        if not is_view_change(previous, current):
            return
        self.network.record_change(self, previous, current)

    # -- the process -------------------------------------------------------------

    def start(self) -> None:
        """Join through the seeds, then run a round every interval, as the node does."""
        if self.seeds:
            self._try_join()
        self._next_round = self.network.now + self._period()
        self.network.schedule_at(self._next_round, self._timer_fired)

    def _period(self) -> float:
        config = self.network.config
        return config.interval * (1 + config.jitter * (self.network.rng.random() - 0.5))

    def _timer_fired(self) -> None:
        if not self.running:
            return
        if self.paused:
            self._round_due = True
            return
        self._next_round += self._period()
        # A round fires late on a busy CPU, but the schedule itself does not drift.
        low, high = self.timer_delay
        late = self.network.rng.uniform(low, high) if high > 0 else 0.0
        self.network.schedule_at(
            max(self._next_round, self.network.now + late), self._timer_fired
        )
        if late > 0:
            self.network.schedule(late, self._run_round)
        else:
            self._run_round()

    def _run_round(self) -> None:
        if not self.running or self.paused:
            return
        self.table.tick()
        self.network.rounds += 1
        addresses = [
            member.address for member in self.table.choose_peers(self.network.rng)
        ]
        if self.joined and not self.table.live_peers():
            addresses += [seed for seed in self.seeds if seed not in addresses]
        for address in addresses:
            self.network.exchange(self, address)

    def deliver(self, action: Callable[[], None], delay: float) -> None:
        """Read a message ``delay`` seconds from now, later if starved or paused."""
        low, high = self.read_delay
        if high > 0:
            delay += self.network.rng.uniform(low, high)
        self.network.schedule(delay, lambda: self._read(action))

    def _read(self, action: Callable[[], None]) -> None:
        if not self.running:
            return
        if self.paused:
            self._queued.append(action)
            return
        action()

    def pause(self) -> None:
        """Stop the process as SIGSTOP does."""
        self.paused = True

    def resume(self) -> None:
        """Continue the process: one late round, then every message that queued up."""
        self.paused = False
        if self._round_due:
            self._round_due = False
            self._next_round = self.network.now + self._period()
            self.network.schedule_at(self._next_round, self._timer_fired)
            self._run_round()
        queued, self._queued = self._queued, []
        for action in queued:
            action()

    def kill(self) -> None:
        """End the process at once, as SIGKILL does."""
        self.running = False
        self.network.unregister(self)

    def terminate(self) -> None:
        """Announce the leave to every live member, then end, as SIGTERM does."""
        if not self.running:
            return
        final = self.table.start_leaving()
        for peer in self.table.live_peers():
            self.network.announce_leave(self, peer.address, final)
        # Gossiper.leave also pushes the final table to one round of partners.
        for peer in self.table.choose_peers(self.network.rng):
            if peer.status.is_live:
                self.network.exchange(self, peer.address)
        self.kill()

    # -- joining -----------------------------------------------------------------

    def _try_join(self) -> None:
        for seed in self.seeds:
            if self.network.join(self, seed):
                self.joined = True
                return
        delay = self._join_backoff * (0.5 + self.network.rng.random())
        self._join_backoff = min(
            self._join_backoff * 2, self.network.config.join_backoff_max
        )
        self.network.schedule(delay, self._retry_join)

    def _retry_join(self) -> None:
        if self.running and not self.joined and not self.paused:
            self._try_join()
        elif self.running and self.paused:
            self.network.schedule(self.network.config.interval, self._retry_join)


class SimNetwork:
    """Simulated time, an event queue, an in-memory network and the nodes on it."""

    def __init__(
        self,
        config: GossipConfig,
        seed: int,
        *,
        latency: tuple[float, float] = DEFAULT_LATENCY,
    ) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.latency = latency
        # Probability that an exchange, join or leave announcement is lost at the sender.
        self.loss = 0.0
        # When set, only nodes whose names are in the same group can reach each other.
        self.groups: list[set[str]] | None = None
        # When set, leave announcements are lost while gossip still flows.
        self.drop_leave_announcements = False
        self.nodes: list[SimNode] = []
        self.changes: list[ViewChange] = []
        self.rounds = 0
        self.exchanges = 0
        self.failed_exchanges = 0
        # When true, exchanges count their JSON bodies into ``body_bytes``, and the
        # same bodies compressed with gzip into ``gzip_body_bytes`` (slower).
        self.count_bytes = False
        self.body_bytes = 0
        self.gzip_body_bytes = 0
        self._by_address: dict[str, SimNode] = {}
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._processes = itertools.count(1)
        self._listeners: list[Callable[[ViewChange], None]] = []
        # Merging an entry into a table that contains that very object changes nothing,
        # so such entries are left out of each merge to save time. The table's merge()
        # still runs on every exchange, with the remaining entries.
        self._skip_identical = True

    def clock(self) -> float:
        return self.now

    # -- events ------------------------------------------------------------------

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        self.schedule_at(self.now + delay, action)

    def schedule_at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), action))

    def run_until(self, when: float, stop: Callable[[], bool] | None = None) -> bool:
        """Process events up to time ``when``; return True if ``stop`` became true."""
        while self._queue and self._queue[0][0] <= when:
            time, _, action = heapq.heappop(self._queue)
            self.now = time
            action()
            if stop is not None and stop():
                return True
        self.now = max(self.now, when)
        return False

    def add_listener(self, listener: Callable[[ViewChange], None]) -> None:
        self._listeners.append(listener)

    def record_change(
        self, node: SimNode, previous: Member | None, current: Member | None
    ) -> None:
        entry = current if current is not None else previous
        assert entry is not None
        change = ViewChange(
            time=self.now,
            observer=node.name,
            observer_process=node.process,
            subject=entry.name,
            status=current.status if current is not None else None,
            previous_status=previous.status if previous is not None else None,
            incarnation=current.incarnation if current is not None else None,
            address=current.address if current is not None else None,
        )
        self.changes.append(change)
        for listener in self._listeners:
            listener(change)

    # -- nodes -------------------------------------------------------------------

    def start_node(
        self, name: str, address: str, seeds: list[str], incarnation: int | None = None
    ) -> SimNode:
        """Start a node process; a restarted name gets a higher incarnation, as a
        start time in milliseconds does."""
        if address in self._by_address:
            raise ValueError(
                f"address {address} is in use by {self._by_address[address].name}"
            )
        if incarnation is None:
            incarnation = 1_000_000 + int(self.now * 1000)
        node = SimNode(self, next(self._processes), name, address, incarnation, seeds)
        self.nodes.append(node)
        self._by_address[address] = node
        node.start()
        return node

    def unregister(self, node: SimNode) -> None:
        if self._by_address.get(node.address) is node:
            del self._by_address[node.address]

    def running_nodes(self) -> list[SimNode]:
        return [node for node in self.nodes if node.running]

    def node_at(self, address: str) -> SimNode | None:
        return self._by_address.get(address)

    # -- messages ----------------------------------------------------------------

    def _reachable(self, sender: SimNode, address: str) -> SimNode | None:
        """Return the node that a request from ``sender`` reaches, or None if it is lost."""
        receiver = self._by_address.get(address)
        if receiver is None or not receiver.running:
            return None
        if self.groups is not None and not any(
            sender.name in group and receiver.name in group for group in self.groups
        ):
            return None
        if self.loss and self.rng.random() < self.loss:
            return None
        return receiver

    def _latency(self) -> float:
        low, high = self.latency
        return self.rng.uniform(low, high)

    def exchange(self, sender: SimNode, address: str) -> None:
        """Send one push-pull exchange from ``sender`` to the node at ``address``."""
        self.exchanges += 1
        receiver = self._reachable(sender, address)
        if receiver is None:
            self.failed_exchanges += 1
            return
        sent_at = self.now
        pushed = sender.table.members()
        if self.count_bytes:
            self._count_body({"from": sender.name, "members": pushed})

        def answer() -> None:
            self._merge(receiver, pushed)
            pulled = receiver.table.members()
            if self.count_bytes:
                self._count_body({"members": pulled})
            sender.deliver(lambda: receive(pulled), self._latency())

        def receive(pulled: list[Member]) -> None:
            if self.now - sent_at > self.config.exchange_timeout:
                self.failed_exchanges += 1
                return
            self._merge(sender, pulled)

        receiver.deliver(answer, self._latency())

    def _count_body(self, body: dict[str, Any]) -> None:
        document = {**body, "members": members_to_json(body["members"])}
        # Compact separators, as the gossiper sends.
        encoded = json.dumps(document, separators=(",", ":")).encode()
        self.body_bytes += len(encoded)
        self.gzip_body_bytes += len(gzip.compress(encoded))

    def _merge(self, node: SimNode, received: list[Member]) -> None:
        if not node.running:
            return
        if self._skip_identical:
            table = node.table
            received = [
                entry for entry in received if table.member(entry.name) is not entry
            ]
        node.table.merge(received)

    def join(self, joiner: SimNode, seed: str) -> bool:
        """Send a join request and merge the reply at once; return whether it succeeded.

        Joins are handled in zero time here: they are rare, and the gossiper waits for
        the reply before it starts gossiping anyway.
        """
        receiver = self._reachable(joiner, seed)
        if receiver is None or receiver.paused:
            return False
        request = JoinRequest(joiner.name, joiner.address, joiner.table.me.incarnation)
        conflict = receiver.table.join_conflict(request)
        if conflict is not None:
            holder = self._by_address.get(conflict.address)
            if conflict.name == receiver.name or (
                holder is not None and holder.running and holder.name == conflict.name
            ):
                joiner.kill()
                return False
        members = receiver.table.apply_join(request)
        self._merge(joiner, members)
        return True

    def announce_leave(self, leaver: SimNode, address: str, final: Member) -> None:
        if self.drop_leave_announcements:
            return
        receiver = self._reachable(leaver, address)
        if receiver is None:
            return

        def apply() -> None:
            # A member that never heard of the leaver has nothing to mark.
            with contextlib.suppress(NotFoundError):
                receiver.table.apply_leave(leaver.name, final.version)

        receiver.deliver(apply, self._latency())


def quiet_logging() -> None:
    """Silence the tables' log lines, which a simulator produces by the million."""
    logging.getLogger("seventweets.gossip").setLevel(logging.CRITICAL)
