"""Quick checks of the membership goals: the simulator at 10 nodes and 5 real processes.

The bounds are in gossip rounds. The simulated checks run the production profile at
1 s per round. The real processes run the production profile at 0.2 s per round, because
the node command has no other profile, and the short rounds keep the module under about
two minutes. The 50-process runs and the soaks are benchmarks in ``bench/membership``.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Any

import pytest

from bench.membership import simulate
from bench.membership.harness import Cluster, NodeProcess
from bench.membership.run_real import Runner
from seventweets.gossip import GossipConfig

SIM_NODES = 10
SIM_SEEDS = range(20)
CONFIG = GossipConfig.production(1.0)

REAL_NODES = 5
REAL_INTERVAL = 0.2
REAL_BASE_PORT = 23400


def simulate_all(scenario: str, seeds: range = SIM_SEEDS) -> list[simulate.Outcome]:
    run = simulate.SCENARIOS[scenario].run
    return [run(CONFIG, seed, SIM_NODES) for seed in seeds]


def worst(outcomes: list[simulate.Outcome]) -> float:
    values = [outcome.value for outcome in outcomes]
    assert None not in values, f"some seeds never reached the goal: {values}"
    return max(value for value in values if value is not None)


def test_simulated_bootstrap_within_5_rounds() -> None:
    """Every simulated node lists all 10 members within 5 rounds of the last start."""

    outcomes = simulate_all("bootstrap")

    assert worst(outcomes) <= 5


def test_simulated_crash_detected_within_12_rounds() -> None:
    """A killed node is dead in every view within 12 rounds, with no other death."""

    outcomes = simulate_all("crash")

    assert worst(outcomes) <= 12
    assert sum(outcome.false_deaths for outcome in outcomes) == 0


def test_simulated_loss_kills_nobody() -> None:
    """Ten percent exchange loss for 60 rounds declares no live node dead."""

    outcomes = simulate_all("soak_loss", range(5))

    assert sum(outcome.false_deaths for outcome in outcomes) == 0


def test_simulated_stall_kills_nobody() -> None:
    """A node paused for 3 s every 30 s is never declared dead."""

    outcomes = simulate_all("soak_stall", range(5))

    assert sum(outcome.false_deaths for outcome in outcomes) == 0


def test_simulated_partition_heals_within_5_rounds() -> None:
    """After a 30 s split into halves, every view is full within 5 rounds of the heal."""

    outcomes = simulate_all("partition_half")

    assert worst(outcomes) <= 5
    assert sum(outcome.violations for outcome in outcomes) == 0


def test_simulated_restart_alive_within_5_rounds() -> None:
    """A node restarted after it was declared dead is alive everywhere in 5 rounds."""

    outcomes = simulate_all("restart_dead")

    assert worst(outcomes) <= 5
    assert sum(outcome.false_deaths for outcome in outcomes) == 0


def test_simulated_leave_spreads_by_gossip() -> None:
    """With every leave announcement lost, the leave still reaches every view in 5 rounds."""

    outcomes = simulate_all("leave_gossip_only", range(5))

    assert worst(outcomes) <= 5


def test_simulated_tombstones_dropped() -> None:
    """A left entry is gone from every view within the tombstone timeout plus 2 rounds."""

    outcomes = simulate_all("tombstone", range(3))

    assert worst(outcomes) <= CONFIG.tombstone_rounds + 2


def test_simulated_stale_copy_adds_nobody() -> None:
    """A node resumed after the tombstones expired brings the departed member back nowhere."""

    outcomes = simulate_all("tombstone", range(3))

    assert sum(outcome.violations for outcome in outcomes) == 0


@pytest.fixture
def cluster(pg_server: Any) -> Any:
    with Cluster(
        REAL_NODES,
        REAL_INTERVAL,
        REAL_BASE_PORT,
        create_database=pg_server.create_database,
    ) as started:
        yield started
    started.remove_files()


def rounds(seconds: float | None) -> float:
    assert seconds is not None, "the goal was not reached before the timeout"
    return seconds / REAL_INTERVAL


@pytest.mark.slow
def test_processes_bootstrap_leave_and_crash(cluster: Cluster) -> None:
    """Five processes fill their views, see a SIGTERM leave and a SIGKILL crash in time."""
    runner = Runner(cluster, random.Random(1), repeats=1)
    last_ready = cluster.start_all()
    leaver: NodeProcess = cluster.process_of("n001")
    victim: NodeProcess = cluster.process_of("n002")

    full = runner.wait_for(runner.full_view(), last_ready, 30)
    terminated = cluster.signal(leaver, signal.SIGTERM)
    exited = cluster.wait_exit(leaver)
    gone = runner.wait_for(runner.subject("n001", ("left", None)), terminated, 10)
    killed = cluster.signal(victim, signal.SIGKILL)
    cluster.wait_exit(victim)
    dead = runner.wait_for(runner.subject("n002", ("dead",)), killed, 20)
    time.sleep(1)
    deaths = runner.deaths_between(last_ready, time.monotonic(), {"n002"})

    assert rounds(None if full is None else full - last_ready) <= 5
    assert leaver.popen.returncode == 0
    assert exited - terminated <= 2.0
    assert gone is not None and gone - terminated <= 1.0
    assert rounds(None if dead is None else dead - killed) <= 12
    assert deaths == 0
