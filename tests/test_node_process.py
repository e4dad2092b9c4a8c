"""The real ``seventweets`` command: start-up, API use, signals, restart and failures."""

from __future__ import annotations

import shutil
import signal
import socket
import time

import pytest

from tests.conftest import PostgresServer, make_server_dir
from tests.process import NodeProcess, free_port, http

TOKEN = "process-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def data_dir():
    folder = make_server_dir()
    yield folder / "node"
    shutil.rmtree(folder, ignore_errors=True)


def one_line_error(node: NodeProcess) -> str:
    lines = [line for line in node.lines if line.strip()]
    assert len(lines) == 1, node.stderr
    assert lines[0].startswith("seventweets: error: "), lines[0]
    return lines[0]


def test_embedded_node_keeps_data_across_restart(data_dir) -> None:
    """A node on its embedded database serves, exits 0 on SIGTERM and finds its tweets again."""
    port = free_port()
    args = (
        "--name",
        "proc",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--token",
        TOKEN,
    )

    first = NodeProcess(*args)
    address = first.wait_ready()
    status, headers, tweet = http(
        "POST", f"{address}/tweets", {"tweet": "persist me"}, AUTH
    )
    first_exit = first.terminate()
    second = NodeProcess(*args)
    second.wait_ready()
    fetched_status, _, fetched = http("GET", f"{address}/tweets/{tweet['id']}")
    health_status, _, health = http("GET", f"{address}/health")
    second_exit = second.terminate()

    assert status == 201
    assert headers["Location"] == f"/tweets/{tweet['id']}"
    assert first_exit == 0, first.stderr
    assert fetched_status == 200
    assert fetched == tweet
    assert health_status == 200
    assert health == {"status": "ok", "name": "proc", "database": "ok"}
    assert second_exit == 0, second.stderr
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def test_sigint_exits_zero(pg_server: PostgresServer) -> None:
    """SIGINT stops the node as cleanly as SIGTERM."""
    node = NodeProcess(
        "--name", "int", "--port", "0", "--db", pg_server.create_database()
    )
    node.wait_ready()

    node.process.send_signal(signal.SIGINT)

    assert node.wait_exit() == 0, node.stderr
    assert "stopped name=int" in node.stderr


def test_generated_token_shown_once(pg_server: PostgresServer) -> None:
    """Without --token the node prints a generated token once, and that token can write."""
    node = NodeProcess(
        "--name", "gen", "--port", "0", "--db", pg_server.create_database()
    )
    address = node.wait_ready()
    token_lines = [line for line in node.lines if "generated API token" in line]
    token = token_lines[0].rsplit(" ", 1)[1]

    with_token, _, _ = http(
        "POST", f"{address}/tweets", {"tweet": "x"}, {"X-Api-Token": token}
    )
    without, _, error = http("POST", f"{address}/tweets", {"tweet": "x"})
    exit_code = node.terminate()

    assert len(token_lines) == 1
    assert with_token == 201
    assert without == 401
    assert error["status"] == 401
    assert exit_code == 0
    assert node.stderr.count(token) == 1


def test_killed_node_restarts_on_its_data_dir(data_dir) -> None:
    """After SIGKILL leaves its PostgreSQL running, the next start takes the data dir over."""
    args = (
        "--name",
        "crash",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--token",
        TOKEN,
    )
    first = NodeProcess(*args)
    address = first.wait_ready()
    http("POST", f"{address}/tweets", {"tweet": "before the crash"}, AUTH)
    first.process.send_signal(signal.SIGKILL)
    first.wait_exit()

    second = NodeProcess(*args)
    new_address = second.wait_ready()
    _, _, tweets = http("GET", f"{new_address}/tweets")
    exit_code = second.terminate()

    assert [t["tweet"] for t in tweets] == ["before the crash"]
    assert exit_code == 0, second.stderr


def test_port_in_use_fails_with_one_line(pg_server: PostgresServer) -> None:
    """A port that is taken ends the start with a non-zero status and one line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = NodeProcess(
            "--name", "busy", "--port", str(port), "--db", pg_server.create_database()
        )
        exit_code = node.wait_exit()

    assert exit_code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(node)


def test_unreachable_database_fails_with_one_line() -> None:
    """An unreachable database ends the start with a non-zero status and one line."""
    dsn = f"host=127.0.0.1 port={free_port()} dbname=none user=none connect_timeout=2"

    node = NodeProcess("--name", "nodb", "--port", "0", "--db", dsn)
    exit_code = node.wait_exit()

    assert exit_code != 0
    assert "cannot connect to the database" in one_line_error(node)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--name", "Bad Name"), "--name 'Bad Name' must be"),
        (("--name", "x" * 33), "must be 1-32 characters"),
        (("--port", "1"), "--name is required"),
        (("--name", "ok", "--port", "70000"), "--port 70000 must be"),
        (("--name", "ok", "--seed", "ftp://x"), "is not an http:// or https:// URL"),
        (("--name", "ok", "--gossip-interval", "soon"), "--gossip-interval 'soon'"),
        (("--name", "ok", "--peer-timeout", "0"), "--peer-timeout 0.0 must be"),
        (("--name", "ok", "--unknown"), "unrecognized arguments: --unknown"),
    ],
)
def test_invalid_option_fails_with_one_line(
    args: tuple[str, ...], fragment: str
) -> None:
    """Each invalid option ends the process with a non-zero status and a line naming it."""
    node = NodeProcess(*args, env={"SEVENTWEETS_NAME": ""})

    exit_code = node.wait_exit()

    assert exit_code != 0
    assert fragment in one_line_error(node)


def test_environment_configures_node(pg_server: PostgresServer) -> None:
    """SEVENTWEETS_* variables set the same options as the flags."""
    port = free_port()
    env = {
        "SEVENTWEETS_NAME": "envnode",
        "SEVENTWEETS_PORT": str(port),
        "SEVENTWEETS_DB": pg_server.create_database(),
        "SEVENTWEETS_TOKEN": TOKEN,
        "SEVENTWEETS_ADDRESS": f"http://127.0.0.1:{port}/",
    }

    node = NodeProcess(env=env)
    address = node.wait_ready()
    status, _, _ = http("POST", f"{address}/tweets", {"tweet": "x"}, AUTH)
    _, _, health = http("GET", f"{address}/health")
    exit_code = node.terminate()

    assert address == f"http://127.0.0.1:{port}"
    assert status == 201
    assert health["name"] == "envnode"
    assert exit_code == 0


def test_late_join_rejection_stops_node(pg_server: PostgresServer) -> None:
    """A node whose seed comes up later and then rejects its name exits 1 with one line."""
    first = NodeProcess(
        "--name", "dup", "--port", "0", "--db", pg_server.create_database()
    )
    first_address = first.wait_ready()
    seed_port = free_port()
    seed_address = f"http://127.0.0.1:{seed_port}"
    second = NodeProcess(
        "--name", "dup", "--port", "0", "--seed", seed_address,
        "--db", pg_server.create_database(),
    )  # fmt: skip
    second.wait_ready()

    seed = NodeProcess(
        "--name", "seed", "--port", str(seed_port), "--seed", first_address,
        "--db", pg_server.create_database(),
    )  # fmt: skip
    seed.wait_ready()
    second_exit = second.wait_exit(timeout=30)
    _, _, seed_view = http("GET", f"{seed_address}/registry/dup")
    seed_exit = seed.terminate()
    first_exit = first.terminate()

    assert second_exit == 1, second.stderr
    assert second.lines[-1].startswith("seventweets: error: "), second.stderr
    assert "dup" in second.lines[-1]
    assert seed_view["address"] == first_address
    assert seed_view["status"] == "alive"
    assert seed_exit == 0
    assert first_exit == 0


def test_abandoned_body_does_not_delay_shutdown(pg_server: PostgresServer) -> None:
    """A client that disconnects half way through a body leaves no request to drain."""
    node = NodeProcess(
        "--name", "drain", "--port", "0", "--db", pg_server.create_database()
    )
    address = node.wait_ready()
    port = int(address.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(
            b"POST /tweets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
    http("GET", f"{address}/health")

    started = time.monotonic()
    exit_code = node.terminate()
    seconds = time.monotonic() - started

    assert exit_code == 0
    assert seconds < 5, node.stderr
    assert "drain timed out" not in node.stderr
