"""Benchmark of GET /search: the indexes of local search, and the fan-out of network search.

The script starts its own embedded PostgreSQL server (fsync off) on 127.0.0.1 and two
parts run against it:

1. Indexes. One database gets ``--tweets`` generated tweets (words drawn from a Zipf
   distribution over a fixed vocabulary, one per ``--spacing`` seconds). Each query of
   ``LOCAL_QUERIES`` runs through the node's own search SQL (``storage.search``) with
   both search indexes, without the trigram index, and without either index. The index
   variants are dropped inside a transaction that is rolled back, so nothing is rebuilt.
   The report gives the median wall time per query and the plan's top node.
2. Fan-out. ``--nodes`` real node processes (``python -m seventweets``), each on its own
   database with ``--tweets`` tweets, all joined through the first. Rounds interleave a
   local search on every node and a network search from the first node, each request
   sent over a persistent connection. The ratio divides the network search's median by
   the slowest node's local median in the same run. Then one member is stopped with
   SIGSTOP, so that it accepts connections and never responds, and network searches are
   timed against the peer timeout. Next every other member is stopped too, which a
   sequential fan-out would pay once per member. Last, one member is killed with
   SIGKILL, so that its port refuses connections.

Run from the repository with a Python that has the node's dependencies::

    python bench/search_bench.py                # prints a Markdown report
    python bench/search_bench.py --json out.json

Nothing is pinned to a core: on a machine with fewer cores than nodes, the parallel
searches of a network search compete for CPU, which the fan-out ratio includes.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg2
from psycopg2 import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from seventweets.embedded import EmbeddedPostgres  # noqa: E402
from seventweets.peers import DEFAULT_PEER_TIMEOUT  # noqa: E402
from seventweets.storage import search as search_store  # noqa: E402
from seventweets.storage.database import Database  # noqa: E402
from seventweets.storage.migrations import migrate  # noqa: E402

TOKEN = "bench-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
VOCABULARY_SIZE = 5000
# Seconds a node may take to print its ready line.
START_TIMEOUT = 60.0

# Name, content and how far back from the newest tweet the `from` bound lies (None for
# no bound). Words are picked from the vocabulary by rank, so their frequencies are
# fixed by the Zipf distribution: rank 1 is in most tweets, rank 3000 in very few.
LOCAL_QUERIES: list[tuple[str, str | None, timedelta | None]] = [
    ("common word (rank 5)", "rank:5", None),
    ("medium word (rank 200)", "rank:200", None),
    ("rare word (rank 3000)", "rank:3000", None),
    ("no match", "qqzzqqzz", None),
    ("two letters", "two-letters", None),
    ("newest tweets, no content", None, None),
    ("last day, no content", None, timedelta(days=1)),
    ("rare word, last 30 days", "rank:3000", timedelta(days=30)),
]


# -- data ------------------------------------------------------------------------------


def make_vocabulary(rng: random.Random) -> list[str]:
    """Return distinct pronounceable words, the most frequent first."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    ordered = []
    while len(ordered) < VOCABULARY_SIZE:
        length = rng.randint(2, 5)
        word = "".join(
            rng.choice(consonants) + rng.choice(vowels) for _ in range(length)
        )
        if word not in words:
            words.add(word)
            ordered.append(word)
    return ordered


def make_tweets(
    count: int, spacing: float, seed: int, vocabulary: list[str]
) -> list[tuple[str, datetime]]:
    """Return ``count`` (text, created_at) pairs, oldest first, ending now."""
    rng = random.Random(seed)
    weights = [1 / rank for rank in range(1, len(vocabulary) + 1)]
    end = datetime.now(UTC)
    tweets = []
    for index in range(count):
        words = rng.choices(vocabulary, weights, k=rng.randint(6, 30))
        text = " ".join(words)[:280].strip()
        created_at = end - timedelta(seconds=spacing * (count - 1 - index))
        tweets.append((text.capitalize(), created_at))
    return tweets


def load_tweets(dsn: str, tweets: list[tuple[str, datetime]]) -> float:
    """COPY the tweets into a migrated database, ANALYZE it and return the seconds taken."""
    started = time.perf_counter()
    buffer = io.StringIO()
    for text, created_at in tweets:
        buffer.write(f"{text}\t{created_at.isoformat()}\n")
    buffer.seek(0)
    connection = psycopg2.connect(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.copy_expert("COPY tweets (tweet, created_at) FROM STDIN", buffer)
            cursor.execute("ANALYZE tweets")
    finally:
        connection.close()
    return time.perf_counter() - started


def create_database(admin_dsn: str, name: str) -> str:
    connection = psycopg2.connect(admin_dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        connection.close()
    parameters = psycopg2.extensions.parse_dsn(admin_dsn)
    parameters["dbname"] = name
    return " ".join(f"{key}={value}" for key, value in parameters.items())


async def prepare_database(admin_dsn: str, name: str) -> str:
    dsn = create_database(admin_dsn, name)
    database = await Database.connect(dsn)
    try:
        await migrate(database)
    finally:
        await database.close()
    return dsn


def resolve_content(content: str | None, vocabulary: list[str]) -> str:
    """Turn a query's content placeholder into the text searched for."""
    if content is None:
        return ""
    if content.startswith("rank:"):
        return vocabulary[int(content.removeprefix("rank:")) - 1]
    if content == "two-letters":
        return vocabulary[50][:2]
    return content


# -- part 1: indexes -------------------------------------------------------------------

INDEX_VARIANTS = [
    ("both indexes", []),
    ("no trigram index", ["tweets_tweet_trgm_idx"]),
    ("no search index", ["tweets_tweet_trgm_idx", "tweets_created_at_id_idx"]),
]


async def bench_indexes(
    dsn: str, vocabulary: list[str], newest: datetime, repeats: int, limit: int
) -> list[dict[str, Any]]:
    database = await Database.connect(dsn)
    rows = []
    try:
        for variant, dropped in INDEX_VARIANTS:
            for name, placeholder, back in LOCAL_QUERIES:
                content = resolve_content(placeholder, vocabulary)
                start = newest - back if back is not None else None
                result = await time_local_query(
                    database, dropped, content, start, limit, repeats
                )
                rows.append(
                    {"variant": variant, "query": name, "content": content, **result}
                )
    finally:
        await database.close()
    return rows


async def time_local_query(
    database: Database,
    dropped: list[str],
    content: str,
    start: datetime | None,
    limit: int,
    repeats: int,
) -> dict[str, Any]:
    """Time the node's search SQL with ``dropped`` indexes gone, in a rolled-back transaction."""
    timings = []
    plan = ""
    matches = 0

    class Rollback(Exception):
        pass

    try:
        async with database.transaction() as cursor:
            for index in dropped:
                await cursor.execute(f"DROP INDEX {index}")
            # One run warms the cache, so every variant is measured with hot pages.
            await search_store.search_tweets(cursor, content, start, None, limit)
            for _ in range(repeats):
                started = time.perf_counter()
                found = await search_store.search_tweets(
                    cursor, content, start, None, limit
                )
                timings.append(time.perf_counter() - started)
            matches = len(found)
            plan = await top_plan_nodes(cursor, content, start, limit)
            raise Rollback
    except Rollback:
        pass
    return {
        "median_ms": statistics.median(timings) * 1000,
        "max_ms": max(timings) * 1000,
        "rows": matches,
        "plan": plan,
    }


async def top_plan_nodes(
    cursor: Any, content: str, start: datetime | None, limit: int
) -> str:
    """Return the plan's scan nodes, outermost first, for the same query."""
    conditions = []
    params: list[Any] = []
    if content:
        conditions.append("tweet ILIKE %s")
        params.append(search_store.like_pattern(content))
    if start is not None:
        conditions.append("created_at >= %s")
        params.append(start)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    await cursor.execute(
        f"EXPLAIN (FORMAT JSON) SELECT id FROM tweets {where}"
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        [*params, limit],
    )
    plan = (await cursor.fetchone())[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    names = []
    node = plan[0]["Plan"]
    while node is not None:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" on {node['Index Name']}"
        names.append(label)
        children = node.get("Plans") or []
        node = children[0] if children else None
    return " > ".join(name for name in names if name != "Limit")


# -- part 2: fan-out -------------------------------------------------------------------


class NodeProcess:
    """A ``python -m seventweets`` process whose standard error is drained in a thread."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.address: str | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seventweets", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if " ready name=" in line:
                self.address = line.rsplit("address=", 1)[1].strip()
                self._ready.set()

    def wait_ready(self) -> str:
        if not self._ready.wait(START_TIMEOUT) or self.address is None:
            raise RuntimeError("node did not start:\n" + "\n".join(self.lines[-20:]))
        return self.address

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    """One persistent HTTP/1.1 connection to a node."""

    def __init__(self, address: str) -> None:
        parts = urlsplit(address)
        self.connection = http.client.HTTPConnection(
            parts.hostname, parts.port, timeout=30
        )

    def get(self, path: str) -> tuple[float, Any]:
        """Send GET ``path`` and return (seconds, decoded body)."""
        started = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path} returned {response.status}: {raw[:200]!r}")
        return elapsed, json.loads(raw)

    def close(self) -> None:
        self.connection.close()


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of a process so far (Linux only)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def time_member_down(client: Client, path: str, count: int) -> dict[str, Any]:
    """Time ``count`` network searches and keep the failed list of the last one."""
    times = []
    failed: list[Any] = []
    for _ in range(count):
        elapsed, body = client.get(path)
        times.append(elapsed * 1000)
        failed = body["failed"]
    return {"times_ms": times, "median_ms": statistics.median(times), "failed": failed}


def wait_for_members(client: Client, count: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        _, members = client.get("/registry?status=alive")
        if len(members) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {count} members became alive")


def bench_fanout(
    nodes: list[NodeProcess],
    vocabulary: list[str],
    rounds: int,
    repeats: int,
    limit: int,
) -> dict[str, Any]:
    clients = [Client(node.wait_ready()) for node in nodes]
    pids = [node.process.pid for node in nodes]
    wait_for_members(clients[0], len(nodes))
    queries = {
        "common word (rank 5)": vocabulary[4],
        "rare word (rank 3000)": vocabulary[2999],
    }
    results: dict[str, Any] = {"queries": {}}
    try:
        for name, content in queries.items():
            local_path = "/search?" + urlencode({"content": content, "limit": limit})
            network_path = local_path + "&scope=network"
            local_times: list[list[float]] = [[] for _ in clients]
            network_times: list[float] = []
            local_cpu = [0.0 for _ in clients]
            network_cpu = [0.0 for _ in clients]
            for client in clients:
                client.get(local_path)
            clients[0].get(network_path)
            for _ in range(rounds):
                for index, client in enumerate(clients):
                    before = cpu_seconds(pids[index])
                    for _ in range(repeats):
                        local_times[index].append(client.get(local_path)[0])
                    local_cpu[index] += cpu_seconds(pids[index]) - before
                before_all = [cpu_seconds(pid) for pid in pids]
                for _ in range(repeats):
                    elapsed, body = clients[0].get(network_path)
                    assert not body["failed"], body["failed"]
                    network_times.append(elapsed)
                for index, pid in enumerate(pids):
                    network_cpu[index] += cpu_seconds(pid) - before_all[index]
            requests = rounds * repeats
            local_medians = [statistics.median(times) * 1000 for times in local_times]
            network_median = statistics.median(network_times) * 1000
            results["queries"][name] = {
                "local_median_ms": local_medians,
                "slowest_local_ms": max(local_medians),
                "network_median_ms": network_median,
                "network_p90_ms": statistics.quantiles(network_times, n=10)[-1] * 1000,
                "ratio": network_median / max(local_medians),
                "local_cpu_ms": local_cpu[0] / requests * 1000,
                "network_cpu_ms": network_cpu[0] / requests * 1000,
                "network_cpu_all_nodes_ms": sum(network_cpu) / requests * 1000,
            }

        content = vocabulary[4]
        path = "/search?" + urlencode(
            {"content": content, "limit": limit, "scope": "network"}
        )
        victim, others = nodes[-1], nodes[1:-1]
        victim.process.send_signal(signal.SIGSTOP)
        results["one_stopped"] = time_member_down(clients[0], path, 3)
        for node in others:
            node.process.send_signal(signal.SIGSTOP)
        results["all_stopped"] = time_member_down(clients[0], path, 3)
        for node in [*others, victim]:
            node.process.send_signal(signal.SIGCONT)
        victim.process.kill()
        victim.process.wait()
        results["one_killed"] = time_member_down(clients[0], path, 5)
        results["target_ms"] = DEFAULT_PEER_TIMEOUT * 1.1 * 1000
    finally:
        for client in clients:
            client.close()
    return results


# -- report ----------------------------------------------------------------------------


def report(args: argparse.Namespace, info: dict[str, Any]) -> str:
    lines = [
        f"Run {info['date']} on {info['machine']}; {args.tweets} tweets per database,"
        f" limit {args.limit}.",
        "",
        f"Loading {args.tweets} tweets took {info['load_seconds']:.1f} s (COPY with both"
        " indexes present, then ANALYZE).",
        "",
        f"### Local search, node's SQL, median of {args.repeats} runs (ms)",
        "",
        "| query | content | rows | both indexes | no trigram index | no search index |"
        " plan with both indexes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += report_indexes(info["indexes"])
    lines += report_fanout(args, info["fanout"])
    lines += report_members_down(args, info["fanout"])
    lines += ["", f"Load average before and after part 2: {info['load']}."]
    return "\n".join(lines)


def report_indexes(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    by_query: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_query.setdefault(row["query"], {})[row["variant"]] = row
    for query, variants in by_query.items():
        both = variants["both indexes"]
        cells = [f"{variants[v]['median_ms']:.2f}" for v, _ in INDEX_VARIANTS]
        lines.append(
            f"| {query} | `{both['content']}` | {both['rows']} | {' | '.join(cells)} |"
            f" {both['plan']} |"
        )
    return lines


def report_fanout(args: argparse.Namespace, fanout: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"### Network search over {args.nodes} nodes (ms, medians of"
        f" {args.rounds} x {args.repeats} requests)",
        "",
        "| query | local medians per node | slowest local | network median |"
        " network p90 | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for query, row in fanout["queries"].items():
        per_node = ", ".join(f"{value:.2f}" for value in row["local_median_ms"])
        lines.append(
            f"| {query} | {per_node} | {row['slowest_local_ms']:.2f} |"
            f" {row['network_median_ms']:.2f} | {row['network_p90_ms']:.2f} |"
            f" {row['ratio']:.2f} |"
        )
    lines += [
        "",
        "CPU time per request (ms, from /proc over the same requests):",
        "",
        "| query | first node, local search | first node, network search |"
        " all nodes, network search |",
        "| --- | --- | --- | --- |",
    ]
    for query, row in fanout["queries"].items():
        lines.append(
            f"| {query} | {row['local_cpu_ms']:.2f} | {row['network_cpu_ms']:.2f} |"
            f" {row['network_cpu_all_nodes_ms']:.2f} |"
        )
    return lines


def report_members_down(args: argparse.Namespace, fanout: dict[str, Any]) -> list[str]:
    target = fanout["target_ms"]
    lines = [
        "",
        f"### Members down (ms; target at most {target:.0f} ms with a member that hangs)",
        "",
        "| case | times | failed in the last response |",
        "| --- | --- | --- |",
    ]
    cases = [
        ("one member stopped with SIGSTOP", "one_stopped"),
        (f"all {args.nodes - 1} other members stopped with SIGSTOP", "all_stopped"),
        ("one member killed with SIGKILL", "one_killed"),
    ]
    for label, key in cases:
        times = ", ".join(f"{value:.1f}" for value in fanout[key]["times_ms"])
        names = ", ".join(f"{e['name']}: {e['error']}" for e in fanout[key]["failed"])
        lines.append(f"| {label} | {times} | {names} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tweets", type=int, default=100_000, help="tweets per database"
    )
    parser.add_argument(
        "--spacing", type=float, default=60.0, help="seconds between generated tweets"
    )
    parser.add_argument(
        "--nodes", type=int, default=5, help="node processes for part 2"
    )
    parser.add_argument("--limit", type=int, default=20, help="search limit")
    parser.add_argument(
        "--repeats", type=int, default=20, help="requests per measurement"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds, part 2"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="seventweets-search-bench-", dir="/tmp"))
    folder.chmod(0o755)
    server = EmbeddedPostgres(folder / "server", durable=False)
    server.start()
    nodes: list[NodeProcess] = []
    try:
        admin_dsn = server.admin_dsn()
        vocabulary = make_vocabulary(random.Random(7))
        dsns = [
            asyncio.run(prepare_database(admin_dsn, f"bench_{index}"))
            for index in range(args.nodes)
        ]
        load_seconds = []
        newest = datetime.now(UTC)
        for index, dsn in enumerate(dsns):
            tweets = make_tweets(args.tweets, args.spacing, index, vocabulary)
            newest = tweets[-1][1]
            load_seconds.append(load_tweets(dsn, tweets))
            print(f"loaded node {index} in {load_seconds[-1]:.1f} s", file=sys.stderr)

        indexes = asyncio.run(
            bench_indexes(dsns[0], vocabulary, newest, args.repeats, args.limit)
        )
        print("index part done", file=sys.stderr)

        for index, dsn in enumerate(dsns):
            seed = ["--seed", nodes[0].wait_ready()] if nodes else []
            options = [
                "--name", f"node{index}", "--port", "0", "--db", dsn, "--token", TOKEN,
                "--gossip-interval", "5.0", *seed,
            ]  # fmt: skip
            nodes.append(NodeProcess(*options))
        load_before = os.getloadavg()[0]
        fanout = bench_fanout(nodes, vocabulary, args.rounds, args.repeats, args.limit)
        load = f"{load_before:.1f} and {os.getloadavg()[0]:.1f}"

        info = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores,"
            f" Python {platform.python_version()}",
            "load_seconds": statistics.median(load_seconds),
            "indexes": indexes,
            "fanout": fanout,
            "load": load,
        }
        if args.json:
            args.json.write_text(json.dumps(info, indent=2, default=str))
        print(report(args, info))
    finally:
        for node in nodes:
            node.stop()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
