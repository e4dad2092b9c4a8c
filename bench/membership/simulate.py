"""Membership goals in the deterministic simulator, over many seeds.

Each scenario starts a simulated network whose nodes run the real ``MemberTable``
(``seventweets.gossip.simulator``) and injects one fault. It returns the figure its goal
is about, in rounds of the gossip interval, and the false deaths it saw. A false death is
a ``dead`` entry written about a member whose process was still running.

Run from the repository root:

    python -m bench.membership.simulate --nodes 10 50 --seeds 200
    python -m bench.membership.simulate --scenario crash --nodes 50 --replay 17

The first prints p50, p99 and max per scenario and size, and lists the seeds that missed
their target. The second runs one seed again and prints its view changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

from seventweets.gossip.config import GossipConfig
from seventweets.gossip.members import Status
from seventweets.gossip.simulator import SimNetwork, SimNode, ViewChange, quiet_logging

# Seconds over which the nodes of a network start, as spawning 50 processes takes
# about 2 s on the 2-core benchmark machine.
START_SPREAD = 2.0
# Rounds the network runs after bootstrap before a fault, so that views are full.
SETTLE_ROUNDS = 10
# Rounds of the false-death soaks. 200 seeds of 60 rounds at N = 50 are 167 hours of
# simulated node time per scenario, 20 times one 10-minute run of 50 nodes.
SOAK_ROUNDS = 60


@dataclasses.dataclass
class Outcome:
    """The figures that one seed of one scenario measured."""

    # The goal's figure, in rounds unless the scenario's unit differs; None when the
    # event never happened before the scenario's deadline.
    value: float | None
    false_deaths: int = 0
    false_suspicions: int = 0
    # Count of what the goal forbids besides false deaths (a member back from the dead,
    # an old address seen again); 0 when nothing happened.
    violations: int = 0


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    goal: str
    target: float | None
    unit: str
    run: Callable[[GossipConfig, int, int], Outcome]


def address_of(index: int) -> str:
    return f"http://127.0.0.1:{20000 + index}"


def name_of(index: int) -> str:
    return f"n{index:03d}"


# The network of the last scenario started, for replay.
_last_network: list[SimNetwork] = []


# -- measuring -------------------------------------------------------------------------


class Watch:
    """Track false deaths and suspicions while a scenario runs, and each node's count of
    live members, so that conditions are checked on changes instead of by scanning."""

    def __init__(self, network: SimNetwork) -> None:
        self.network = network
        self.false_deaths = 0
        self.false_suspicions = 0
        # Names whose death is the point of the scenario at the moment.
        self.expected_deaths: set[str] = set()
        self.live_counts: dict[int, int] = {}
        self._pending: dict[int, Callable[[SimNode], bool]] = {}
        self._reached: dict[int, float] = {}
        network.add_listener(self._on_change)

    def _on_change(self, change: ViewChange) -> None:
        was_live = change.previous_status is not None and change.previous_status.is_live
        is_live = change.status is not None and change.status.is_live
        process = change.observer_process
        self.live_counts[process] = (
            self.live_counts.get(process, 0) + is_live - was_live
        )
        if change.status in (Status.DEAD, Status.SUSPECT) and self._subject_running(
            change
        ):
            if change.status is Status.DEAD:
                self.false_deaths += 1
            else:
                self.false_suspicions += 1
        condition = self._pending.get(process)
        if condition is not None:
            node = self._node(process)
            if condition(node):
                self._reached[process] = self.network.now
                del self._pending[process]

    def _subject_running(self, change: ViewChange) -> bool:
        if change.subject in self.expected_deaths:
            return False
        for node in reversed(self.network.nodes):
            if node.name == change.subject:
                return (
                    node.running
                    and change.incarnation is not None
                    and change.incarnation >= node.first_incarnation
                )
        return False

    def _node(self, process: int) -> SimNode:
        for node in self.network.nodes:
            if node.process == process:
                return node
        raise KeyError(process)

    def live_count(self, node: SimNode) -> int:
        """Return how many members other than itself ``node`` lists as live."""
        return self.live_counts.get(node.process, 0)

    def wait_all(
        self,
        condition: Callable[[SimNode], bool],
        deadline: float,
        nodes: list[SimNode] | None = None,
    ) -> float | None:
        """Run until ``condition`` has held at every running node (or ``nodes``) once;
        return that time, or None at ``deadline``. Conditions are checked when the node's
        view changes, so they must depend only on its view."""
        watched = nodes if nodes is not None else self.network.running_nodes()
        self._pending = {
            node.process: condition for node in watched if not condition(node)
        }
        self._reached = {}
        start = self.network.now
        done = self.network.run_until(deadline, stop=lambda: not self._pending)
        if not self._pending:
            return max(self._reached.values(), default=start)
        # A node that ended meanwhile is not waited for.
        self._pending = {
            process: condition
            for process, condition in self._pending.items()
            if self._node(process).running
        }
        if not done and self._pending:
            return None
        return max(self._reached.values(), default=start)

    def outcome(self, value: float | None, violations: int = 0) -> Outcome:
        return Outcome(value, self.false_deaths, self.false_suspicions, violations)


def rounds(network: SimNetwork, seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return round(seconds / network.config.interval, 2)


def status_of(node: SimNode, name: str) -> Status | None:
    member = node.table.member(name)
    return member.status if member is not None else None


# -- building networks -----------------------------------------------------------------


def start_network(
    config: GossipConfig,
    seed: int,
    size: int,
    *,
    loss: float = 0.0,
    seed_starts: bool = True,
) -> tuple[SimNetwork, Watch, float]:
    """Start ``size`` nodes that all join through node 0, over ``START_SPREAD`` seconds;
    return the network, its watch, and the time the last node started."""
    quiet_logging()
    network = SimNetwork(config, seed)
    _last_network[:] = [network]
    network.loss = loss
    watch = Watch(network)
    seeds = [address_of(0)]
    starts = sorted(network.rng.uniform(0, START_SPREAD) for _ in range(size - 1))
    if seed_starts:
        network.start_node(name_of(0), address_of(0), [])
    for index, start in enumerate(starts, start=1):
        network.schedule_at(
            start,
            lambda index=index: network.start_node(
                name_of(index), address_of(index), seeds
            ),
        )
    last_start = starts[-1] if starts else 0.0
    network.run_until(last_start)
    return network, watch, last_start


def full_view(watch: Watch, size: int) -> Callable[[SimNode], bool]:
    return lambda node: watch.live_count(node) == size - 1


def settled_network(
    config: GossipConfig, seed: int, size: int
) -> tuple[SimNetwork, Watch]:
    network, watch, last_start = start_network(config, seed, size)
    network.run_until(last_start + SETTLE_ROUNDS * config.interval)
    return network, watch


def pick_victim(network: SimNetwork) -> SimNode:
    """Choose a running node other than the seed, node 0."""
    return network.rng.choice(network.running_nodes()[1:])


# -- scenarios -------------------------------------------------------------------------


def bootstrap(config: GossipConfig, seed: int, size: int, loss: float = 0.0) -> Outcome:
    network, watch, last_start = start_network(config, seed, size, loss=loss)
    reached = watch.wait_all(full_view(watch, size), last_start + 60 * config.interval)
    return watch.outcome(
        rounds(network, None if reached is None else reached - last_start)
    )


def bootstrap_with_loss(config: GossipConfig, seed: int, size: int) -> Outcome:
    return bootstrap(config, seed, size, loss=0.1)


def leave(
    config: GossipConfig, seed: int, size: int, drop_announcements: bool = False
) -> Outcome:
    network, watch = settled_network(config, seed, size)
    leaver = pick_victim(network)
    watch.expected_deaths.add(leaver.name)
    network.drop_leave_announcements = drop_announcements
    left_at = network.now

    leaver.terminate()
    reached = watch.wait_all(
        lambda node: status_of(node, leaver.name) in (Status.LEFT, None),
        left_at + 30 * config.interval,
    )
    # Watch for two suspicion windows whether any view lists the leaver as live again.
    network.run_until(left_at + 2 * config.dead_rounds * config.interval)
    back = sum(
        1
        for change in network.changes
        if change.time > left_at
        and change.subject == leaver.name
        and change.status is not None
        and change.status.is_live
        and (change.previous_status is None or change.previous_status.is_tombstone)
    )
    return watch.outcome(
        rounds(network, None if reached is None else reached - left_at), back
    )


def leave_gossip_only(config: GossipConfig, seed: int, size: int) -> Outcome:
    return leave(config, seed, size, drop_announcements=True)


def crash(
    config: GossipConfig, seed: int, size: int, victim_index: int | None = None
) -> Outcome:
    network, watch = settled_network(config, seed, size)
    victim = (
        network.nodes[victim_index]
        if victim_index is not None
        else pick_victim(network)
    )
    watch.expected_deaths.add(victim.name)
    killed_at = network.now

    victim.kill()
    reached = watch.wait_all(
        lambda node: status_of(node, victim.name) is Status.DEAD,
        killed_at + 40 * config.interval,
    )
    return watch.outcome(
        rounds(network, None if reached is None else reached - killed_at)
    )


def seed_crash(config: GossipConfig, seed: int, size: int) -> Outcome:
    return crash(config, seed, size, victim_index=0)


def soak(
    config: GossipConfig, seed: int, size: int, fault: Callable[[SimNetwork], None]
) -> Outcome:
    """Run ``SOAK_ROUNDS`` rounds under ``fault`` and count false deaths. The value is
    the count itself, so the target is 0."""
    network, watch = settled_network(config, seed, size)
    watch.false_deaths = watch.false_suspicions = 0

    fault(network)
    network.run_until(network.now + SOAK_ROUNDS * config.interval)
    return watch.outcome(float(watch.false_deaths))


def with_loss(network: SimNetwork) -> None:
    network.loss = 0.1


def with_busy_cpu(network: SimNetwork) -> None:
    # NOTE: a model, not a measurement: on 2 saturated cores a node's rounds fire up to
    # half an interval late and it reads each message up to 0.3 s late.
    for node in network.running_nodes():
        node.timer_delay = (0.0, 0.5 * network.config.interval)
        node.read_delay = (0.0, 0.3)


def with_periodic_stall(network: SimNetwork) -> None:
    """Pause one node for 3 s every 30 s, as SIGSTOP and SIGCONT do."""
    node = pick_victim(network)
    start = network.now
    for offset in range(0, SOAK_ROUNDS, 30):
        network.schedule_at(start + offset + 10, node.pause)
        network.schedule_at(start + offset + 13, node.resume)


def with_starved_node(network: SimNetwork) -> None:
    """Make one node read every message 0.5-2.5 s late while its timers run on time,
    with 1 % loss: the starved-node case of the Lifeguard simulations."""
    network.loss = 0.01
    pick_victim(network).read_delay = (0.5, 2.5)


def soak_loss(config: GossipConfig, seed: int, size: int) -> Outcome:
    return soak(config, seed, size, with_loss)


def soak_busy(config: GossipConfig, seed: int, size: int) -> Outcome:
    return soak(config, seed, size, with_busy_cpu)


def soak_stall(config: GossipConfig, seed: int, size: int) -> Outcome:
    return soak(config, seed, size, with_periodic_stall)


def soak_starved(config: GossipConfig, seed: int, size: int) -> Outcome:
    return soak(config, seed, size, with_starved_node)


def long_stall(config: GossipConfig, seed: int, size: int) -> Outcome:
    """Pause one node for 15 s. The value is the rounds from resuming until every view
    lists it alive again. A second death within two dead timeouts is a violation."""
    network, watch = settled_network(config, seed, size)
    node = pick_victim(network)
    watch.expected_deaths.add(node.name)
    paused_at = network.now

    node.pause()
    network.run_until(paused_at + 15 * config.interval)
    all_dead = all(
        status_of(other, node.name) is Status.DEAD
        for other in network.running_nodes()
        if other is not node
    )
    resumed_at = network.now
    node.resume()
    reached = watch.wait_all(
        lambda other: status_of(other, node.name) in (Status.ALIVE, Status.SUSPECT),
        resumed_at + 30 * config.interval,
    )
    watch.expected_deaths.discard(node.name)
    end = (reached or resumed_at) + 2 * config.dead_timeout
    network.run_until(end)
    deaths_again = sum(
        1
        for change in network.changes
        if change.time > (reached or resumed_at)
        and change.subject == node.name
        and change.status is Status.DEAD
    )
    violations = deaths_again + (0 if all_dead else 1)
    return watch.outcome(
        rounds(network, None if reached is None else reached - resumed_at), violations
    )


def restart(config: GossipConfig, seed: int, size: int, down_rounds: float) -> Outcome:
    """Kill one node and start it again under the same name and address after
    ``down_rounds``. The value is the rounds from the restart until every view lists the
    new incarnation alive. A death of the new incarnation is a violation."""
    network, watch = settled_network(config, seed, size)
    victim = pick_victim(network)
    watch.expected_deaths.add(victim.name)

    victim.kill()
    network.run_until(network.now + down_rounds * config.interval)
    restarted_at = network.now
    reborn = network.start_node(victim.name, victim.address, [address_of(0)])
    watch.expected_deaths.discard(victim.name)
    incarnation = reborn.table.me.incarnation
    reached = watch.wait_all(
        lambda node: _lists_alive(node, victim.name, incarnation),
        restarted_at + 30 * config.interval,
    )
    network.run_until(network.now + 2 * config.dead_timeout)
    return watch.outcome(
        rounds(network, None if reached is None else reached - restarted_at)
    )


def _lists_alive(node: SimNode, name: str, incarnation: int) -> bool:
    if node.name == name:
        return True
    member = node.table.member(name)
    return (
        member is not None
        and member.status is Status.ALIVE
        and member.incarnation >= incarnation
    )


def restart_before_detection(config: GossipConfig, seed: int, size: int) -> Outcome:
    return restart(config, seed, size, down_rounds=2)


def restart_after_death(config: GossipConfig, seed: int, size: int) -> Outcome:
    return restart(config, seed, size, down_rounds=15)


def restart_all(config: GossipConfig, seed: int, size: int) -> Outcome:
    """Restart every node, the seed included, each at a random time within 10 s and
    back 1 s later. The value is the rounds from the last start to full views."""
    network, watch = settled_network(config, seed, size)
    begin = network.now
    last_start = begin
    for old in list(network.running_nodes()):
        kill_at = begin + network.rng.uniform(0, 10 * config.interval)
        start_at = kill_at + config.interval
        last_start = max(last_start, start_at)
        network.schedule_at(kill_at, old.kill)
        network.schedule_at(
            start_at,
            lambda old=old: network.start_node(old.name, old.address, [address_of(0)]),
        )
    network.run_until(last_start)

    newest = {node.name: node.table.me.incarnation for node in network.running_nodes()}

    def current_view(node: SimNode) -> bool:
        return all(_lists_alive(node, name, inc) for name, inc in newest.items())

    reached = watch.wait_all(current_view, last_start + 60 * config.interval)
    if reached is not None:
        # Every view changes when it learns a new incarnation, so the check above ran
        # on the last change. This confirms that the condition is still true everywhere.
        reached = (
            reached if all(current_view(n) for n in network.running_nodes()) else None
        )
    return watch.outcome(
        rounds(network, None if reached is None else reached - last_start)
    )


def new_address(config: GossipConfig, seed: int, size: int) -> Outcome:
    """Restart one node under its name on a new port 1 s after a crash. The value is the
    rounds until every view lists the new address. The old address listed as live after
    that is a violation."""
    network, watch = settled_network(config, seed, size)
    victim = pick_victim(network)
    watch.expected_deaths.add(victim.name)
    old_address = victim.address

    victim.kill()
    network.run_until(network.now + config.interval)
    restarted_at = network.now
    moved = network.start_node(victim.name, address_of(size + 1000), [address_of(0)])
    reached = watch.wait_all(
        lambda node: (
            node is moved
            or (
                (member := node.table.member(victim.name)) is not None
                and member.address == moved.address
            )
        ),
        restarted_at + 30 * config.interval,
    )
    network.run_until(network.now + 2 * config.dead_timeout)
    old_again = sum(
        1
        for change in network.changes
        if change.time > (reached or restarted_at)
        and change.subject == victim.name
        and change.address == old_address
        and change.status is not None
        and change.status.is_live
    )
    return watch.outcome(
        rounds(network, None if reached is None else reached - restarted_at), old_again
    )


def partition(config: GossipConfig, seed: int, size: int, minority: int) -> Outcome:
    """Split the network for 30 s, ``minority`` nodes against the rest, then heal it.
    The value is the rounds from the heal until every view is full. A side that did not
    declare the other dead is a violation, as the partition was longer than the dead
    timeout."""
    network, watch = settled_network(config, seed, size)
    names = [node.name for node in network.running_nodes()]
    network.rng.shuffle(names)
    small, large = set(names[:minority]), set(names[minority:])
    watch.expected_deaths.update(names)

    network.groups = [small, large]
    network.run_until(network.now + 30 * config.interval)
    split_seen = all(
        watch.live_count(node)
        == (size - minority if node.name in large else minority) - 1
        for node in network.running_nodes()
    )
    healed_at = network.now
    network.groups = None
    reached = watch.wait_all(full_view(watch, size), healed_at + 60 * config.interval)
    return watch.outcome(
        rounds(network, None if reached is None else reached - healed_at),
        0 if split_seen else 1,
    )


def partition_half(config: GossipConfig, seed: int, size: int) -> Outcome:
    return partition(config, seed, size, size // 2)


def partition_one(config: GossipConfig, seed: int, size: int) -> Outcome:
    return partition(config, seed, size, 1)


def tombstone(config: GossipConfig, seed: int, size: int) -> Outcome:
    """Let one node leave. The value is the rounds from the leave until no view has an
    entry for it any more, or None if some view still has one 30 rounds after the
    tombstone timeout. A node paused before the leave is resumed after that; every view
    that adds the leaver again is a violation."""
    network, watch = settled_network(config, seed, size)
    leaver, sleeper = network.rng.sample(network.running_nodes()[1:], 2)
    watch.expected_deaths.update({leaver.name, sleeper.name})
    sleeper.pause()
    left_at = network.now

    leaver.terminate()
    network.run_until(left_at + (config.tombstone_rounds + 30) * config.interval)
    others = [node for node in network.running_nodes() if node is not sleeper]
    still_listed = any(node.table.member(leaver.name) is not None for node in others)
    last_drop = max(
        (
            change.time
            for change in network.changes
            if change.subject == leaver.name and change.status is None
        ),
        default=None,
    )
    reached = None if still_listed or last_drop is None else last_drop - left_at
    resumed_at = network.now
    sleeper.resume()
    network.run_until(resumed_at + 2 * config.dead_timeout)
    ghosts = {
        change.observer
        for change in network.changes
        if change.time >= resumed_at
        and change.subject == leaver.name
        and change.previous_status is None
        and change.observer != sleeper.name
    }
    return watch.outcome(rounds(network, reached), len(ghosts))


def seed_down_at_start(config: GossipConfig, seed: int, size: int) -> Outcome:
    """Start every node while the seed is down and start the seed 10 s later. The value
    is the rounds from the seed's start until every view is full."""
    network, watch, _ = start_network(config, seed, size, seed_starts=False)
    network.run_until(10 * config.interval)
    seed_started = network.now
    network.start_node(name_of(0), address_of(0), [])
    reached = watch.wait_all(
        full_view(watch, size), seed_started + 120 * config.interval
    )
    return watch.outcome(
        rounds(network, None if reached is None else reached - seed_started)
    )


def cost(
    config: GossipConfig, seed: int, size: int, compressed: bool = False
) -> Outcome:
    """Count the JSON bodies of 30 settled rounds, gzip-compressed if ``compressed``.

    The value is KB/s in and out per node at the configured interval, with an estimate
    of 200 bytes of HTTP headers each way.
    """
    network, watch = settled_network(config, seed, size)
    network.count_bytes = True
    begin, exchanges_before = network.now, network.exchanges
    network.run_until(begin + 30 * config.interval)
    exchanges = network.exchanges - exchanges_before
    body_bytes = network.gzip_body_bytes if compressed else network.body_bytes
    total = body_bytes + exchanges * 2 * 200
    # Every byte leaves one node and enters another.
    per_node = 2 * total / size / (network.now - begin)
    return watch.outcome(round(per_node / 1000, 2))


def cost_gzip(config: GossipConfig, seed: int, size: int) -> Outcome:
    return cost(config, seed, size, compressed=True)


SCENARIOS = {
    scenario.name: scenario
    for scenario in [
        Scenario("bootstrap", "G1 bootstrap", 5, "rounds", bootstrap),
        Scenario(
            "bootstrap_loss",
            "G1 bootstrap, 10% loss",
            10,
            "rounds",
            bootstrap_with_loss,
        ),
        Scenario("leave", "G2 leave (SIGTERM)", 1, "rounds", leave),
        Scenario(
            "leave_gossip_only",
            "G2 leave, announcements lost",
            5,
            "rounds",
            leave_gossip_only,
        ),
        Scenario("crash", "G3 crash (SIGKILL)", 12, "rounds", crash),
        Scenario("soak_loss", "G4a false deaths, 10% loss", 0, "deaths", soak_loss),
        Scenario("soak_busy", "G4b false deaths, busy CPU", 0, "deaths", soak_busy),
        Scenario(
            "soak_stall",
            "G4c false deaths, 3 s stall every 30 s",
            0,
            "deaths",
            soak_stall,
        ),
        Scenario(
            "soak_starved",
            "G4 false deaths, starved node, 1% loss",
            0,
            "deaths",
            soak_starved,
        ),
        Scenario("long_stall", "G5 stall of 15 s, back alive", 5, "rounds", long_stall),
        Scenario(
            "restart_quick",
            "G6a restart before detection",
            5,
            "rounds",
            restart_before_detection,
        ),
        Scenario(
            "restart_dead", "G6b restart after death", 5, "rounds", restart_after_death
        ),
        Scenario(
            "restart_all", "G6c all nodes restarted in 10 s", 10, "rounds", restart_all
        ),
        Scenario("new_address", "G7 restart on a new port", 5, "rounds", new_address),
        Scenario(
            "partition_half",
            "G8 partition half/half, heal",
            5,
            "rounds",
            partition_half,
        ),
        Scenario(
            "partition_one", "G8 partition 1/rest, heal", 5, "rounds", partition_one
        ),
        Scenario(
            "tombstone", "G9 tombstones dropped (TTL + 2)", 62, "rounds", tombstone
        ),
        Scenario(
            "seed_down", "G10 seed down at start", None, "rounds", seed_down_at_start
        ),
        Scenario("seed_crash", "G10 seed crash detected", 12, "rounds", seed_crash),
        Scenario("cost", "G11 traffic per node", 40, "KB/s", cost),
        Scenario(
            "cost_gzip", "G11 traffic per node, gzip bodies", 40, "KB/s", cost_gzip
        ),
    ]
}


# -- running many seeds ----------------------------------------------------------------


def config_for(profile: str, overrides: dict[str, float] | None = None) -> GossipConfig:
    config = (
        GossipConfig.fast(1.0) if profile == "fast" else GossipConfig.production(1.0)
    )
    return dataclasses.replace(config, **(overrides or {}))


@dataclasses.dataclass(frozen=True)
class Job:
    """One seed of one scenario, with the variant of the protocol to run."""

    scenario: str
    profile: str
    size: int
    seed: int
    overrides: dict[str, float] = dataclasses.field(default_factory=dict)


def run_one(job: Job) -> tuple[int, Outcome]:
    config = config_for(job.profile, job.overrides)
    return job.seed, SCENARIOS[job.scenario].run(config, job.seed, job.size)


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def passes(scenario: Scenario, outcome: Outcome) -> bool:
    if outcome.value is None or outcome.false_deaths or outcome.violations:
        return False
    return scenario.target is None or outcome.value <= scenario.target


def summarize(
    scenario: Scenario, size: int, results: list[tuple[int, Outcome]]
) -> dict[str, Any]:
    values = [outcome.value for _, outcome in results if outcome.value is not None]
    failures = [seed for seed, outcome in results if not passes(scenario, outcome)]
    return {
        "scenario": scenario.name,
        "goal": scenario.goal,
        "nodes": size,
        "seeds": len(results),
        "target": scenario.target,
        "unit": scenario.unit,
        "p50": percentile(values, 0.5) if values else None,
        "p99": percentile(values, 0.99) if values else None,
        "max": max(values) if values else None,
        "never": len(results) - len(values),
        "false_deaths": sum(outcome.false_deaths for _, outcome in results),
        "false_suspicions": sum(outcome.false_suspicions for _, outcome in results),
        "violations": sum(outcome.violations for _, outcome in results),
        "failed_seeds": failures,
    }


def format_row(row: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return "-" if value is None else f"{value:g}"

    verdict = "pass" if not row["failed_seeds"] else f"FAIL {len(row['failed_seeds'])}"
    return (
        f"{row['scenario']:<18} N={row['nodes']:<4} seeds={row['seeds']:<4} "
        f"target={show(row['target']):>4} {row['unit']:<6} p50={show(row['p50']):>6} "
        f"p99={show(row['p99']):>6} max={show(row['max']):>6} never={row['never']} "
        f"false_deaths={row['false_deaths']} violations={row['violations']} {verdict}"
    )


def replay(job: Job) -> None:
    """Run one seed again and print the view changes it produced."""
    _, outcome = run_one(job)
    network = _last_network[0]
    for change in network.changes:
        status = change.status.value if change.status else "dropped"
        previous = change.previous_status.value if change.previous_status else "-"
        print(
            f"t={change.time:8.3f} observer={change.observer} subject={change.subject} "
            f"status={status} previous_status={previous} incarnation={change.incarnation} "
            f"address={change.address}"
        )
    print(f"outcome {outcome}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", nargs="+", choices=sorted(SCENARIOS), default=list(SCENARIOS)
    )
    parser.add_argument("--nodes", nargs="+", type=int, default=[10, 50, 200])
    parser.add_argument(
        "--seeds", type=int, default=200, help="seeds per scenario and size"
    )
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        choices=["production", "fast"],
        default="production",
        help="GossipConfig profile, run at a 1 s interval (default production)",
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="worker processes (default 2)"
    )
    parser.add_argument(
        "--replay",
        type=int,
        metavar="SEED",
        help="run one seed and print its view changes",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a GossipConfig field, e.g. --set join_backoff_max=8",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="also write the summary rows to FILE"
    )
    args = parser.parse_args(argv)
    overrides = {}
    for setting in args.set:
        field, _, value = setting.partition("=")
        overrides[field] = float(value) if "." in value else int(value)
    variant = ["--set " + setting for setting in args.set]

    if args.replay is not None:
        replay(
            Job(
                args.scenario[0],
                args.profile,
                args.nodes[0],
                args.replay,
                overrides,
            )
        )
        return 0

    rows = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with multiprocessing.Pool(args.jobs) as pool:
        for size in args.nodes:
            for name in args.scenario:
                started = time.monotonic()
                jobs = [
                    Job(name, args.profile, size, seed, overrides) for seed in seeds
                ]
                results = pool.map(
                    run_one, jobs, chunksize=max(1, len(jobs) // (4 * args.jobs))
                )
                row = summarize(SCENARIOS[name], size, results)
                row["profile"] = args.profile
                row["variant"] = " ".join(variant)
                row["seconds"] = round(time.monotonic() - started, 1)
                rows.append(row)
                print(format_row(row), flush=True)
                for failed in row["failed_seeds"][:3]:
                    command = [
                        "python -m bench.membership.simulate",
                        f"--scenario {name} --nodes {size} --profile {args.profile}",
                        *variant,
                        f"--replay {failed}",
                    ]
                    print("  replay: " + " ".join(command), flush=True)
    if args.json:
        with open(args.json, "w") as output:
            json.dump(rows, output, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
