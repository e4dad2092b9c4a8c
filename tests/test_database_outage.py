"""A node whose PostgreSQL stops and starts again while it runs."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import Any

import pytest

from seventweets.embedded import EmbeddedPostgres
from seventweets.storage.database import Database
from seventweets.storage.migrations import migrate
from tests.conftest import (
    AUTH,
    NODE_NAME,
    Client,
    body_of,
    build_node_app,
    make_server_dir,
)
from tests.process import free_port

# Seconds a request may take while the database is down: the pool's 5 s timeout plus slack
# for a loaded machine.
OUTAGE_RESPONSE_BOUND = 8.0


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test alone, on a port that stays the same on restart."""
    folder = make_server_dir()
    server = EmbeddedPostgres(folder / "server", durable=False, port=free_port())
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def outage_database(io_loop: Any, own_server: EmbeddedPostgres):
    database = io_loop.run_sync(lambda: Database.connect(own_server.dsn))
    io_loop.run_sync(lambda: migrate(database))
    yield database
    io_loop.run_sync(database.close)


@pytest.fixture
def app(outage_database: Database, http_port: int) -> Any:
    return build_node_app(outage_database, http_port)


async def timed(
    client: Client, method: str, path: str, **kwargs: Any
) -> tuple[Any, float]:
    started = time.monotonic()
    response = await client.request(method, path, **kwargs)
    return response, time.monotonic() - started


@pytest.mark.gen_test(timeout=90)
async def test_outage_gives_503_then_recovers(
    client: Client, own_server: EmbeddedPostgres
) -> None:
    """With the database stopped reads, writes and /health get a bounded 503; once it is
    back the node serves again without a restart and nothing stored is lost."""
    loop = asyncio.get_running_loop()
    tweet = await client.post_tweet("before the outage")

    await loop.run_in_executor(None, own_server.stop)
    read, read_seconds = await timed(client, "GET", f"/tweets/{tweet['id']}")
    write, write_seconds = await timed(
        client, "POST", "/tweets", json_body={"tweet": "during"}, headers=AUTH
    )
    health, health_seconds = await timed(client, "GET", "/health")

    await loop.run_in_executor(None, own_server.start)
    recovered = None
    for _ in range(50):
        recovered = await client.request("GET", f"/tweets/{tweet['id']}")
        if recovered.code == 200:
            break
        await asyncio.sleep(0.2)
    health_after = await client.request("GET", "/health")
    listing = body_of(await client.request("GET", "/tweets"))

    assert read.code == 503
    assert body_of(read)["status"] == 503
    assert "database is unavailable" in body_of(read)["error"]
    assert read_seconds < OUTAGE_RESPONSE_BOUND
    assert write.code == 503
    assert write_seconds < OUTAGE_RESPONSE_BOUND
    assert health.code == 503
    assert body_of(health)["name"] == NODE_NAME
    assert body_of(health)["database"] == "unavailable"
    assert health_seconds < OUTAGE_RESPONSE_BOUND
    assert recovered is not None
    assert recovered.code == 200
    assert body_of(recovered) == tweet
    assert health_after.code == 200
    assert [t["tweet"] for t in listing] == ["before the outage"]
