"""Fixtures shared by the test suite: a real PostgreSQL server and a real node app.

The suite starts one throwaway PostgreSQL server for the whole session (fsync off) and
gives every test that needs storage a database of its own. Set SEVENTWEETS_TEST_DSN to the
DSN of an existing server's maintenance database (a superuser's) to use that server instead.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import tornado.httpclient
from psycopg2 import sql

from seventweets.app import make_app
from seventweets.embedded import EmbeddedPostgres
from seventweets.gossip import GossipConfig, Gossiper
from seventweets.metrics import NodeMetrics
from seventweets.services.tweets import TweetService
from seventweets.storage.database import Database
from seventweets.storage.migrations import migrate
from tests.process import NodeProcess

NODE_NAME = "alice"
TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


def make_server_dir() -> Path:
    """Return a new folder under /tmp that the PostgreSQL server's user can enter.

    pytest's tmp_path is mode 700, which the unprivileged user that runs PostgreSQL for
    root cannot traverse.
    """
    path = Path(tempfile.mkdtemp(prefix="seventweets-test-", dir="/tmp"))
    path.chmod(0o755)
    return path


class PostgresServer:
    """A PostgreSQL server that hands out a fresh database per test."""

    _numbers = itertools.count(1)

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn

    def create_database(self) -> str:
        """Create an empty database and return its DSN."""
        name = f"test_{os.getpid()}_{next(self._numbers)}"
        connection = psycopg2.connect(self.admin_dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                )
        finally:
            connection.close()
        parameters = psycopg2.extensions.parse_dsn(self.admin_dsn)
        parameters["dbname"] = name
        return " ".join(f"{key}={value}" for key, value in parameters.items())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    external = os.environ.get("SEVENTWEETS_TEST_DSN")
    if external:
        yield PostgresServer(external)
        return

    folder = make_server_dir()
    server = EmbeddedPostgres(folder / "server", durable=False)
    server.start()
    try:
        yield PostgresServer(server.admin_dsn())
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def reap_node_processes() -> Iterator[None]:
    """Kill every node process a test started and left running, also when it failed."""
    yield
    for node in list(NodeProcess.running):
        node.kill()


@pytest.fixture
def dsn(pg_server: PostgresServer) -> str:
    return pg_server.create_database()


@pytest.fixture
def database(io_loop: Any, dsn: str) -> Iterator[Database]:
    db = io_loop.run_sync(lambda: Database.connect(dsn))
    io_loop.run_sync(lambda: migrate(db))
    yield db
    io_loop.run_sync(db.close)


@pytest.fixture
def base_url(http_port: int) -> str:
    # pytest-tornado's default names localhost; the tests stay on 127.0.0.1.
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def app(database: Database, http_port: int) -> Any:
    return build_node_app(database, http_port)


def build_node_app(database: Database, http_port: int) -> Any:
    """Build the full node app on ``database`` with a gossiper that is not started."""
    metrics = NodeMetrics()
    gossiper = Gossiper(
        name=NODE_NAME,
        address=f"http://127.0.0.1:{http_port}",
        seeds=[],
        config=GossipConfig.fast(),
        secret=None,
        metrics=metrics,
    )
    return make_app(
        name=NODE_NAME,
        token=TOKEN,
        database=database,
        tweets=TweetService(database, NODE_NAME),
        gossiper=gossiper,
        metrics=metrics,
    )


class Client:
    """Send requests to the app under test and return responses of any status."""

    def __init__(
        self, http_client: tornado.httpclient.AsyncHTTPClient, base_url: str
    ) -> None:
        self.http_client = http_client
        self.base_url = base_url

    async def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tornado.httpclient.HTTPResponse:
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        return await self.http_client.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=30,
        )

    async def post_tweet(self, text: str, headers: dict[str, str] | None = None) -> Any:
        response = await self.request(
            "POST",
            "/tweets",
            json_body={"tweet": text},
            headers={**AUTH, **(headers or {})},
        )
        assert response.code == 201, response.body
        return json.loads(response.body)


@pytest.fixture
def client(http_client: Any, base_url: str, http_server: Any) -> Client:
    return Client(http_client, base_url)


def body_of(response: tornado.httpclient.HTTPResponse) -> Any:
    return json.loads(response.body)
