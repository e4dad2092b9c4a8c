"""A network of real ``seventweets`` processes on 127.0.0.1 for membership measurements.

``Cluster`` starts one throwaway PostgreSQL server with a database per node, starts nodes
that all join through node 0, injects faults (signals, restarts, the test-only drop
rule, CPU load) and reads every node's view changes back with their times. Everything it
starts it stops by pid in ``close()``, which the context manager also calls when a
scenario fails.

Times are ``time.monotonic()`` seconds, one clock for every process of a Linux host. A
node that supports ``SEVENTWEETS_TEST_VIEW_LOG`` writes its view changes with that clock
itself. For a node without that hook the harness reads the INFO lines that the member
table logs and converts their wall-clock stamps, which have millisecond resolution.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from seventweets.embedded import EmbeddedPostgres
from seventweets.gossip import faults

REPOSITORY = Path(__file__).resolve().parents[2]
TOKEN = "membership-bench-token"
READY = re.compile(r"ready name=(\S+) address=(\S+)")
# The member table's INFO lines, read when a node has no view log hook.
LOG_LINE = re.compile(
    r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO seventweets\.gossip\.table: "
    r"member (?P<event>added|status changed|dropped|address changed|restarted) "
    r"name=(?P<name>\S+)(?P<fields>.*)$"
)
FIELD = re.compile(r"(\w+)=(\S+)")
# A busy loop for CPU load, stopped by the harness or after its own time limit.
BUSY_LOOP = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


@dataclasses.dataclass(frozen=True)
class ViewChange:
    """One change of one node's view of a member; ``status`` None means dropped."""

    time: float
    observer: str
    # Index of the observer's process in Cluster.processes, as a name can restart.
    process: int
    subject: str
    status: str | None
    previous_status: str | None
    incarnation: int | None
    address: str | None


@dataclasses.dataclass
class NodeProcess:
    """One started node process and the files it writes."""

    index: int
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    view_path: Path
    started_at: float
    ready_at: float | None = None
    exited_at: float | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None


class Cluster:
    """Node processes on 127.0.0.1 that share one PostgreSQL server."""

    def __init__(
        self,
        size: int,
        interval: float,
        base_port: int,
        workdir: Path | None = None,
        log_level: str = "INFO",
        create_database: Callable[[], str] | None = None,
    ) -> None:
        self.size = size
        self.interval = interval
        self.base_port = base_port
        self.log_level = log_level
        self.workdir = workdir or Path(
            tempfile.mkdtemp(prefix="membership-", dir="/tmp")
        )
        self.workdir.chmod(0o755)
        for folder in ("logs", "views", "faults"):
            (self.workdir / folder).mkdir(exist_ok=True)
        self.processes: list[NodeProcess] = []
        self._load: list[subprocess.Popen[bytes]] = []
        self._postgres: EmbeddedPostgres | None = None
        # Without it the cluster runs a PostgreSQL server of its own.
        self._create_database = create_database
        self._dsns: dict[str, str] = {}
        self._wall_offset = time.time() - time.monotonic()
        self._read_offsets: dict[Path, int] = {}
        self._views: dict[int, dict[str, dict[str, Any]]] = {}
        self.changes: list[ViewChange] = []

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- database --------------------------------------------------------------------

    def start_database(self) -> None:
        self._postgres = EmbeddedPostgres(self.workdir / "postgres", durable=False)
        self._postgres.start()

    def dsn_for(self, name: str) -> str:
        """Return the DSN of the node's own database, created on first use."""
        if name in self._dsns:
            return self._dsns[name]
        if self._create_database is not None:
            self._dsns[name] = self._create_database()
            return self._dsns[name]
        assert self._postgres is not None, "start_database() first"
        connection = psycopg2.connect(self._postgres.admin_dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                )
        finally:
            connection.close()
        self._dsns[name] = self._postgres.admin_dsn(name)
        return self._dsns[name]

    # -- nodes -----------------------------------------------------------------------

    @staticmethod
    def name_of(index: int) -> str:
        return f"n{index:03d}"

    def seed_address(self) -> str:
        return f"http://127.0.0.1:{self.base_port}"

    def spawn(
        self, index: int, port: int | None = None, seed: bool = True
    ) -> NodeProcess:
        """Start node ``index`` on ``port`` (default base_port + index)."""
        name = self.name_of(index)
        port = port if port is not None else self.base_port + index
        number = len(self.processes)
        log_path = self.workdir / "logs" / f"{name}-{number}.log"
        view_path = self.workdir / "views" / f"{name}-{number}.jsonl"

        arguments = [
            sys.executable, "-m", "seventweets",
            "--name", name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--db", self.dsn_for(name),
            "--token", TOKEN,
            "--gossip-interval", str(self.interval),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if seed and index != 0:
            arguments += ["--seed", self.seed_address()]

        environment = {
            **os.environ,
            "PYTHONPATH": str(REPOSITORY),
            faults.FAULTS_VARIABLE: str(self.fault_path(index)),
            faults.VIEW_LOG_VARIABLE: str(view_path),
        }

        with open(log_path, "wb") as log_file:
            popen = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                env=environment,
                cwd=REPOSITORY,
            )
        node = NodeProcess(
            index, name, port, popen, log_path, view_path, time.monotonic()
        )
        self.processes.append(node)
        return node

    def wait_ready(self, nodes: list[NodeProcess], timeout: float = 60) -> float:
        """Wait until every node has logged its ready line; return the last ready time."""
        deadline = time.monotonic() + timeout
        waiting = [node for node in nodes if node.ready_at is None]
        while waiting:
            for node in list(waiting):
                text = node.log_path.read_text(errors="replace")
                if READY.search(text):
                    node.ready_at = time.monotonic()
                    waiting.remove(node)
                elif not node.running():
                    raise RuntimeError(
                        f"node {node.name} exited before ready:\n{text[-2000:]}"
                    )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nodes not ready after {timeout} s: {[n.name for n in waiting]}"
                )
            time.sleep(0.02)
        return max(node.ready_at or 0.0 for node in nodes)

    def start_all(self, seed_first: bool = True) -> float:
        """Start the seed, then every other node at once; return the last ready time."""
        if self._postgres is None and self._create_database is None:
            self.start_database()
        for index in range(self.size):
            self.dsn_for(self.name_of(index))
        seed = self.spawn(0)
        if seed_first:
            self.wait_ready([seed])
        others = [self.spawn(index) for index in range(1, self.size)]
        return self.wait_ready([seed, *others])

    def current(self) -> list[NodeProcess]:
        """Return the newest process of each name that is still running."""
        newest: dict[str, NodeProcess] = {}
        for node in self.processes:
            newest[node.name] = node
        return [node for node in newest.values() if node.running()]

    def process_of(self, name: str) -> NodeProcess:
        return [node for node in self.processes if node.name == name][-1]

    # -- faults ----------------------------------------------------------------------

    def fault_path(self, index: int) -> Path:
        return self.workdir / "faults" / f"{self.name_of(index)}.json"

    def set_faults(
        self, index: int, blocked: list[str] | None = None, loss: float = 0.0
    ) -> None:
        """Replace node ``index``'s drop rule atomically; the node reads it at once."""
        path = self.fault_path(index)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"blocked": blocked or [], "loss": loss}))
        os.replace(temporary, path)

    def partition(self, groups: list[list[int]]) -> None:
        """Block every address outside a node's group on that node."""
        for group in groups:
            outside = [
                f"http://127.0.0.1:{self.base_port + index}"
                for other in groups
                if other is not group
                for index in other
            ]
            for index in group:
                self.set_faults(index, blocked=outside)

    def heal(self, loss: float = 0.0) -> None:
        for index in range(self.size):
            self.set_faults(index, loss=loss)

    def signal(self, node: NodeProcess, signum: signal.Signals) -> float:
        """Send ``signum`` to the node's pid and return the time it was sent."""
        sent = time.monotonic()
        node.popen.send_signal(signum)
        return sent

    def wait_exit(self, node: NodeProcess, timeout: float = 10) -> float:
        node.popen.wait(timeout)
        node.exited_at = time.monotonic()
        return node.exited_at

    def start_load(self, processes: int, seconds: float) -> None:
        """Start busy loops that end by themselves after ``seconds``."""
        for _ in range(processes):
            self._load.append(
                subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(seconds)])
            )

    def stop_load(self) -> None:
        for load in self._load:
            if load.poll() is None:
                load.kill()
            load.wait()
        self._load.clear()

    # -- reading views ---------------------------------------------------------------

    def read_changes(self) -> list[ViewChange]:
        """Read the view changes written since the last call and return all so far."""
        for number, node in enumerate(self.processes):
            # A node with the view log hook creates its file before it is ready, so a
            # ready node without one is read from its log lines, and never both.
            if node.view_path.exists():
                self._read_view_log(number, node)
            elif node.ready_at is not None:
                self._read_log_lines(number, node)
        self.changes.sort(key=lambda change: change.time)
        return self.changes

    def _new_lines(self, path: Path) -> list[str]:
        offset = self._read_offsets.get(path, 0)
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._read_offsets[path] = offset + len(complete)
        return complete.decode(errors="replace").splitlines()

    def _read_view_log(self, number: int, node: NodeProcess) -> None:
        for line in self._new_lines(node.view_path):
            entry = json.loads(line)
            self.changes.append(
                ViewChange(
                    time=entry["time"],
                    observer=entry["observer"],
                    process=number,
                    subject=entry["subject"],
                    status=entry["status"],
                    previous_status=entry["previous_status"],
                    incarnation=entry["incarnation"],
                    address=entry["address"],
                )
            )

    def _read_log_lines(self, number: int, node: NodeProcess) -> None:
        view = self._views.setdefault(number, {})
        for line in self._new_lines(node.log_path):
            match = LOG_LINE.match(line)
            if match is None:
                continue
            stamp = datetime.datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S,%f")
            moment = stamp.timestamp() - self._wall_offset
            fields = dict(FIELD.findall(match["fields"]))
            subject = match["name"]
            known = view.get(subject, {})
            previous_status = known.get("status")
            if match["event"] == "dropped":
                view.pop(subject, None)
                status = None
            else:
                known = {**known, **fields}
                view[subject] = known
                status = known.get("status")
            incarnation = known.get("incarnation")
            self.changes.append(
                ViewChange(
                    time=moment,
                    observer=node.name,
                    process=number,
                    subject=subject,
                    status=status,
                    previous_status=previous_status
                    if match["event"] != "added"
                    else None,
                    incarnation=int(incarnation) if incarnation is not None else None,
                    address=known.get("address"),
                )
            )

    def views(self) -> dict[int, dict[str, ViewChange]]:
        """Return each process's latest change per subject, from the changes read."""
        result: dict[int, dict[str, ViewChange]] = {}
        for change in self.changes:
            result.setdefault(change.process, {})[change.subject] = change
        return result

    def registry(self, node: NodeProcess) -> list[dict[str, Any]]:
        """Return the node's member table from ``GET /registry``."""
        with urllib.request.urlopen(node.address + "/registry", timeout=5) as response:
            members: list[dict[str, Any]] = json.loads(response.read())
        return members

    # -- cost ------------------------------------------------------------------------

    def cpu_seconds(self, nodes: list[NodeProcess]) -> float:
        """Return the user and system CPU seconds the nodes have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for node in nodes:
            try:
                fields = (
                    Path(f"/proc/{node.pid}/stat").read_text().rsplit(")", 1)[1].split()
                )
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    # -- cleanup ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process this cluster started, by pid, then the database server."""
        self.stop_load()
        for node in self.processes:
            if node.popen.poll() is None:
                # A stopped process must continue to act on SIGKILL's exit promptly.
                node.popen.send_signal(signal.SIGCONT)
                node.popen.kill()
        for node in self.processes:
            try:
                node.popen.wait(10)
            except subprocess.TimeoutExpired:
                print(f"node {node.name} pid {node.pid} did not exit", file=sys.stderr)
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None

    def remove_files(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
