"""POST /retweets between real nodes, each with its own database, gossiper and server.

``Network`` runs full nodes in the test's event loop. They learn each other by joining
through a seed, and their gossip loops stay off, so no member changes status unless a
test makes it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing
import tornado.web
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from seventweets.app import make_app
from seventweets.gossip import GossipConfig, Gossiper, Status
from seventweets.metrics import NodeMetrics
from seventweets.peers import PeerClient
from seventweets.services.retweets import RetweetService
from seventweets.services.search import SearchService
from seventweets.services.tweets import TweetService
from seventweets.storage.database import Database
from seventweets.storage.migrations import migrate
from tests.conftest import AUTH, TOKEN, PostgresServer
from tests.process import NodeProcess

# Seconds a node under test waits for a peer: short, so timeout tests stay fast.
PEER_TIMEOUT = 0.5
# Seconds of scheduling slack allowed on top of a timeout on this shared machine.
MARGIN = 0.5


class LocalNode:
    """A full node served from the test's event loop."""

    def __init__(
        self,
        name: str,
        address: str,
        database: Database,
        gossiper: Gossiper,
        peers: PeerClient,
        server: tornado.httpserver.HTTPServer,
    ) -> None:
        self.name = name
        self.address = address
        self.database = database
        self.gossiper = gossiper
        self.peers = peers
        self.server = server
        self.serving = True

    @classmethod
    async def start(
        cls,
        pg_server: PostgresServer,
        name: str,
        seeds: Iterable[str] = (),
        peer_timeout: float = PEER_TIMEOUT,
    ) -> LocalNode:
        database = await Database.connect(pg_server.create_database())
        await migrate(database)
        sock, port = tornado.testing.bind_unused_port()
        address = f"http://127.0.0.1:{port}"
        metrics = NodeMetrics()
        gossiper = Gossiper(
            name=name,
            address=address,
            seeds=list(seeds),
            config=GossipConfig.fast(),
            metrics=metrics,
        )
        peers = PeerClient(peer_timeout)
        app = make_app(
            name=name,
            token=TOKEN,
            database=database,
            tweets=TweetService(database, name),
            gossiper=gossiper,
            metrics=metrics,
            retweets=RetweetService(database, name, gossiper, peers),
            search=SearchService(database, name, gossiper, peers),
        )
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([sock])
        await gossiper.join()
        return cls(name, address, database, gossiper, peers, server)

    async def stop_serving(self) -> None:
        """Close the port at once, as a crashed node does, so connections are refused."""
        if self.serving:
            self.serving = False
            self.server.stop()
            await self.server.close_all_connections()

    async def stop(self) -> None:
        await self.stop_serving()
        self.gossiper.stop()
        self.peers.close()
        await self.database.close()

    async def count_retweets(self) -> int:
        async with self.database.cursor() as cursor:
            await cursor.execute("SELECT count(*) FROM tweets WHERE type = 'retweet'")
            row = await cursor.fetchone()
        return int(row[0])


class Network:
    """Nodes started by one test, and an HTTP client to reach them."""

    def __init__(self, pg_server: PostgresServer) -> None:
        self.pg_server = pg_server
        self.nodes: list[LocalNode] = []
        self.processes: list[NodeProcess] = []
        self.client = SimpleAsyncHTTPClient(force_instance=True, max_clients=64)

    async def start(
        self, name: str, seeds: Iterable[str] = (), **options: Any
    ) -> LocalNode:
        node = await LocalNode.start(self.pg_server, name, seeds, **options)
        self.nodes.append(node)
        return node

    async def start_process(self, name: str, seed: str) -> str:
        """Start a real ``seventweets`` process joined through ``seed``, return its address.

        The wait runs in a thread because this loop must serve the seed meanwhile.
        """
        node = NodeProcess(
            "--name", name, "--port", "0", "--token", TOKEN, "--seed", seed,
            "--db", self.pg_server.create_database(), "--gossip-interval", "1.0",
        )  # fmt: skip
        self.processes.append(node)
        return await asyncio.get_running_loop().run_in_executor(None, node.wait_ready)

    async def request(
        self,
        method: str,
        url: str,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> tornado.httpclient.HTTPResponse:
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers["Content-Type"] = "application/json"
        return await self.client.fetch(
            url,
            method=method,
            body=body,
            headers=all_headers,
            raise_error=False,
            request_timeout=30,
        )

    async def post_tweet(self, address: str, text: str) -> dict[str, Any]:
        response = await self.request(
            "POST", f"{address}/tweets", {"tweet": text}, AUTH
        )
        assert response.code == 201, response.body
        return json.loads(response.body)

    async def retweet(
        self, node: LocalNode, origin: str, tweet_id: Any
    ) -> tornado.httpclient.HTTPResponse:
        return await self.request(
            "POST", f"{node.address}/retweets", {"name": origin, "id": tweet_id}, AUTH
        )

    async def stop(self) -> None:
        for process in self.processes:
            if process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)
            process.kill()
        for node in self.nodes:
            await node.stop()
        self.client.close()


@pytest.fixture
def network(io_loop: Any, pg_server: PostgresServer) -> Iterator[Network]:
    net = Network(pg_server)
    yield net
    io_loop.run_sync(net.stop)


def body_of(response: tornado.httpclient.HTTPResponse) -> Any:
    return json.loads(response.body)


def assert_error(response, status: int, fragment: str) -> None:
    assert response.code == status, response.body
    body = body_of(response)
    assert body["status"] == status
    assert fragment in body["error"], body["error"]


# -- retweets between two nodes --------------------------------------------------------


@pytest.mark.gen_test
async def test_retweet_copies_original(network: Network) -> None:
    """A retweet stores the original's text and a reference, and can be fetched by id."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "Grüße aus Wien 🎻")

    response = await network.retweet(bob, "alice", original["id"])

    assert response.code == 201, response.body
    retweet = body_of(response)
    assert retweet["name"] == "bob"
    assert retweet["type"] == "retweet"
    assert retweet["tweet"] == "Grüße aus Wien 🎻"
    assert retweet["reference"] == {"name": "alice", "id": original["id"]}
    assert response.headers["Location"] == f"/tweets/{retweet['id']}"
    fetched = await network.request("GET", f"{bob.address}/tweets/{retweet['id']}")
    assert body_of(fetched) == retweet


@pytest.mark.gen_test
async def test_repeat_returns_first_retweet(network: Network) -> None:
    """Retweeting the same original again returns the first retweet with 200."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "once only")
    first = await network.retweet(bob, "alice", original["id"])

    second = await network.retweet(bob, "alice", original["id"])

    assert first.code == 201
    assert second.code == 200, second.body
    assert body_of(second) == body_of(first)
    assert await bob.count_retweets() == 1


@pytest.mark.gen_test
async def test_repeat_needs_no_origin(network: Network) -> None:
    """A repeated retweet is returned from the local row even when the origin is down."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "kept here")
    first = await network.retweet(bob, "alice", original["id"])
    await alice.stop_serving()

    second = await network.retweet(bob, "alice", original["id"])

    assert second.code == 200, second.body
    assert body_of(second) == body_of(first)


@pytest.mark.gen_test
async def test_concurrent_repeats_store_one_row(network: Network) -> None:
    """Ten retweets of one original sent at once create one row: one 201, nine 200."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "race me")

    responses = await asyncio.gather(
        *(network.retweet(bob, "alice", original["id"]) for _ in range(10))
    )

    codes = sorted(response.code for response in responses)
    assert codes == [200] * 9 + [201], [r.body for r in responses]
    ids = {body_of(response)["id"] for response in responses}
    assert len(ids) == 1
    assert await bob.count_retweets() == 1


@pytest.mark.gen_test
async def test_deleted_retweet_can_be_redone(network: Network) -> None:
    """Deleting a retweet lets the same original be retweeted again as a new tweet."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "again")
    first = body_of(await network.retweet(bob, "alice", original["id"]))
    deleted = await network.request(
        "DELETE", f"{bob.address}/tweets/{first['id']}", headers=AUTH
    )

    again = await network.retweet(bob, "alice", original["id"])

    assert deleted.code == 204
    assert again.code == 201, again.body
    assert body_of(again)["id"] > first["id"]
    assert await bob.count_retweets() == 1


@pytest.mark.gen_test
async def test_database_rejects_second_retweet_row(network: Network) -> None:
    """The unique index, not only the service, keeps a second row for one original out."""
    bob = await network.start("bob")
    insert = (
        "INSERT INTO tweets (tweet, type, reference_name, reference_id)"
        " VALUES ('x', 'retweet', 'alice', 1)"
    )
    async with bob.database.cursor() as cursor:
        await cursor.execute(insert)

    with pytest.raises(Exception, match="tweets_retweet_reference_key"):
        async with bob.database.cursor() as cursor:
            await cursor.execute(insert)

    assert await bob.count_retweets() == 1


@pytest.mark.gen_test
async def test_retweet_of_own_tweet(network: Network) -> None:
    """A node can retweet its own tweet, read from its own database."""
    bob = await network.start("bob")
    original = await network.post_tweet(bob.address, "my own words")

    response = await network.retweet(bob, "bob", original["id"])

    assert response.code == 201, response.body
    assert body_of(response)["reference"] == {"name": "bob", "id": original["id"]}
    assert body_of(response)["tweet"] == "my own words"


# -- errors ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_missing_original_is_404(network: Network) -> None:
    """A tweet id the origin does not have is a 404 that names the origin."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])

    response = await network.retweet(bob, "alice", 999)
    own = await network.retweet(bob, "bob", 999)

    assert_error(response, 404, "tweet 999 not found on 'alice'")
    assert_error(own, 404, "tweet 999 not found on 'bob'")
    assert await bob.count_retweets() == 0


@pytest.mark.gen_test
async def test_unknown_or_left_member_is_422(network: Network) -> None:
    """A name that is not a live member is a 422, for an unknown and for a left member."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "gone soon")

    unknown = await network.retweet(bob, "carol", 1)
    await alice.gossiper.leave()
    left_status = bob.gossiper.member("alice").status
    left = await network.retweet(bob, "alice", original["id"])

    assert_error(unknown, 422, "no live member is named 'carol'")
    assert left_status is Status.LEFT
    assert_error(left, 422, "no live member is named 'alice'")


@pytest.mark.gen_test
async def test_stopped_origin_is_prompt_502(network: Network) -> None:
    """An origin whose port refuses connections gives a 502 at once."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    original = await network.post_tweet(alice.address, "unreachable")
    await alice.stop_serving()

    started = time.monotonic()
    response = await network.retweet(bob, "alice", original["id"])
    elapsed = time.monotonic() - started

    assert_error(response, 502, "origin 'alice' failed on GET /tweets/")
    assert elapsed < PEER_TIMEOUT
    assert await bob.count_retweets() == 0


@pytest.mark.gen_test(timeout=30)
async def test_hanging_origin_is_504_in_time(network: Network) -> None:
    """An origin process stopped with SIGSTOP gives a 504 once the peer timeout passes."""
    bob = await network.start("bob")
    carol_address = await network.start_process("carol", seed=bob.address)
    original = await network.post_tweet(carol_address, "frozen")
    network.processes[0].process.send_signal(signal.SIGSTOP)

    started = time.monotonic()
    response = await network.retweet(bob, "carol", original["id"])
    elapsed = time.monotonic() - started

    assert_error(response, 504, f"did not respond to GET /tweets/{original['id']}")
    assert "timed out after 0.5 s" in body_of(response)["error"]
    assert PEER_TIMEOUT <= elapsed < PEER_TIMEOUT + MARGIN
    assert await bob.count_retweets() == 0


# Request body and a fragment of the expected 422 error message.
INVALID_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"id": 1}, "field 'name' is missing"),
    ({"name": "alice"}, "field 'id' is missing"),
    ({"name": 7, "id": 1}, "must be a string"),
    ({"name": "Alice!", "id": 1}, "is invalid"),
    ({"name": "alice", "id": "1"}, "field 'id' must be an integer"),
    ({"name": "alice", "id": True}, "field 'id' must be an integer"),
    ({"name": "alice", "id": 1.0}, "field 'id' must be an integer"),
    ({"name": "alice", "id": 0}, "field 'id' must be from 1"),
    ({"name": "alice", "id": 2**63}, "field 'id' must be from 1"),
]


@pytest.mark.gen_test
async def test_invalid_body_is_422(network: Network) -> None:
    """A body without a valid member name and tweet id is rejected before any fetch."""
    bob = await network.start("bob")

    responses = [
        await network.request("POST", f"{bob.address}/retweets", payload, AUTH)
        for payload, _ in INVALID_BODIES
    ]

    for (payload, fragment), response in zip(INVALID_BODIES, responses, strict=True):
        assert response.code == 422, f"{payload}: {response.body!r}"
        assert fragment in body_of(response)["error"], f"{payload}: {response.body!r}"


@pytest.mark.gen_test
async def test_credentials_and_json_required(network: Network) -> None:
    """A retweet needs the API token and a JSON object body, like every tweet write."""
    bob = await network.start("bob")

    anonymous = await network.request(
        "POST", f"{bob.address}/retweets/", {"name": "bob", "id": 1}
    )
    not_json = await network.request(
        "POST",
        f"{bob.address}/retweets",
        body="{",
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert_error(anonymous, 401, "missing API token")
    assert_error(not_json, 400, "not valid JSON")


class FixedResponseHandler(tornado.web.RequestHandler):
    """Any GET of a node of another implementation: the status and body the test sets."""

    def initialize(self, status: int, body: str) -> None:
        self.status = status
        self.body = body

    def get(self, path: str) -> None:
        self.set_status(self.status)
        self.set_header("Content-Type", "application/json")
        self.finish(self.body)


# Response of a broken origin to GET /tweets/1, and a fragment of the expected 502 error.
# NAME stands for the origin's member name.
BROKEN_ORIGINS = [
    (
        500,
        '{"error": "disk full", "status": 500}',
        "returned status 500 for GET /tweets/1",
    ),
    (200, "not json", "not valid JSON"),
    (200, "[1]", "a body that is not a JSON object"),
    (
        200,
        '{"id": 2, "name": "NAME", "tweet": "x"}',
        "the tweet 2 of 'origin3' instead",
    ),
    (200, '{"id": 1, "name": "erin", "tweet": "x"}', "the tweet 1 of 'erin' instead"),
    (200, '{"id": 1, "name": "NAME", "tweet": 5}', "'tweet' is not a string"),
    (200, '{"id": 1, "name": "NAME", "tweet": "a\\u0000b"}', "NUL"),
    (200, '{"id": 1, "name": "NAME", "tweet": "   "}', "must not be blank"),
    (
        200,
        json.dumps({"id": 1, "name": "NAME", "tweet": "x" * 281}),
        "281 code points long; the maximum is 280",
    ),
]


@pytest.mark.gen_test(timeout=20)
async def test_broken_origin_is_502(network: Network) -> None:
    """An origin that fails or returns something other than the tweet gives a 502."""
    bob = await network.start("bob")
    servers = []
    names = [f"origin{index}" for index in range(len(BROKEN_ORIGINS))]
    for name, (status, body, _) in zip(names, BROKEN_ORIGINS, strict=True):
        sock, port = tornado.testing.bind_unused_port()
        handler_args = {"status": status, "body": body.replace("NAME", name)}
        app = tornado.web.Application(
            [(r"/(.*)", FixedResponseHandler, handler_args)],
            log_function=lambda handler: None,
        )
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([sock])
        servers.append(server)
        member = {"name": name, "address": f"http://127.0.0.1:{port}", "incarnation": 1}
        joined = await network.request("POST", f"{bob.address}/registry", member)
        assert joined.code == 201, joined.body

    responses = [await network.retweet(bob, name, 1) for name in names]

    for server in servers:
        server.stop()
    for (_, body, fragment), response in zip(BROKEN_ORIGINS, responses, strict=True):
        assert response.code == 502, f"{body[:40]}: {response.body!r}"
        assert fragment in body_of(response)["error"], f"{body[:40]}: {response.body!r}"
    assert await bob.count_retweets() == 0
