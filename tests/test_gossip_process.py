"""Membership between real ``seventweets`` processes: join, SIGTERM, SIGKILL, restart."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest

from seventweets.gossip import GossipConfig
from tests.conftest import PostgresServer
from tests.process import NodeProcess, free_port, http

INTERVAL = 0.2
# The timeouts that the command derives from --gossip-interval.
CONFIG = GossipConfig.production(INTERVAL)


def statuses(address: str) -> dict[str, str]:
    """Return name -> status from a node's ``GET /registry``."""
    status, _, members = http("GET", f"{address}/registry", timeout=5)
    assert status == 200
    return {member["name"]: member["status"] for member in members}


def registry_entry(address: str, name: str) -> dict[str, object]:
    status, _, member = http("GET", f"{address}/registry/{name}", timeout=5)
    assert status == 200
    return member


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until it is true and return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def everyone_sees(addresses: list[str], expected: dict[str, str]) -> Callable[[], bool]:
    def check() -> bool:
        return all(
            {name: statuses(address).get(name) for name in expected} == expected
            for address in addresses
        )

    return check


class Network:
    """Node processes started by one test, each on its own fresh database."""

    def __init__(self, pg_server: PostgresServer) -> None:
        self.pg_server = pg_server
        self.processes: list[NodeProcess] = []
        self.databases: dict[str, str] = {}

    def start(
        self,
        name: str,
        port: int,
        seeds: tuple[str, ...] = (),
        secret: str | None = None,
    ) -> NodeProcess:
        dsn = self.databases.setdefault(name, self.pg_server.create_database())
        args = ["--name", name, "--port", str(port), "--db", dsn]
        args += ["--gossip-interval", str(INTERVAL), "--token", "gossip-token"]
        for seed in seeds:
            args += ["--seed", seed]
        if secret is not None:
            args += ["--cluster-secret", secret]
        process = NodeProcess(*args)
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()


@pytest.fixture
def network(pg_server: PostgresServer) -> Iterator[Network]:
    network = Network(pg_server)
    yield network
    network.kill_all()


def test_three_processes_join_leave_crash_restart(network: Network) -> None:
    """Nodes seeded at one node learn each other; SIGTERM is a leave everywhere within
    two rounds, SIGKILL a death within the dead timeout, and a restart comes back."""
    a = network.start("a", free_port())
    a_address = a.wait_ready()
    b_port = free_port()
    b = network.start("b", b_port, seeds=(a_address,))
    c = network.start("c", free_port(), seeds=(a_address,))
    b_address, c_address = b.wait_ready(), c.wait_ready()
    all_alive = {"a": "alive", "b": "alive", "c": "alive"}

    wait_until(
        everyone_sees([a_address, b_address, c_address], all_alive), 5, "all alive"
    )
    terminated_at = time.monotonic()
    c_exit = c.terminate()
    exited_after = time.monotonic() - terminated_at
    left_after = wait_until(
        everyone_sees([a_address, b_address], {"c": "left"}), 2 * INTERVAL, "c left"
    )
    old_b = registry_entry(a_address, "b")
    killed_at = time.monotonic()
    b.kill()
    wait_until(
        everyone_sees([a_address], {"b": "dead"}),
        CONFIG.dead_timeout + 6 * INTERVAL,
        "b is dead",
    )
    dead_after = time.monotonic() - killed_at
    restarted = network.start("b", b_port, seeds=(a_address,))
    restarted.wait_ready()
    back = {"a": "alive", "b": "alive"}
    back_after = wait_until(everyone_sees([a_address, b_address], back), 5, "b is back")
    new_b = registry_entry(a_address, "b")
    # The new b never knew c, so it takes no tombstone for it.
    c_at_restarted_b = statuses(b_address).get("c")

    assert c_exit == 0, c.stderr
    assert "left network name=c" in c.stderr
    assert exited_after < 5
    assert left_after <= 2 * INTERVAL
    assert dead_after <= CONFIG.dead_timeout + 6 * INTERVAL
    assert back_after < 5
    assert new_b["incarnation"] > old_b["incarnation"]
    assert new_b["address"] == old_b["address"]
    assert statuses(a_address)["c"] == "left"
    assert c_at_restarted_b is None
    assert "network is open" in a.stderr
    print(
        f"measured: c exited {exited_after:.2f} s after SIGTERM, left everywhere "
        f"{left_after:.2f} s after exit; b dead {dead_after:.2f} s after SIGKILL "
        f"(dead timeout {CONFIG.dead_timeout:.1f} s); b back {back_after:.2f} s after ready"
    )


def test_process_claiming_live_name_exits(network: Network) -> None:
    """A second process under a live node's name exits non-zero with a one-line reason,
    and the live node's entry stays as it was."""
    a = network.start("a", free_port())
    a_address = a.wait_ready()
    b = network.start("b", free_port(), seeds=(a_address,))
    b_address = b.wait_ready()
    wait_until(everyone_sees([a_address], {"b": "alive"}), 5, "b is alive at a")
    before = registry_entry(a_address, "b")

    impostor = network.start("b", free_port(), seeds=(a_address,))
    exit_code = impostor.wait_exit(30)
    after = registry_entry(a_address, "b")

    assert exit_code != 0
    last_line = impostor.lines[-1]
    assert last_line.startswith("seventweets: error: "), impostor.stderr
    assert "409" in last_line
    assert b_address in last_line
    assert after["address"] == before["address"]
    assert after["incarnation"] == before["incarnation"]
    assert after["status"] == "alive"


def test_stopped_process_returns_without_convicting(network: Network) -> None:
    """A process paused past the dead timeout is dead elsewhere, comes back alive after
    SIGCONT, and declares no other node dead on waking."""
    a = network.start("a", free_port())
    a_address = a.wait_ready()
    b = network.start("b", free_port(), seeds=(a_address,))
    c = network.start("c", free_port(), seeds=(a_address,))
    b_address, c_address = b.wait_ready(), c.wait_ready()
    addresses = [a_address, b_address, c_address]
    all_alive = {"a": "alive", "b": "alive", "c": "alive"}
    wait_until(everyone_sees(addresses, all_alive), 5, "all alive")

    c.process.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            everyone_sees([a_address, b_address], {"c": "dead"}), 10, "c is dead"
        )
        time.sleep(CONFIG.dead_timeout)
    finally:
        c.process.send_signal(signal.SIGCONT)
    back_after = wait_until(everyone_sees(addresses, all_alive), 5, "c is back")
    # Standard error is read by a thread, so the log line may arrive a little later.
    wait_until(
        lambda: "own gossip loop stalled name=c" in c.stderr, 2, "c logs its stall"
    )
    time.sleep(CONFIG.dead_timeout)

    assert back_after < 10 * INTERVAL
    assert " status=dead " not in c.stderr, c.stderr


def test_cluster_secret_between_processes(network: Network) -> None:
    """Processes sharing --cluster-secret join and leave each other, a process with
    another secret exits with a one-line reason, and unsigned writes get 401."""
    a = network.start("a", free_port(), secret="team-secret")
    a_address = a.wait_ready()
    b = network.start("b", free_port(), seeds=(a_address,), secret="team-secret")
    b_address = b.wait_ready()
    wait_until(
        everyone_sees([a_address, b_address], {"a": "alive", "b": "alive"}), 5, "joined"
    )

    outsider = network.start("x", free_port(), seeds=(a_address,), secret="guess")
    outsider_exit = outsider.wait_exit(30)
    unsigned_status, _, unsigned_body = http(
        "POST", f"{a_address}/gossip", {"from": "x", "members": []}
    )
    b_exit = b.terminate()
    wait_until(everyone_sees([a_address], {"b": "left"}), 2 * INTERVAL, "b left")

    assert outsider_exit != 0
    assert outsider.lines[-1].startswith("seventweets: error: "), outsider.stderr
    assert "401" in outsider.lines[-1]
    assert "x" not in statuses(a_address)
    assert unsigned_status == 401
    assert unsigned_body["status"] == 401
    assert b_exit == 0, b.stderr
    assert "network is open" not in a.stderr
    assert "team-secret" not in a.stderr + b.stderr
