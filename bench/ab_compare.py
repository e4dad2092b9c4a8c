"""Compare two checkouts of the node under the same load at the same time.

Both nodes run on the server core and share one PostgreSQL server. In each round two wrk
processes load both nodes at once with the same route, so that whatever else runs on
the machine slows both alike. A node that needs less CPU per request then serves more
of them in its share of the core. This finds gains of a few percent on a machine shared
with other work, where runs taken one after the other move by far more.

Comparing one checkout with itself (8 rounds of 3 s on a 2-core AMD EPYC VM shared with
other test runs) gave median ratios within 1.5% of 1, with single rounds from 0.92 to
1.08, so a median gain below about 3% is noise.

Run: ``python bench/ab_compare.py --base /path/to/checkout --candidate /path/to/patched``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import run_bench
from run_bench import SCENARIOS, CpuSnapshot, Server


def measure_pair(
    scenario: run_bench.Scenario,
    nodes: dict[str, tuple[Server, int]],
    pgdata: Path,
    wrk_options: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """Load both nodes at once; return each one's requests per second and CPU per request."""
    before = {
        name: CpuSnapshot.take(server, pgdata) for name, (server, _) in nodes.items()
    }
    with ThreadPoolExecutor(len(nodes)) as pool:
        futures = {
            name: pool.submit(run_bench.run_wrk, scenario, port, **wrk_options)
            for name, (_, port) in nodes.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    summary = {}
    for name, (server, _) in nodes.items():
        result = results[name]
        if any(result["errors"][kind] for kind in ("status", "connect", "timeout")):
            raise RuntimeError(
                f"{scenario.label} on {name} had errors {result['errors']}"
            )
        cpu = server.cpu_seconds() - before[name].server
        summary[name] = {
            "requests_per_second": result["requests"] / (result["duration_us"] / 1e6),
            "cpu_us_per_request": cpu * 1e6 / result["requests"],
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", type=Path, required=True, help="checkout whose node is the baseline"
    )
    parser.add_argument(
        "--candidate",
        type=Path,
        required=True,
        help="checkout with the change to measure",
    )
    parser.add_argument("--python", default=sys.executable, help="Python of the nodes")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per route")
    parser.add_argument("--duration", type=int, default=3, help="seconds per round")
    parser.add_argument(
        "--connections", type=int, default=32, help="wrk connections per node"
    )
    parser.add_argument(
        "--tweets", type=int, default=10_000, help="tweets filled first"
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="run PostgreSQL with fsync and synchronous commit on (default off, as in"
        " run_bench.py)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="compare on this route only; repeatable (default: all)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/seventweets-ab"),
        help="folder for the database and logs, emptied first (default /tmp/seventweets-ab)",
    )
    args = parser.parse_args()
    scenarios = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]

    # Everything this script starts inherits the load core unless it is pinned elsewhere.
    os.sched_setaffinity(0, {run_bench.LOAD_CORE})
    # The embedded PostgreSQL server comes from the base checkout.
    sys.path.insert(0, str(args.base.resolve()))
    run_bench.prepare_work_dir(args.work_dir)
    token = secrets.token_urlsafe(24)

    with run_bench.embedded_postgres(
        args.base.resolve(), args.work_dir, args.durable
    ) as postgres:
        nodes: dict[str, tuple[Server, int]] = {}
        for name, repo in (("node", args.base), ("candidate", args.candidate)):
            port = run_bench.free_port()
            server = run_bench.node_server(
                name, repo.resolve(), port, postgres.dsn, token, args
            )
            nodes[name] = (server, port)
        try:
            for server, _ in nodes.values():
                server.start()
            run_bench.post_tweets(nodes["node"][1], token, args.tweets)
            wrk_options = {
                "connections": args.connections,
                "max_id": run_bench.newest_tweet_id(nodes["node"][1]),
                "token": token,
                "duration": args.duration,
            }
            for scenario in scenarios:
                # The first pair warms both nodes up and is not counted.
                measure_pair(scenario, nodes, postgres.pgdata, wrk_options)
                rounds = [
                    measure_pair(scenario, nodes, postgres.pgdata, wrk_options)
                    for _ in range(args.rounds)
                ]
                print(render_rounds(scenario, rounds))
        finally:
            for server, _ in nodes.values():
                server.stop()


def render_rounds(
    scenario: run_bench.Scenario, rounds: list[dict[str, dict[str, float]]]
) -> str:
    """Return one line: the medians of the per-round ratios, candidate over base."""
    throughput = [r["candidate"]["requests_per_second"] / r["node"]["requests_per_second"]
                  for r in rounds]  # fmt: skip
    cpu = [r["candidate"]["cpu_us_per_request"] / r["node"]["cpu_us_per_request"]
           for r in rounds]  # fmt: skip
    base_cpu = statistics.median(r["node"]["cpu_us_per_request"] for r in rounds)
    candidate_cpu = statistics.median(
        r["candidate"]["cpu_us_per_request"] for r in rounds
    )
    return (
        f"{scenario.label:22} candidate/base req/s x{statistics.median(throughput):.3f}"
        f" (rounds {min(throughput):.2f}-{max(throughput):.2f});"
        f" CPU µs/req base {base_cpu:.0f}, candidate {candidate_cpu:.0f},"
        f" ratio x{statistics.median(cpu):.3f} (rounds {min(cpu):.2f}-{max(cpu):.2f})"
    )


if __name__ == "__main__":
    main()
