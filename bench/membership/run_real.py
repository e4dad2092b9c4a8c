"""Membership goals measured on real ``seventweets`` processes on 127.0.0.1.

Each run starts N node processes that share one throwaway PostgreSQL server, applies a
list of scenarios to that one network in order, and prints one line per measurement.
The drop rule and the view log need a node that reads ``SEVENTWEETS_TEST_FAULTS`` and
``SEVENTWEETS_TEST_VIEW_LOG`` (see ``seventweets.gossip.faults``). Without the view log
the harness times the member table's INFO lines instead. Without the drop rule the
scenarios that need loss or partitions measure nothing useful.

Run from the repository root, for example:

    python -m bench.membership.run_real --nodes 50 --interval 1 \\
        --scenarios bootstrap cost leave crash restart_quick new_port long_stall \\
        partition_half partition_one seed_crash --json results/real-a.json

Every process it starts is stopped by pid when the run ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.membership.harness import Cluster, NodeProcess, ViewChange

LIVE = ("alive", "suspect")
REQUEST_COUNT = "seventweets_http_request_duration_seconds_count"


class Runner:
    """Scenarios on one cluster, and the measurements they produce."""

    def __init__(
        self,
        cluster: Cluster,
        rng: random.Random,
        repeats: int,
        soak_seconds: float = 90.0,
    ) -> None:
        self.cluster = cluster
        self.rng = rng
        self.repeats = repeats
        self.soak_seconds = soak_seconds
        self.rows: list[dict[str, Any]] = []
        self.extra_port = cluster.base_port + cluster.size

    @property
    def interval(self) -> float:
        return self.cluster.interval

    def record(
        self, scenario: str, value: float | None, unit: str = "s", **extra: Any
    ) -> None:
        row = {
            "scenario": scenario,
            "value": value,
            "unit": unit,
            **extra,
            "loadavg": load_average(),
        }
        if unit == "s" and value is not None:
            row["rounds"] = round(value / self.interval, 2)
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    # -- waiting for views -------------------------------------------------------------

    def wait_for(
        self,
        condition: Callable[[NodeProcess, dict[str, ViewChange]], bool],
        since: float,
        timeout: float,
        observers: list[NodeProcess] | None = None,
    ) -> float | None:
        """Poll the view changes until ``condition`` has held at every observer (the
        running nodes by default), at ``since`` or at one of its changes after that.

        Returns the latest of those times, or None at the timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            changes = self.cluster.read_changes()
            watched = observers if observers is not None else self.cluster.current()
            times = self._first_times(changes, watched, condition, since)
            if all(moment is not None for moment in times.values()):
                return max(
                    [
                        since,
                        *[moment for moment in times.values() if moment is not None],
                    ]
                )
            if time.monotonic() > deadline:
                return None
            time.sleep(0.25)

    def _first_times(
        self,
        changes: list[ViewChange],
        observers: list[NodeProcess],
        condition: Callable[[NodeProcess, dict[str, ViewChange]], bool],
        since: float,
    ) -> dict[int, float | None]:
        numbers = {self.cluster.processes.index(node): node for node in observers}
        views: dict[int, dict[str, ViewChange]] = {number: {} for number in numbers}
        result: dict[int, float | None] = {number: None for number in numbers}
        checked_at_since = set()
        for change in changes:
            number = change.process
            if number not in numbers or result[number] is not None:
                continue
            if change.time > since and number not in checked_at_since:
                checked_at_since.add(number)
                if condition(numbers[number], views[number]):
                    result[number] = since
                    continue
            views[number][change.subject] = change
            if change.time > since and condition(numbers[number], views[number]):
                result[number] = change.time
        for number in numbers:
            unchanged = result[number] is None and number not in checked_at_since
            if unchanged and condition(numbers[number], views[number]):
                result[number] = since
        return result

    def full_view(self) -> Callable[[NodeProcess, dict[str, ViewChange]], bool]:
        size = self.cluster.size

        def condition(node: NodeProcess, view: dict[str, ViewChange]) -> bool:
            live = sum(
                1
                for name, change in view.items()
                if change.status in LIVE and name != node.name
            )
            return live >= size - 1

        return condition

    def deaths_between(
        self, start: float, end: float, exclude: frozenset[str] | set[str] = frozenset()
    ) -> int:
        return sum(
            1
            for change in self.cluster.changes
            if start <= change.time <= end
            and change.status == "dead"
            and change.subject not in exclude
        )

    def pick(self) -> NodeProcess:
        candidates = [node for node in self.cluster.current() if node.index != 0]
        return self.rng.choice(candidates)

    def restart(self, node: NodeProcess, port: int | None = None) -> NodeProcess:
        reborn = self.cluster.spawn(node.index, port=port)
        self.cluster.wait_ready([reborn])
        return reborn

    def alive_with_incarnation(
        self, name: str, newer_than: int | None
    ) -> Callable[[NodeProcess, dict[str, ViewChange]], bool]:
        def condition(observer: NodeProcess, view: dict[str, ViewChange]) -> bool:
            if observer.name == name:
                return True
            change = view.get(name)
            return (
                change is not None
                and change.status == "alive"
                and (newer_than is None or (change.incarnation or 0) > newer_than)
            )

        return condition

    @staticmethod
    def subject(
        name: str, statuses: tuple[str | None, ...] = (), address: str | None = None
    ) -> Callable[[NodeProcess, dict[str, ViewChange]], bool]:
        """Return a condition: the observer is ``name`` itself, or its view of ``name``
        has one of ``statuses`` (None: no entry) and, if given, ``address``."""

        def condition(observer: NodeProcess, view: dict[str, ViewChange]) -> bool:
            if observer.name == name:
                return True
            change = view.get(name)
            status = change.status if change is not None else None
            if statuses and status not in statuses:
                return False
            return address is None or (change is not None and change.address == address)

        return condition

    def incarnation_seen(self, name: str) -> int:
        return max(
            (
                change.incarnation or 0
                for change in self.cluster.read_changes()
                if change.subject == name
            ),
            default=0,
        )

    # -- scenarios ---------------------------------------------------------------------

    def bootstrap(self, loss: float = 0.0, seed_delay: float = 0.0) -> None:
        """Start every node; the figure is the time from the last ready line until every
        view lists all members live."""
        cluster = self.cluster
        if loss:
            for index in range(cluster.size):
                cluster.set_faults(index, loss=loss)
        if seed_delay:
            cluster.start_database()
            for index in range(cluster.size):
                cluster.dsn_for(cluster.name_of(index))
            others = [cluster.spawn(index) for index in range(1, cluster.size)]
            time.sleep(seed_delay)
            seed = cluster.spawn(0)
            last_ready = cluster.wait_ready([seed])
            cluster.wait_ready(others)
        else:
            last_ready = cluster.start_all()
        reached = self.wait_for(self.full_view(), last_ready, 120)
        name = "bootstrap_loss" if loss else "bootstrap"
        if seed_delay:
            name = "seed_down"
        self.record(name, None if reached is None else round(reached - last_ready, 3))

    def bootstrap_loss(self) -> None:
        self.bootstrap(loss=0.1)

    def seed_down(self) -> None:
        self.bootstrap(seed_delay=10.0)

    def heal(self) -> None:
        self.cluster.heal()

    def cost(self, seconds: float = 30.0) -> None:
        """Measure the CPU of all nodes and their gossip traffic over a quiet window.

        Body bytes come from the gossipers' own counters in ``/metrics``. HTTP headers
        are added per exchange at the sizes ``gossip_message_sizes`` measures.
        """
        cluster = self.cluster
        nodes = cluster.current()
        before = [gossip_counters(node) for node in nodes]
        cpu_before = cluster.cpu_seconds(nodes)
        started = time.monotonic()

        time.sleep(seconds)

        cpu = cluster.cpu_seconds(nodes) - cpu_before
        after = [gossip_counters(node) for node in nodes]
        elapsed = time.monotonic() - started
        delta = {
            key: (sum(c[key] for c in after) - sum(c[key] for c in before)) / elapsed
            for key in before[0]
        }
        sizes = gossip_message_sizes(
            nodes[1], nodes[0].name, cluster.registry(nodes[0])
        )
        heads = sizes["request_head_bytes"] + sizes["reply_head_bytes"]
        bodies = delta["sent_bytes"] + delta["received_bytes"]
        # Every byte leaves one node and enters another, so it counts twice in the
        # in+out traffic summed over the nodes.
        per_node = 2 * (bodies + delta["exchanges"] * heads) / len(nodes)
        self.record("cost_cpu", round(cpu / elapsed, 3), "cores", nodes=len(nodes))
        self.record(
            "cost_traffic",
            round(per_node / 1000, 2),
            "KB/s",
            bodies_kb_per_s=round(2 * bodies / len(nodes) / 1000, 2),
            exchanges_per_second=round(delta["exchanges"], 1),
            request_body_bytes_per_exchange=round(
                delta["sent_bytes"] / delta["exchanges"]
            ),
            reply_body_bytes_per_exchange=round(
                delta["received_bytes"] / delta["exchanges"]
            ),
            **sizes,
        )

    def leave(self) -> None:
        """SIGTERM a node; measure its exit and its removal from every view, then restart
        it and time the restart after a leave."""
        for _ in range(self.repeats):
            node = self.pick()
            sent = self.cluster.signal(node, signal.SIGTERM)
            exited = self.cluster.wait_exit(node)
            gone = self.wait_for(self.subject(node.name, ("left", None)), sent, 30)
            self.record("leave_exit", round(exited - sent, 3))
            self.record("leave", None if gone is None else round(gone - sent, 3))
            self.restart_and_measure(node, "restart_after_leave")

    def restart_and_measure(self, node: NodeProcess, scenario: str) -> None:
        old = self.incarnation_seen(node.name)
        reborn = self.restart(node)
        ready = reborn.ready_at or time.monotonic()
        back = self.wait_for(self.alive_with_incarnation(node.name, old), ready, 30)
        time.sleep(2 * 8 * self.interval if scenario == "restart_after_death" else 0)
        self.record(
            scenario,
            None if back is None else round(back - ready, 3),
            deaths_after=self.deaths_between(ready, time.monotonic()),
        )

    def crash(self) -> None:
        """SIGKILL a node; time until every view lists it dead, then restart it."""
        for _ in range(self.repeats):
            node = self.pick()
            sent = self.cluster.signal(node, signal.SIGKILL)
            self.cluster.wait_exit(node)
            dead = self.wait_for(self.subject(node.name, ("dead",)), sent, 40)
            self.record(
                "crash",
                None if dead is None else round(dead - sent, 3),
                false_deaths=self.deaths_between(sent, time.monotonic(), {node.name}),
            )
            self.restart_and_measure(node, "restart_after_death")

    def seed_crash(self) -> None:
        node = self.cluster.process_of(self.cluster.name_of(0))
        sent = self.cluster.signal(node, signal.SIGKILL)
        self.cluster.wait_exit(node)
        dead = self.wait_for(self.subject(node.name, ("dead",)), sent, 40)
        self.record(
            "seed_crash",
            None if dead is None else round(dead - sent, 3),
            false_deaths=self.deaths_between(sent, time.monotonic(), {node.name}),
        )

    def restart_quick(self) -> None:
        """SIGKILL a node and start it again at once on the same port."""
        for _ in range(self.repeats):
            node = self.pick()
            old = self.incarnation_seen(node.name)
            sent = self.cluster.signal(node, signal.SIGKILL)
            self.cluster.wait_exit(node)
            reborn = self.restart(node)
            ready = reborn.ready_at or time.monotonic()
            back = self.wait_for(self.alive_with_incarnation(node.name, old), ready, 30)
            time.sleep(2 * 8 * self.interval)
            self.record(
                "restart_quick",
                None if back is None else round(back - ready, 3),
                down_seconds=round(ready - sent, 3),
                deaths=self.deaths_between(sent, time.monotonic()),
            )

    def new_port(self) -> None:
        """SIGKILL a node and start it on a new port. Time until every view lists the
        new address, and count the views that list the old address live after that."""
        for _ in range(self.repeats):
            node = self.pick()
            self.cluster.signal(node, signal.SIGKILL)
            self.cluster.wait_exit(node)
            self.extra_port += 1
            moved = self.restart(node, port=self.extra_port)
            ready = moved.ready_at or time.monotonic()
            reached = self.wait_for(
                self.subject(node.name, address=moved.address), ready, 30
            )
            time.sleep(2 * 8 * self.interval)
            old_again = sum(
                1
                for change in self.cluster.read_changes()
                if change.time > (reached or ready)
                and change.subject == node.name
                and change.address == node.address
                and change.status in LIVE
            )
            self.record(
                "new_port",
                None if reached is None else round(reached - ready, 3),
                old_address_live_again=old_again,
            )
            # Back to the original port, so that partitions by port still apply.
            self.cluster.signal(moved, signal.SIGTERM)
            self.cluster.wait_exit(moved)
            self.restart(node)
            time.sleep(3 * self.interval)

    def restart_all(self) -> None:
        """Restart every node, the seed included, in random order within 10 s. Time from
        the last ready line until every view lists every newest incarnation alive."""
        cluster = self.cluster
        nodes = cluster.current()
        self.rng.shuffle(nodes)
        begin = time.monotonic()
        started = []
        for position, node in enumerate(nodes):
            pause = begin + 10 * position / len(nodes) - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            cluster.signal(node, signal.SIGKILL)
            cluster.wait_exit(node)
            started.append(cluster.spawn(node.index))
        last_ready = cluster.wait_ready(started)
        newest = {node.name: own_incarnation(cluster, node) for node in started}

        def current_view(observer: NodeProcess, view: dict[str, ViewChange]) -> bool:
            return all(
                name == observer.name
                or (
                    name in view
                    and view[name].status == "alive"
                    and (view[name].incarnation or 0) >= incarnation
                )
                for name, incarnation in newest.items()
            )

        reached = self.wait_for(current_view, last_ready, 90)
        self.record(
            "restart_all",
            None if reached is None else round(reached - last_ready, 3),
            deaths=self.deaths_between(last_ready, time.monotonic()),
        )

    def long_stall(self) -> None:
        """SIGSTOP a node for 15 s. Time until every view lists it alive after SIGCONT,
        and count its deaths within two dead timeouts after that."""
        node = self.pick()
        self.cluster.signal(node, signal.SIGSTOP)
        time.sleep(15 * self.interval)
        self.cluster.read_changes()
        views = self.cluster.views()
        dead_everywhere = all(
            self.subject(node.name, ("dead",))(
                other, views.get(self.cluster.processes.index(other), {})
            )
            for other in self.cluster.current()
        )
        resumed = self.cluster.signal(node, signal.SIGCONT)
        back = self.wait_for(self.subject(node.name, LIVE), resumed, 30)
        time.sleep(2 * 8 * self.interval)
        self.record(
            "long_stall",
            None if back is None else round(back - resumed, 3),
            dead_everywhere_before=dead_everywhere,
            deaths_after=self.deaths_between(
                (back or resumed) + 0.001, time.monotonic(), set()
            ),
            other_deaths=self.deaths_between(resumed, time.monotonic(), {node.name}),
        )

    def partition(self, minority: int, name: str) -> None:
        cluster = self.cluster
        indexes = list(range(cluster.size))
        self.rng.shuffle(indexes)
        small, large = indexes[:minority], indexes[minority:]
        cluster.partition([small, large])
        time.sleep(30 * self.interval)
        healed = time.monotonic()
        cluster.heal()
        reached = self.wait_for(self.full_view(), healed, 60)
        self.record(name, None if reached is None else round(reached - healed, 3))

    def partition_half(self) -> None:
        self.partition(self.cluster.size // 2, "partition_half")

    def partition_one(self) -> None:
        self.partition(1, "partition_one")

    def soak(
        self,
        name: str,
        seconds: float,
        start: Callable[[], None],
        stop: Callable[[], None],
    ) -> None:
        begin = time.monotonic()
        start()
        try:
            while time.monotonic() - begin < seconds:
                time.sleep(1)
                self.cluster.read_changes()
        finally:
            stop()
        time.sleep(8 * self.interval)
        self.cluster.read_changes()
        self.record(
            name,
            float(self.deaths_between(begin, time.monotonic())),
            "deaths",
            seconds=seconds,
            suspicions=sum(
                1
                for change in self.cluster.changes
                if begin <= change.time and change.status == "suspect"
            ),
        )

    def soak_loss(self) -> None:
        self.soak(
            "soak_loss",
            self.soak_seconds,
            lambda: self.cluster.heal(loss=0.1),
            lambda: self.cluster.heal(),
        )

    def soak_busy(self) -> None:
        seconds = self.soak_seconds
        self.soak(
            "soak_busy",
            seconds,
            lambda: self.cluster.start_load(2, seconds + 5),
            self.cluster.stop_load,
        )

    def soak_stall(self) -> None:
        seconds = self.soak_seconds
        node = self.pick()

        def stall_every_30_s() -> None:
            begin = time.monotonic()
            while time.monotonic() - begin < seconds - 5:
                time.sleep(10)
                self.cluster.signal(node, signal.SIGSTOP)
                time.sleep(3)
                self.cluster.signal(node, signal.SIGCONT)
                time.sleep(17)

        # The stalls themselves take the soak's time, so the soak loop adds none.
        self.soak("soak_stall", 0, stall_every_30_s, lambda: None)
        self.rows[-1]["seconds"] = seconds

    def ghost(self) -> None:
        """Pause one node, SIGTERM another, and resume the paused one after the left
        entry expired everywhere else. Count the views that add the departed node back
        from the paused node's stale copy."""
        sleeper, leaver = self.rng.sample(
            [node for node in self.cluster.current() if node.index != 0], 2
        )
        self.cluster.signal(sleeper, signal.SIGSTOP)
        sent = self.cluster.signal(leaver, signal.SIGTERM)
        self.cluster.wait_exit(leaver)
        time.sleep(sent + (60 + 5) * self.interval - time.monotonic())
        resumed = self.cluster.signal(sleeper, signal.SIGCONT)
        time.sleep(20 * self.interval)
        added_back = {
            change.observer
            for change in self.cluster.read_changes()
            if change.time > resumed
            and change.subject == leaver.name
            and change.previous_status is None
            and change.observer != sleeper.name
        }
        self.record("ghost", float(len(added_back)), "views")

    def tombstone_start(self) -> None:
        """SIGTERM a node and keep it down; ``tombstone_check`` later looks for it."""
        node = self.pick()
        self._tombstone = (node, self.cluster.signal(node, signal.SIGTERM))
        self.cluster.wait_exit(node)

    def tombstone_check(self) -> None:
        """Report whether the left entry is gone from every view, TTL + 2 rounds after
        the leave at the earliest, and when it was last dropped."""
        node, sent = self._tombstone
        ttl = 60 * self.interval
        remaining = sent + ttl + 2 * self.interval - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        listed = [
            other.name
            for other in self.cluster.current()
            if any(
                member["name"] == node.name for member in self.cluster.registry(other)
            )
        ]
        drops = [
            change.time
            for change in self.cluster.read_changes()
            if change.subject == node.name and change.status is None
        ]
        re_adds = sum(
            1
            for change in self.cluster.changes
            if change.subject == node.name
            and change.previous_status is None
            and change.time > sent + 1
        )
        self.record(
            "tombstone",
            None if listed else round(max(drops) - sent, 3) if drops else None,
            still_listed_by=len(listed),
            re_added=re_adds,
            seconds_since_leave=round(time.monotonic() - sent, 1),
        )


def own_incarnation(cluster: Cluster, node: NodeProcess) -> int:
    """Return the incarnation the node gives itself in ``GET /registry``."""
    for member in cluster.registry(node):
        if member["name"] == node.name:
            return int(member["incarnation"])
    raise LookupError(f"node {node.name} does not list itself")


def gossip_counters(node: NodeProcess) -> dict[str, float]:
    """Return the node's gossip counters from /metrics: POST /gossip requests served,
    and the body bytes sent and received in the exchanges the node started."""
    with urllib.request.urlopen(node.address + "/metrics", timeout=5) as response:
        text = response.read().decode()
    counters = {"exchanges": 0.0, "sent_bytes": 0.0, "received_bytes": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(REQUEST_COUNT) and 'route="/gossip"' in name:
            counters["exchanges"] += float(value)
        elif name == "seventweets_gossip_sent_bytes_total":
            counters["sent_bytes"] = float(value)
        elif name == "seventweets_gossip_received_bytes_total":
            counters["received_bytes"] = float(value)
    return counters


def gossip_message_sizes(
    node: NodeProcess, sender: str, members: list[dict[str, Any]]
) -> dict[str, Any]:
    """Send ``members`` to the node as one gossip request, once accepting gzip and once
    not, and return the bytes of the request and of each reply as sent.

    The request head is the one Tornado's simple HTTP client sends for a gossip
    exchange (request line, Connection, Host, Content-Type, Content-Length and
    Accept-Encoding). The reply heads are read from the socket.
    """
    body = json.dumps({"from": sender, "members": members}, separators=(",", ":"))
    host = node.address.removeprefix("http://")
    head = (
        f"POST /gossip HTTP/1.1\r\nConnection: close\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Accept-Encoding: gzip\r\n\r\n"
    )
    sizes: dict[str, Any] = {
        "request_head_bytes": len(head),
        "request_body_bytes": len(body),
    }
    for label, accepted in (("reply", "gzip"), ("reply_plain", "identity")):
        request = head.replace("Accept-Encoding: gzip", f"Accept-Encoding: {accepted}")
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as sock:
            sock.sendall(request.encode() + body.encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        reply_head, _, reply_body = raw.partition(b"\r\n\r\n")
        sizes[label + "_head_bytes"] = len(reply_head) + 4
        sizes[label + "_body_bytes"] = len(reply_body)
        sizes[label + "_gzip"] = b"content-encoding: gzip" in reply_head.lower()
    return sizes


def load_average() -> str:
    """Return the 1, 5 and 15-minute load averages of the host from /proc/loadavg."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


SCENARIOS = [
    "bootstrap", "bootstrap_loss", "seed_down", "heal", "cost", "leave", "crash",
    "restart_quick", "new_port", "restart_all", "long_stall", "partition_half", "partition_one",
    "soak_loss", "soak_busy", "soak_stall", "tombstone_start", "tombstone_check", "ghost",
    "seed_crash",
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument(
        "--interval", type=float, default=1.0, help="gossip interval in seconds"
    )
    parser.add_argument("--base-port", type=int, default=21000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="repetitions of each repeated fault"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for the choice of victims"
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=["bootstrap", "leave", "crash"],
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        default=90.0,
        help="length of each false-death soak in seconds (the goal is 600)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the logs folder")
    args = parser.parse_args(argv)

    cluster = Cluster(args.nodes, args.interval, args.base_port)
    runner = Runner(cluster, random.Random(args.seed), args.repeats, args.soak_seconds)
    # SIGTERM of the harness itself ends the run through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"workdir {cluster.workdir}", flush=True)
    runner.record("machine_load", None, "loadavg", when="start")
    try:
        with cluster:
            for scenario in args.scenarios:
                getattr(runner, scenario)()
    finally:
        runner.record("machine_load", None, "loadavg", when="end")
        if args.json:
            Path(args.json).write_text(json.dumps(runner.rows, indent=1))
        if not args.keep:
            cluster.remove_files()
    return 0


if __name__ == "__main__":
    sys.exit(main())
