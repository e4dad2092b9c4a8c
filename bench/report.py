"""Turn the measurements of run_bench.py into the results page.

Run: ``python bench/report.py [bench/results.json] [bench/RESULTS.md]``. run_bench.py
calls it too, so the page only needs this script when it is rewritten by hand.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def _median(runs: list[dict[str, Any]], field: str) -> float:
    return statistics.median(run[field] for run in runs)


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per route: medians of both servers, ratios and the verdicts."""
    targets = results["targets"]
    rows = []
    for key, label in results["scenarios"].items():
        runs = {
            server: [
                r
                for r in results["runs"]
                if r["scenario"] == key and r["server"] == server
            ]
            for server in ("bare", "node")
        }
        bare, node = runs["bare"], runs["node"]
        bare_rps = _median(bare, "requests_per_second")
        node_rps = _median(node, "requests_per_second")
        bare_p99 = _median(bare, "latency_p99_us")
        node_p99 = _median(node, "latency_p99_us")
        # Ratios within each round show how much the headline ratio moved between rounds.
        round_ratios = [
            n["requests_per_second"] / b["requests_per_second"]
            for b, n in zip(bare, node, strict=True)
        ]
        ratio = node_rps / bare_rps
        undisturbed = [
            n["requests_per_second"] / b["requests_per_second"]
            for b, n in zip(bare, node, strict=True)
            if not b["disturbed"] and not n["disturbed"]
        ]
        bare_cpu_us = _median(bare, "server_cpu_us_per_request")
        node_cpu_us = _median(node, "server_cpu_us_per_request")
        p99_factor = node_p99 / bare_p99
        rows.append(
            {
                "key": key,
                "label": label,
                "bare_rps": bare_rps,
                "node_rps": node_rps,
                "ratio": ratio,
                "round_ratio_min": min(round_ratios),
                "round_ratio_max": max(round_ratios),
                "undisturbed_rounds": len(undisturbed),
                "undisturbed_ratio": statistics.median(undisturbed)
                if undisturbed
                else None,
                "target_ratio": targets["ratio"][key],
                "ratio_pass": ratio >= targets["ratio"][key],
                "bare_p50_ms": _median(bare, "latency_p50_us") / 1000,
                "node_p50_ms": _median(node, "latency_p50_us") / 1000,
                "bare_p99_ms": bare_p99 / 1000,
                "node_p99_ms": node_p99 / 1000,
                "p99_factor": p99_factor,
                "p99_max_factor": targets["p99_max_factor"],
                "p99_pass": p99_factor <= targets["p99_max_factor"],
                "bare_cpu_us": bare_cpu_us,
                "node_cpu_us": node_cpu_us,
                "cpu_ratio": bare_cpu_us / node_cpu_us,
                "node_server_core_busy": _median(node, "server_core_busy"),
                "node_load_core_busy": _median(node, "load_core_busy"),
                "max_foreign": max(
                    max(r["foreign_server_core"], r["foreign_load_core"])
                    for r in bare + node
                ),
                "repeated_rounds": sum(r["attempt"] - 1 for r in node),
                "disturbed_runs": sum(r["disturbed"] for r in bare + node),
            }
        )
    return rows


def _verdict(passed: bool) -> str:
    return "pass" if passed else "**fail**"


def _validity_note(runs: list[dict[str, Any]], foreign_limit: float) -> list[str]:
    """Return a paragraph that warns when other processes disturbed kept runs."""
    disturbed = [r for r in runs if r["disturbed"]]
    if not disturbed:
        return []
    worst = max(
        max(r["foreign_server_core"], r["foreign_load_core"]) for r in disturbed
    )
    return [
        f"**{len(disturbed)} of {len(runs)} kept runs were disturbed**: other processes"
        f" took more than {foreign_limit:.0%} of a core (up to {worst:.0%}). Such load"
        " can lower the node's requests per second more than the bare server's,"
        " probably because the node also waits for PostgreSQL, which shares a core with"
        " those processes. The verdicts below then describe the machine as much as the"
        " node; the CPU-time ratio in the second table moves less.",
        "",
    ]


def render_report(results: dict[str, Any]) -> str:
    """Return the Markdown results page of one benchmark run."""
    settings = results["settings"]
    environment = results["environment"]
    versions = environment["versions"]
    rows = summarize(results)
    node_source = environment["node_commit"]
    if environment["node_uncommitted_changes"]:
        node_source += " with uncommitted changes under seventweets/"
    durability = (
        "on (fsync and synchronous commit, as a node runs it)"
        if settings["postgres_durable"]
        else "off (`fsync`, `synchronous_commit` and `full_page_writes` off), so that"
        " `POST /tweets` measures the node rather than the disk's flush latency"
    )

    lines = [
        "# Tweet API throughput: node against a bare Tornado handler",
        "",
        f"Generated by `bench/run_bench.py` (page by `bench/report.py` from"
        f" `bench/results.json`). Run from {results['started_at']} to"
        f" {results['finished_at']} (UTC), node at commit {node_source}.",
        "",
        "## Method",
        "",
        f"- One embedded PostgreSQL server (`seventweets.embedded.EmbeddedPostgres`),"
        f" durability {durability}, filled with {settings['tweets_filled']:,} tweets"
        f" through `POST /tweets` before measuring.",
        "- The node runs as `python -m seventweets --name bench --port P --db DSN --token T`"
        " with its defaults: metrics, request counting for shutdown, the gossip loop"
        " (with no peers), token checks on writes, INFO logging. The bare server"
        " (`bench/bare_server.py`) answers the same paths with a small constant JSON body.",
        f"- Both servers are pinned to core {settings['server_core']} with `taskset`; wrk,"
        f" PostgreSQL and the benchmark script run on core {settings['load_core']}.",
        f"- Each measurement is `wrk -t{settings['wrk_threads']} -c{settings['connections']}"
        f" -d{settings['duration_seconds']}s --latency` with the same Lua script for both"
        " servers (`bench/wrk/`): a uniformly random id from 1 to"
        f" {settings['max_id']:,} for `GET /tweets/<id>`, a fixed 70-byte tweet with the token"
        " for `POST /tweets`.",
        f"- Every route and server first gets {settings['warmup_seconds']} s of unrecorded"
        f" load. Then {settings['rounds']} rounds interleave the servers (bare, node, bare,"
        " node, ...) route by route. The table gives medians over the rounds; the ratio"
        " is the node's median requests per second over the bare server's, and its range"
        " is the spread of the ratios taken within each round.",
        "- After every run of `POST /tweets` (warm-up runs too), the script runs"
        " `VACUUM (ANALYZE) tweets` before the next run starts, so that autovacuum does"
        " not work off the inserted rows on the load core during later runs.",
        "- Server CPU per request is the server process's user plus system time during"
        " the run, from `/proc/PID/stat`, over the requests wrk completed.",
        "- The machine may be shared. Before each run the script waits (up to"
        " `--quiet-wait` seconds) until both cores are idle, and during the run it"
        " compares each core's busy time (`/proc/stat`) with the CPU time of the server,"
        " PostgreSQL, wrk, itself and the kernel's threads. When other processes took"
        f" more than {settings['foreign_limit']:.0%} of either core in a run, the route's"
        " runs of that round are repeated together, at most"
        f" {settings['retries']} times per benchmark. Runs still disturbed after that are"
        " kept and counted below; the ratio over the rounds in which neither run was"
        " disturbed is given beside the ratio over all rounds.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {environment['cpu_model']}, {environment['cores']} cores;"
        f" {environment['os']}, kernel {environment['kernel']}",
        f"- Python {versions['python']}, tornado {versions['tornado']}, aiopg"
        f" {versions['aiopg']}, psycopg2 {versions['psycopg2']}, prometheus-client"
        f" {versions['prometheus_client']}",
        f"- {versions['postgresql']}; {versions['wrk']}",
        "",
        "## Results",
        "",
        *_validity_note(results["runs"], settings["foreign_limit"]),
        "| route | bare req/s | node req/s | ratio (per-round range) | undisturbed rounds:"
        " ratio (rounds) | target | bare p50 / p99 | node p50 / p99 | p99 factor | target |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        undisturbed = (
            f"{row['undisturbed_ratio']:.2f} ({row['undisturbed_rounds']})"
            if row["undisturbed_rounds"]
            else "none"
        )
        lines.append(
            f"| `{row['label']}` | {row['bare_rps']:,.0f} | {row['node_rps']:,.0f}"
            f" | {row['ratio']:.2f} ({row['round_ratio_min']:.2f}-{row['round_ratio_max']:.2f})"
            f" | {undisturbed}"
            f" | ≥ {row['target_ratio']:.2f}: {_verdict(row['ratio_pass'])}"
            f" | {row['bare_p50_ms']:.2f} / {row['bare_p99_ms']:.2f} ms"
            f" | {row['node_p50_ms']:.2f} / {row['node_p99_ms']:.2f} ms"
            f" | {row['p99_factor']:.1f}"
            f" | ≤ {row['p99_max_factor']:.0f}: {_verdict(row['p99_pass'])} |"
        )
    lines += [
        "",
        "Server CPU time per request, its ratio (bare over node, which is the throughput"
        " ratio a server bound by its own core would reach), how busy the cores were during"
        " the node's runs (medians), and the most that other processes took of either"
        " core in any kept run:",
        "",
        "| route | bare CPU µs/req | node CPU µs/req | CPU-time ratio | server core busy"
        " | load core busy | other processes, max | rounds repeated / runs still disturbed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| `{row['label']}` | {row['bare_cpu_us']:.0f} | {row['node_cpu_us']:.0f}"
            f" | {row['cpu_ratio']:.2f}"
            f" | {row['node_server_core_busy']:.0%} | {row['node_load_core_busy']:.0%}"
            f" | {row['max_foreign']:.0%}"
            f" | {row['repeated_rounds']} / {row['disturbed_runs']} |"
        )
    lines += [
        "",
        "## Rerun",
        "",
        "```",
        "apt-get install wrk",
        "python bench/run_bench.py   # 4 to 9 minutes; rewrites results.json and this page",
        "```",
        "",
        "The Python that runs it must have the node's dependencies. Absolute requests per"
        " second depend on the machine and move between runs; compare ratios taken in one"
        " run.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH_DIR / "results.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else BENCH_DIR / "RESULTS.md"
    target.write_text(render_report(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
