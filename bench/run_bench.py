"""Throughput benchmark of a node's tweet API against a bare Tornado handler.

The script starts an embedded PostgreSQL server, a node (``python -m seventweets``) and
the bare server of ``bare_server.py``, and fills the node with tweets through its API.
Then it runs wrk against ``GET /tweets/<id>``, ``GET /tweets?limit=20`` and
``POST /tweets`` on both servers with the same script and settings. Rounds interleave
(bare, node, bare, node, ...) and the report takes medians. The node and the bare
server run on core 0; this script, wrk and PostgreSQL run on core 1.

Run from the repository as root or as an ordinary user, with a Python that has the
node's dependencies::

    python bench/run_bench.py            # writes bench/results.json and bench/RESULTS.md

``--repo`` benchmarks the node in another checkout (a scratch copy with a patch, for
example) and ``--profile DIR`` records a py-spy profile of the node per route instead of
measuring throughput. Every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import itertools
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WRK_DIR = BENCH_DIR / "wrk"

SERVER_CORE = 0
LOAD_CORE = 1

# Seconds a server may take to print its ready line.
START_TIMEOUT = 60.0
# Seconds a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    script: str
    path: str
    # Lowest acceptable ratio of the node's requests per second to the bare handler's.
    target_ratio: float
    # Whether the route adds rows; the database is vacuumed after each of its runs.
    writes: bool = False


SCENARIOS = (
    Scenario("get_tweet", "GET /tweets/<id>", "get_tweet.lua", "/", 0.60),
    Scenario(
        "list_tweets",
        "GET /tweets?limit=20",
        "list_tweets.lua",
        "/tweets?limit=20",
        0.45,
    ),
    Scenario(
        "post_tweet", "POST /tweets", "post_tweet.lua", "/tweets", 0.45, writes=True
    ),
)

# Highest acceptable ratio of the node's p99 latency to the bare handler's.
P99_MAX_FACTOR = 3.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- processes --------------------------------------------------------------------------


class Server:
    """A server process pinned to one core, with its standard error in a log file."""

    def __init__(
        self, name: str, command: list[str], cwd: Path, log_path: Path
    ) -> None:
        self.name = name
        self.command = ["taskset", "-c", str(SERVER_CORE), *command]
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        # taskset replaces itself with the command, so this is the server's own pid.
        return self.process.pid

    def start(self) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with status {self.process.returncode}"
                    f" before it was ready; its output:\n{self.log_tail()}"
                )
            if any(
                line.startswith("ready") or " ready " in line
                for line in self.log_lines()
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} server printed no ready line within {START_TIMEOUT} s;"
            f" its output:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(
                f"{self.name} server ignored SIGTERM; killing pid {self.pid}",
                file=sys.stderr,
            )
            self.process.kill()
            self.process.wait()

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self, count: int = 20) -> str:
        return "\n".join(self.log_lines()[-count:])

    def cpu_seconds(self) -> float:
        """Return the user plus system CPU time the process has used so far."""
        return process_cpu_seconds(self.pid)


def _proc_stat_fields(pid: int) -> list[str]:
    # The command name in field 2 may contain spaces; fields[0] here is field 3 of proc(5).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    fields = _proc_stat_fields(pid)
    # utime and stime are fields 14 and 15 of proc(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu_seconds(pgdata: Path) -> float:
    """Return the CPU time of the postmaster and the processes it started that still run.

    The node's pooled connections keep their backends for the whole benchmark, so the
    backends that exit during a run (and whose time is lost here) are not the node's.
    """
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _proc_stat_fields(int(entry.name))
        except (OSError, IndexError):
            continue  # the process ended while it was being read
        if int(entry.name) == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def core_busy_seconds() -> dict[int, float]:
    """Return the user, nice and system time of each core from /proc/stat.

    Interrupt, softirq, steal and idle time are left out, so that the figure can be
    compared with the CPU time of processes.
    """
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            user, nice, system = (int(value) for value in values[:3])
            result[int(name[3:])] = (user + nice + system) / CLOCK_TICKS
    return result


def kernel_threads_cpu_seconds() -> float:
    """Return the CPU time of the kernel's threads (children of kthreadd, pid 2).

    Loopback traffic is partly processed in ksoftirqd threads, so at high request rates
    the kernel's share grows with the benchmark's own load and is not another program's.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _proc_stat_fields(int(entry.name))
        except (OSError, IndexError):
            continue  # the process ended while it was being read
        if fields[1] == "2":
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def own_cpu_seconds() -> float:
    """Return the CPU time of this script and of the children it has waited for (wrk)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time used so far by each core and by each process of the benchmark."""

    wall: float
    cores: dict[int, float]
    server: float
    postgres: float
    own: float
    kernel: float

    @classmethod
    def take(cls, server: Server, pgdata: Path) -> CpuSnapshot:
        return cls(
            wall=time.monotonic(),
            cores=core_busy_seconds(),
            server=server.cpu_seconds(),
            postgres=postgres_cpu_seconds(pgdata),
            own=own_cpu_seconds(),
            kernel=kernel_threads_cpu_seconds(),
        )


def foreign_load(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Return how busy each core was and the share that processes outside the benchmark used.

    Other programs on the machine (other test runs, for example) take CPU time from the
    server or from wrk and PostgreSQL, and a run they disturb is not comparable.
    """
    wall = after.wall - before.wall
    server_core = after.cores[SERVER_CORE] - before.cores[SERVER_CORE]
    load_core = after.cores[LOAD_CORE] - before.cores[LOAD_CORE]
    ours_on_server_core = after.server - before.server
    ours_on_load_core = (after.postgres - before.postgres) + (after.own - before.own)
    # Kernel threads run on both cores and this does not track which core ran them,
    # so their whole time is taken off each core's other load.
    kernel = after.kernel - before.kernel
    return {
        "server_core_busy": server_core / wall,
        "load_core_busy": load_core / wall,
        "kernel_threads": kernel / wall,
        "foreign_server_core": max(0.0, server_core - ours_on_server_core - kernel)
        / wall,
        "foreign_load_core": max(0.0, load_core - ours_on_load_core - kernel) / wall,
    }


def wait_for_quiet(max_wait: float, threshold: float) -> float:
    """Wait until both cores are idle apart from ``threshold``; return the seconds waited.

    Between runs the benchmark's own processes are idle, so the load seen here is other
    programs'. After ``max_wait`` seconds the run starts anyway.
    """
    started = time.monotonic()
    while True:
        before = core_busy_seconds()
        time.sleep(0.5)
        after = core_busy_seconds()
        busy = max(after[core] - before[core] for core in (SERVER_CORE, LOAD_CORE))
        waited = time.monotonic() - started
        if busy / 0.5 <= threshold or waited >= max_wait:
            return waited


@contextmanager
def embedded_postgres(repo: Path, work_dir: Path, durable: bool) -> Iterator[Any]:
    from seventweets.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(work_dir / "postgres", durable=durable, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def settle_database(dsn: str) -> None:
    """Vacuum and analyze the tweets table after a run that added rows.

    A 10 s POST run adds tens of thousands of rows. Without this, autovacuum works them
    off on the load core during the next runs, which then measure PostgreSQL's upkeep
    more than the route.
    """
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) tweets")
    finally:
        connection.close()


# -- filling ----------------------------------------------------------------------------


def post_tweets(port: int, token: str, count: int, workers: int = 16) -> None:
    """Create ``count`` tweets through the node's API, on ``workers`` connections."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    failures: list[str] = []
    lock = threading.Lock()

    def work(first: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for number in range(first, count, workers):
                body = json.dumps(
                    {"tweet": f"fill tweet {number}: lorem ipsum dolor sit amet"}
                )
                connection.request("POST", "/tweets", body, headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 201:
                    with lock:
                        failures.append(
                            f"POST /tweets returned {response.status}: {payload[:200]!r}"
                        )
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(first,)) for first in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"filling the node failed: {failures[0]}")


def newest_tweet_id(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/tweets?limit=1")
        response = connection.getresponse()
        tweets = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200 or not tweets:
        raise RuntimeError(
            f"GET /tweets?limit=1 returned {response.status}: {tweets!r}"
        )
    return int(tweets[0]["id"])


# -- wrk --------------------------------------------------------------------------------


def run_wrk(
    scenario: Scenario,
    port: int,
    *,
    duration: int,
    connections: int,
    max_id: int,
    token: str,
) -> dict[str, Any]:
    """Run wrk once on the load core; return the JSON line that report.lua prints."""
    command = [
        "taskset",
        "-c",
        str(LOAD_CORE),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        scenario.script,
        f"http://127.0.0.1:{port}{scenario.path}",
    ]
    env = {**os.environ, "BENCH_MAX_ID": str(max_id), "BENCH_TOKEN": token}
    result = subprocess.run(
        command,
        cwd=WRK_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"wrk failed with status {result.returncode}: {result.stderr.strip()}"
        )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(
        f"wrk printed no BENCH_RESULT line; its output:\n{result.stdout}"
    )


def measure(
    scenario: Scenario,
    server: Server,
    port: int,
    pgdata: Path,
    **wrk_options: Any,
) -> dict[str, Any]:
    """Run wrk against ``server``; add the server's CPU time and the cores' load."""
    before = CpuSnapshot.take(server, pgdata)
    result = run_wrk(scenario, port, **wrk_options)
    after = CpuSnapshot.take(server, pgdata)

    errors = result["errors"]
    if errors["status"] or errors["connect"] or errors["timeout"]:
        raise RuntimeError(
            f"{scenario.label} on the {server.name} server had errors {errors};"
            f" its output:\n{server.log_tail()}"
        )
    seconds = result["duration_us"] / 1e6
    result["requests_per_second"] = result["requests"] / seconds
    result["server_cpu_us_per_request"] = (
        (after.server - before.server) * 1e6 / result["requests"]
    )
    result.update(foreign_load(before, after))
    return result


# -- environment ------------------------------------------------------------------------


def command_output(command: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (result.stdout or result.stderr).strip()


def describe_environment(repo: Path, python: str, postgres_bin: Path) -> dict[str, Any]:
    versions = json.loads(
        command_output(
            [
                python,
                "-c",
                "import json, sys, tornado, aiopg, psycopg2, prometheus_client;"
                "print(json.dumps({'python': sys.version.split()[0],"
                " 'tornado': tornado.version, 'aiopg': aiopg.__version__,"
                " 'psycopg2': psycopg2.__version__.split()[0],"
                " 'prometheus_client': __import__('importlib.metadata').metadata"
                ".version('prometheus-client')}))",
            ]
        )
    )
    versions["postgresql"] = command_output(
        [str(postgres_bin / "postgres"), "--version"]
    )
    versions["wrk"] = command_output(["wrk", "-v"]).splitlines()[0]

    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    changed = command_output(
        ["git", "status", "--porcelain", "--", "seventweets"], cwd=repo
    )
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "versions": versions,
        "node_commit": command_output(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo
        ),
        "node_uncommitted_changes": bool(changed),
        "repo": str(repo),
    }


# -- main -------------------------------------------------------------------------------


def node_server(
    name: str, repo: Path, port: int, dsn: str, token: str, args: argparse.Namespace
) -> Server:
    """Return the node of ``repo`` as the real command starts it, not yet started."""
    node_name = "bench" if name == "node" else f"bench-{name}"
    command = [
        args.python, "-m", "seventweets", "--name", node_name, "--port", str(port),
        "--db", dsn, "--token", token,
    ]  # fmt: skip
    return Server(name, command, repo, args.work_dir / f"{name}.log")


WORK_DIR_MARKER = ".seventweets-bench"


def prepare_work_dir(work_dir: Path) -> None:
    """Empty ``work_dir`` when an earlier run made it; exit when it is someone else's."""
    if work_dir.exists():
        if not (work_dir / WORK_DIR_MARKER).exists() and any(work_dir.iterdir()):
            sys.exit(
                f"--work-dir {work_dir} is not empty and was not made by run_bench.py;"
                " choose a new folder"
            )
        shutil.rmtree(work_dir)
    # PostgreSQL runs as another user when this runs as root, and must reach the folder.
    work_dir.mkdir(mode=0o755, parents=True)
    work_dir.chmod(0o755)
    (work_dir / WORK_DIR_MARKER).touch()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo",
        type=Path,
        default=BENCH_DIR.parent,
        help="checkout whose node is measured (default: this one)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="Python that runs the node and the bare server (default: this one)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds per route and server (default 3)",
    )
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds per wrk run (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of unrecorded load per route and server first (default 3)",
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="wrk connections (default 32)"
    )
    parser.add_argument(
        "--tweets",
        type=int,
        default=10_000,
        help="tweets created before measuring (default 10000)",
    )
    parser.add_argument(
        "--candidate",
        type=Path,
        metavar="REPO",
        help="also measure the node of this checkout (a patched copy), on the same"
        " database, interleaved with the other two; it is not on the results page",
    )
    parser.add_argument(
        "--foreign-limit",
        type=float,
        default=0.05,
        help="largest share of a core that other processes may use during a run"
        " before it is repeated (default 0.05)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=6,
        help="groups of runs (one route on every server) repeated at most, over the"
        " whole benchmark, because other processes used the cores (default 6)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=5.0,
        help="seconds to wait at most, before each run, for other processes to leave"
        " the cores idle (default 5)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="run PostgreSQL with fsync and synchronous commit on, as a node runs it;"
        " POST /tweets then measures the disk's flush latency more than the node",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[s.key for s in SCENARIOS],
        help="measure only this route; repeatable (default: all)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("/tmp/seventweets-bench"),
        help="folder for the database and logs, emptied first (default /tmp/seventweets-bench)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=BENCH_DIR / "results.json",
        help="where the measurements go (default bench/results.json)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=BENCH_DIR / "RESULTS.md",
        help="results page written from them (default bench/RESULTS.md);"
        " '-' writes none",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record a py-spy profile of the node per route into DIR"
        " instead of measuring",
    )
    parser.add_argument(
        "--py-spy",
        default=shutil.which("py-spy") or "py-spy",
        help="py-spy program for --profile",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        sys.exit(
            "run_bench.py needs two cores: one for the server, one for wrk and PostgreSQL"
        )
    # Everything this script starts inherits the load core unless it is pinned elsewhere.
    os.sched_setaffinity(0, {LOAD_CORE})
    repo = args.repo.resolve()
    # The embedded PostgreSQL server comes from the checkout under test.
    sys.path.insert(0, str(repo))
    from seventweets.embedded import find_bin_dir

    scenarios = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]

    prepare_work_dir(args.work_dir)

    token = secrets.token_urlsafe(24)
    # Taken before the node starts, so the commit recorded is the one the node runs.
    environment = describe_environment(repo, args.python, find_bin_dir())
    started_at = datetime.datetime.now(datetime.UTC)
    with embedded_postgres(repo, args.work_dir, args.durable) as postgres:
        node_port, bare_port = free_port(), free_port()
        node = node_server("node", repo, node_port, postgres.dsn, token, args)
        bare = Server(
            "bare",
            [args.python, str(BENCH_DIR / "bare_server.py"), "--port", str(bare_port)],
            BENCH_DIR,
            args.work_dir / "bare.log",
        )
        servers = {"bare": (bare, bare_port), "node": (node, node_port)}
        if args.candidate:
            candidate_port = free_port()
            candidate = node_server(
                "candidate",
                args.candidate.resolve(),
                candidate_port,
                postgres.dsn,
                token,
                args,
            )
            servers["candidate"] = (candidate, candidate_port)
        try:
            for server, _ in servers.values():
                server.start()
            print(f"filling the node with {args.tweets} tweets", file=sys.stderr)
            post_tweets(node_port, token, args.tweets)
            max_id = newest_tweet_id(node_port)
            wrk_options = {
                "connections": args.connections,
                "max_id": max_id,
                "token": token,
            }

            if args.profile:
                record_profiles(
                    args, scenarios, node, node_port, postgres.pgdata, wrk_options
                )
                return

            runs = measure_rounds(args, scenarios, servers, postgres, wrk_options)
        finally:
            for server, _ in servers.values():
                server.stop()

    results = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        ),
        "settings": {
            "rounds": args.rounds,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "connections": args.connections,
            "wrk_threads": 1,
            "tweets_filled": args.tweets,
            "max_id": max_id,
            "postgres_durable": args.durable,
            "server_core": SERVER_CORE,
            "load_core": LOAD_CORE,
            "foreign_limit": args.foreign_limit,
            "retries": args.retries,
        },
        "environment": environment,
        "targets": {
            "ratio": {s.key: s.target_ratio for s in SCENARIOS},
            "p99_max_factor": P99_MAX_FACTOR,
        },
        "scenarios": {s.key: s.label for s in scenarios},
        "runs": runs,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"measurements written to {args.output}", file=sys.stderr)

    sys.path.insert(0, str(BENCH_DIR))
    from report import render_report, summarize

    print(render_summary(summarize(results)), file=sys.stderr)
    if args.candidate:
        print(render_candidate_summary(results), file=sys.stderr)
    if str(args.report) != "-":
        args.report.write_text(render_report(results))
        print(f"results page written to {args.report}", file=sys.stderr)


def measure_rounds(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    servers: dict[str, tuple[Server, int]],
    postgres: Any,
    wrk_options: dict[str, Any],
) -> list[dict[str, Any]]:
    """Warm up every route and server, then run the interleaved rounds."""
    pgdata = postgres.pgdata
    for scenario in scenarios:
        for server, port in servers.values():
            measure(scenario, server, port, pgdata, duration=args.warmup, **wrk_options)
            if scenario.writes:
                settle_database(postgres.dsn)

    retries_left = args.retries
    runs = []
    for round_number in range(1, args.rounds + 1):
        for scenario in scenarios:
            # The servers of one route are measured back to back and repeated together,
            # so that while repeats remain a ratio does not mix a quiet run with a
            # disturbed one.
            for attempt in itertools.count(1):
                group = []
                for name, (server, port) in servers.items():
                    group.append(
                        measure_once(
                            args, scenario, name, server, port, pgdata, wrk_options
                        )
                    )
                    if scenario.writes:
                        settle_database(postgres.dsn)
                for result in group:
                    result.update(round=round_number, attempt=attempt)
                if not any(r["disturbed"] for r in group) or retries_left == 0:
                    break
                retries_left -= 1
                print("  other processes used the cores; repeating", file=sys.stderr)
            runs.extend(group)
    return runs


def measure_once(
    args: argparse.Namespace,
    scenario: Scenario,
    name: str,
    server: Server,
    port: int,
    pgdata: Path,
    wrk_options: dict[str, Any],
) -> dict[str, Any]:
    """Wait for quiet cores, measure one server and mark the run if it was disturbed."""
    waited = wait_for_quiet(args.quiet_wait, args.foreign_limit)
    result = measure(
        scenario, server, port, pgdata, duration=args.duration, **wrk_options
    )
    foreign = max(result["foreign_server_core"], result["foreign_load_core"])
    result.update(
        scenario=scenario.key,
        server=name,
        quiet_wait_seconds=waited,
        disturbed=foreign > args.foreign_limit,
    )
    print(
        f"{scenario.label:22} {name:9}"
        f" {result['requests_per_second']:8.0f} req/s"
        f" p50 {result['latency_p50_us'] / 1000:6.2f} ms"
        f" p99 {result['latency_p99_us'] / 1000:7.2f} ms"
        f" server CPU {result['server_cpu_us_per_request']:5.0f} µs/req"
        f" other processes {foreign:4.0%}",
        file=sys.stderr,
    )
    return result


def render_summary(summary: list[dict[str, Any]]) -> str:
    lines = []
    for row in summary:
        lines.append(
            f"{row['label']:22} ratio {row['ratio']:.2f} (target {row['target_ratio']:.2f},"
            f" {'pass' if row['ratio_pass'] else 'FAIL'})"
            f"  p99 x{row['p99_factor']:.1f} ({'pass' if row['p99_pass'] else 'FAIL'})"
            f"  CPU-time ratio {row['cpu_ratio']:.2f}"
        )
    return "\n".join(lines)


def render_candidate_summary(results: dict[str, Any]) -> str:
    """Compare the candidate node with the node round by round; return the medians."""
    lines = []
    for key, label in results["scenarios"].items():
        runs = {
            name: [
                r
                for r in results["runs"]
                if r["scenario"] == key and r["server"] == name
            ]
            for name in ("bare", "node", "candidate")
        }
        rps_gain = statistics.median(
            c["requests_per_second"] / n["requests_per_second"]
            for n, c in zip(runs["node"], runs["candidate"], strict=True)
        )
        cpu_node = statistics.median(
            r["server_cpu_us_per_request"] for r in runs["node"]
        )
        cpu_candidate = statistics.median(
            r["server_cpu_us_per_request"] for r in runs["candidate"]
        )
        ratio = statistics.median(
            c["requests_per_second"] / b["requests_per_second"]
            for b, c in zip(runs["bare"], runs["candidate"], strict=True)
        )
        lines.append(
            f"{label:22} candidate/node req/s x{rps_gain:.2f} (median of rounds),"
            f" CPU µs/req node {cpu_node:.0f} candidate {cpu_candidate:.0f}"
            f" ({cpu_candidate / cpu_node - 1:+.0%}), candidate/bare ratio {ratio:.2f}"
        )
    return "\n".join(lines)


def record_profiles(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    node: Server,
    node_port: int,
    pgdata: Path,
    wrk_options: dict[str, Any],
) -> None:
    """Load the node with each route while py-spy samples it; write one file per route."""
    args.profile.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        measure(scenario, node, node_port, pgdata, duration=args.warmup, **wrk_options)
        output = args.profile / f"{scenario.key}.txt"
        # --nonblocking samples without pausing the node, so its timing stays close to
        # an unprofiled run. py-spy runs on the load core with wrk.
        spy = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(LOAD_CORE),
                args.py_spy,
                "record",
                "--pid",
                str(node.pid),
                "--format",
                "raw",
                "--output",
                str(output),
                "--rate",
                "250",
                "--nonblocking",
                "--duration",
                str(args.duration),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        result = measure(
            scenario, node, node_port, pgdata, duration=args.duration, **wrk_options
        )
        _, spy_errors = spy.communicate(timeout=args.duration + 60)
        if spy.returncode != 0:
            raise RuntimeError(
                f"py-spy failed with status {spy.returncode}: {spy_errors.decode().strip()}"
            )
        print(
            f"{scenario.label}: {result['requests_per_second']:.0f} req/s under py-spy,"
            f" server CPU {result['server_cpu_us_per_request']:.0f} µs/req;"
            f" profile in {output}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
