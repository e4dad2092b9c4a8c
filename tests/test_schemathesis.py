"""Fuzz a real node process with schemathesis against the OpenAPI document it serves.

Settings live in tests/schemathesis.toml, and tests/schemathesis_hooks.py keeps every
address the node learns from a generated body on 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import PostgresServer
from tests.process import NodeProcess

REPOSITORY = Path(__file__).resolve().parent.parent
CONFIG = REPOSITORY / "tests" / "schemathesis.toml"
TOKEN = "fuzz-token"

# Seconds one schemathesis run may take. Runs took 9 to 25 s on the 2-core machine this
# test was written on, and a hang past this limit fails the test instead of stalling
# the suite.
RUN_TIMEOUT = 120


class FuzzResult(NamedTuple):
    """What one schemathesis run against a fresh node left behind."""

    returncode: int
    output: str
    node_exit_status: int
    node_stderr: str


@pytest.fixture
def refused_address() -> Iterator[str]:
    """Yield an http address on 127.0.0.1 whose port is bound but not listening.

    Connections to it are refused at once, and no other process can take the port
    while the fixture keeps the socket open.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def fuzz_node(dsn: str, refused_address: str, *options: str) -> FuzzResult:
    """Start a node on ``dsn``, run schemathesis with ``options`` on it, stop the node."""
    node = NodeProcess(
        "--name", "fuzz",
        "--port", "0",
        "--db", dsn,
        "--token", TOKEN,
        "--gossip-interval", "0.2",
    )  # fmt: skip
    try:
        address = node.wait_ready()
        environment = {
            **os.environ,
            "SEVENTWEETS_FUZZ_TOKEN": TOKEN,
            "SEVENTWEETS_FUZZ_PEER_ADDRESS": refused_address,
            "NO_COLOR": "1",
        }
        run = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli",
                "--config-file", str(CONFIG),
                "run", f"{address}/openapi.json",
                "--url", address,
                *options,
            ],
            cwd=REPOSITORY,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        exit_status = node.terminate()
    finally:
        node.kill()
    return FuzzResult(run.returncode, run.stdout + run.stderr, exit_status, node.stderr)


@pytest.mark.slow
def test_node_conforms_to_document(
    pg_server: PostgresServer, refused_address: str
) -> None:
    """Schemathesis finds no 5xx and no request or response that breaks the document."""
    dsn = pg_server.create_database()

    result = fuzz_node(dsn, refused_address)

    assert result.returncode == 0, f"schemathesis found problems:\n{result.output}"
    assert result.node_exit_status == 0, result.node_stderr
    assert "Traceback" not in result.node_stderr, result.node_stderr
    assert " ERROR " not in result.node_stderr, result.node_stderr
