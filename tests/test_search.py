"""GET /search: local search on one node, and network search over real nodes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from seventweets.gossip import Status
from seventweets.peers import DEFAULT_PEER_TIMEOUT
from seventweets.storage.database import Database
from tests.conftest import AUTH, NODE_NAME, TOKEN, Client, PostgresServer, body_of
from tests.process import NodeProcess, http
from tests.test_retweets import MARGIN, PEER_TIMEOUT, LocalNode, Network

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def assert_error(response, status: int, fragment: str) -> None:
    assert response.code == status, response.body
    body = body_of(response)
    assert body["status"] == status
    assert fragment in body["error"], body["error"]


async def search(client: Client, **params: str | int) -> list[dict]:
    """Run a local search and return its tweets, checking the response shape."""
    response = await client.request("GET", f"/search?{urlencode(params)}")
    assert response.code == 200, response.body
    body = body_of(response)
    assert body["failed"] == []
    return body["tweets"]


def texts(tweets: list[dict]) -> list[str]:
    return [tweet["tweet"] for tweet in tweets]


def unix_seconds(created_at: str) -> str:
    """Return a created_at as exact Unix seconds with six decimals."""
    delta = datetime.fromisoformat(created_at) - EPOCH
    micros = delta // timedelta(microseconds=1)
    return str(Decimal(micros) / 1_000_000)


# -- content ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_content_is_case_insensitive_substring(client: Client) -> None:
    """Content matches anywhere in the text, in any letter case, newest first."""
    for text in ("Hello World", "say hello", "goodbye", "HELLO again"):
        await client.post_tweet(text)

    found = await search(client, content="hello")

    assert texts(found) == ["HELLO again", "say hello", "Hello World"]
    assert all(tweet["name"] == NODE_NAME for tweet in found)
    assert set(found[0]) == {"id", "name", "tweet", "created_at", "type", "reference"}


SPECIAL_TEXTS = (
    "100% sure",
    "1000 sure",
    "snake_case",
    "snakeXcase",
    "back\\slash",
    "back slash",
    'it\'s "quoted"',
    "ÉCOLE normale",
    "naïve café",
    "party 🎉 time",
)

# Content searched for, and the texts of SPECIAL_TEXTS it must find.
SPECIAL_CASES = [
    ("%", ["100% sure"]),
    ("0%", ["100% sure"]),
    ("_", ["snake_case"]),
    ("e_c", ["snake_case"]),
    ("\\", ["back\\slash"]),
    ("\\s", ["back\\slash"]),
    ("'", ['it\'s "quoted"']),
    ('"quoted"', ['it\'s "quoted"']),
    ("école", ["ÉCOLE normale"]),
    ("CAFÉ", ["naïve café"]),
    ("🎉", ["party 🎉 time"]),
    ("%_\\", []),
]


@pytest.mark.gen_test
async def test_content_special_characters_are_plain(client: Client) -> None:
    """Wildcards, backslash, quotes and non-ASCII letters in content match only themselves."""
    for text in SPECIAL_TEXTS:
        await client.post_tweet(text)

    results = [await search(client, content=content) for content, _ in SPECIAL_CASES]

    for (content, expected), found in zip(SPECIAL_CASES, results, strict=True):
        assert texts(found) == expected, f"content={content!r}"


@pytest.mark.gen_test
async def test_content_keeps_surrounding_spaces(client: Client) -> None:
    """Content is searched as sent, so surrounding spaces stay part of the substring."""
    await client.post_tweet("cat nap")
    await client.post_tweet("concatenate")

    found = await search(client, content=" nap")
    spaced = await search(client, content="cat ")

    assert texts(found) == ["cat nap"]
    assert texts(spaced) == ["cat nap"]


@pytest.mark.gen_test
async def test_empty_content_matches_everything(client: Client) -> None:
    """An empty or absent content is no filter."""
    for text in ("one", "two", "three"):
        await client.post_tweet(text)

    with_empty = await search(client, content="")
    without = await search(client)

    assert texts(with_empty) == ["three", "two", "one"]
    assert texts(without) == ["three", "two", "one"]


@pytest.mark.gen_test
async def test_limit_keeps_newest(client: Client) -> None:
    """The limit keeps the newest matches, and 20 is the default."""
    for number in range(25):
        await client.post_tweet(f"tweet {number}")

    three = await search(client, content="tweet", limit=3)
    default = await search(client, content="tweet")

    assert texts(three) == ["tweet 24", "tweet 23", "tweet 22"]
    assert len(default) == 20
    assert default[-1]["tweet"] == "tweet 5"


@pytest.mark.gen_test
async def test_retweet_rows_are_found(client: Client, database: Database) -> None:
    """A stored retweet is found by its text and keeps its type and reference."""
    async with database.cursor() as cursor:
        await cursor.execute(
            "INSERT INTO tweets (tweet, type, reference_name, reference_id)"
            " VALUES ('copied words', 'retweet', 'bob', 3)"
        )

    found = await search(client, content="copied")

    assert len(found) == 1
    assert found[0]["type"] == "retweet"
    assert found[0]["reference"] == {"name": "bob", "id": 3}


# -- time bounds -----------------------------------------------------------------------


@pytest.mark.gen_test
async def test_from_inclusive_to_exclusive(client: Client) -> None:
    """`from` keeps a tweet created at that instant and `to` leaves it out, in ISO and Unix."""
    tweets = [await client.post_tweet(f"t{number}") for number in range(5)]
    start, end = tweets[1]["created_at"], tweets[3]["created_at"]

    iso = await search(client, **{"from": start, "to": end})
    unix = await search(
        client, **{"from": unix_seconds(start), "to": unix_seconds(end)}
    )

    assert texts(iso) == ["t2", "t1"]
    assert texts(unix) == ["t2", "t1"]


@pytest.mark.gen_test
async def test_time_formats_name_same_instant(client: Client) -> None:
    """A time without offset is UTC, other offsets are converted, and `Z` is accepted."""
    tweets = [await client.post_tweet(f"t{number}") for number in range(3)]
    moment = datetime.fromisoformat(tweets[1]["created_at"])
    naive = moment.replace(tzinfo=None).isoformat()
    shifted = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    zulu = moment.replace(tzinfo=None).isoformat() + "Z"

    results = [
        await search(client, **{"from": value}) for value in (naive, shifted, zulu)
    ]

    for found in results:
        assert texts(found) == ["t2", "t1"]


@pytest.mark.gen_test
async def test_fractional_unix_bounds_round_up(client: Client) -> None:
    """Unix seconds finer than a microsecond keep exact `>=` and `<` semantics."""
    tweets = [await client.post_tweet(f"t{number}") for number in range(3)]
    middle = unix_seconds(tweets[1]["created_at"])
    just_before = str(Decimal(middle) - Decimal("0.0000004"))
    just_after = str(Decimal(middle) + Decimal("0.0000004"))

    from_before = await search(client, **{"from": just_before})
    from_after = await search(client, **{"from": just_after})
    to_after = await search(client, **{"to": just_after})
    to_before = await search(client, **{"to": just_before})

    assert texts(from_before) == ["t2", "t1"]
    assert texts(from_after) == ["t2"]
    assert texts(to_after) == ["t1", "t0"]
    assert texts(to_before) == ["t0"]


@pytest.mark.gen_test
async def test_fractional_iso_bounds_round_up(client: Client) -> None:
    """ISO times with digits beyond microseconds round up like Unix seconds do."""
    tweets = [await client.post_tweet(f"t{number}") for number in range(3)]
    # created_at ends in "+00:00"; one more digit after the microseconds is a time
    # later than the tweet by less than a microsecond.
    just_after = tweets[1]["created_at"][:-6] + "4+00:00"
    exactly = tweets[1]["created_at"][:-6] + "0000+00:00"

    from_after = await search(client, **{"from": just_after})
    to_after = await search(client, **{"to": just_after})
    from_exactly = await search(client, **{"from": exactly})

    assert texts(from_after) == ["t2"]
    assert texts(to_after) == ["t1", "t0"]
    assert texts(from_exactly) == ["t2", "t1"]


@pytest.mark.gen_test
async def test_bounds_combine_with_content(client: Client) -> None:
    """Time bounds and content filter together, and an empty range finds nothing."""
    tweets = [
        await client.post_tweet(text) for text in ("apple", "banana", "apple pie")
    ]
    start = tweets[1]["created_at"]

    found = await search(client, content="APPLE", **{"from": start})
    empty = await search(client, **{"from": start, "to": start})

    assert texts(found) == ["apple pie"]
    assert empty == []


# -- invalid parameters ----------------------------------------------------------------


# Query string, expected status and a fragment of the expected error message.
INVALID_QUERIES = [
    ("from=", 400, "'from' is empty"),
    ("to=yesterday", 400, "'to' must be an ISO 8601 time"),
    ("from=2026-13-01", 400, "'from' must be an ISO 8601 time"),
    ("from=1e9", 400, "'from' must be an ISO 8601 time"),
    ("to=99999999999999999", 400, "'to' must be an ISO 8601 time"),
    ("limit=0", 400, "'limit' must be from 1 to 100"),
    ("limit=101", 400, "'limit' must be from 1 to 100"),
    ("limit=", 400, "'limit' is empty"),
    ("scope=everywhere", 400, "'scope' must be 'local' or 'network'"),
    ("scope=", 400, "'scope' must be 'local' or 'network'"),
    ("content=%00", 422, "NUL"),
    ("content=%FF", 400, "not valid UTF-8"),
    ("content=" + "x" * 281, 400, "maximum is 280"),
]


@pytest.mark.gen_test
async def test_invalid_parameters_rejected(client: Client) -> None:
    """Unparseable or out-of-range parameters get the protocol's status and a reason."""
    responses = [
        await client.request("GET", f"/search?{query}")
        for query, _, _ in INVALID_QUERIES
    ]

    for (query, status, fragment), response in zip(
        INVALID_QUERIES, responses, strict=True
    ):
        assert response.code == status, f"{query}: {response.body!r}"
        body = body_of(response)
        assert body["status"] == status, query
        assert fragment in body["error"], f"{query}: {body['error']}"


@pytest.mark.gen_test
async def test_trailing_slash_and_json_body(client: Client) -> None:
    """/search/ is the same route, and the body is a JSON object with both fields."""
    await client.post_tweet("slash")

    response = await client.request("GET", "/search/?content=slash")

    assert response.code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(response.body)
    assert set(body) == {"tweets", "failed"}
    assert texts(body["tweets"]) == ["slash"]


@pytest.mark.gen_test
async def test_migration_creates_search_indexes(database: Database) -> None:
    """The trigram and time indexes exist after migration on a server with pg_trgm."""
    async with database.cursor() as cursor:
        await cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tweets' ORDER BY 1"
        )
        names = [row[0] for row in await cursor.fetchall()]

    assert "tweets_tweet_trgm_idx" in names
    assert "tweets_created_at_id_idx" in names


@pytest.mark.gen_test
async def test_trigram_index_has_short_pending_list(database: Database) -> None:
    """The trigram index merges its pending list at 256 kB, not the 4 MB default."""
    async with database.cursor() as cursor:
        await cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'tweets_tweet_trgm_idx'"
        )
        (options,) = await cursor.fetchone()

    assert options == ["gin_pending_list_limit=256"]


@pytest.mark.gen_test
async def test_missing_trigram_index_warns_once(
    client: Client, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the trigram index search still works and the node warns at its first search."""
    async with database.cursor() as cursor:
        await cursor.execute("DROP INDEX tweets_tweet_trgm_idx")
    await client.post_tweet("scan me")

    first = await search(client, content="scan")
    second = await search(client, content="scan")

    assert texts(first) == ["scan me"]
    assert texts(second) == ["scan me"]
    warnings = [
        r.message for r in caplog.records if "search index missing" in r.message
    ]
    assert len(warnings) == 1


# -- network search over nodes in this loop --------------------------------------------


class ForeignPeerHandler(tornado.web.RequestHandler):
    """/search of a node written by another team: returns the body the test sets."""

    def initialize(self, peer: ForeignPeer) -> None:
        self.peer = peer

    async def get(self) -> None:
        self.peer.queries.append(
            {
                key: self.get_query_argument(key, strip=False)
                for key in self.request.arguments
            }
        )
        if self.peer.delay:
            await asyncio.sleep(self.peer.delay)
        self.set_status(self.peer.status)
        self.set_header("Content-Type", "application/json")
        self.finish(self.peer.body)


class ForeignPeer:
    """An HTTP server on 127.0.0.1 that plays a member of another implementation."""

    def __init__(
        self, body: bytes | str, status: int = 200, delay: float = 0.0
    ) -> None:
        self.body = body
        self.status = status
        self.delay = delay
        self.queries: list[dict[str, str]] = []
        sock, port = tornado.testing.bind_unused_port()
        self.address = f"http://127.0.0.1:{port}"
        app = tornado.web.Application(
            [(r"/search", ForeignPeerHandler, {"peer": self})],
            log_function=lambda handler: None,
        )
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets([sock])

    async def register(self, network: Network, node: LocalNode, name: str) -> None:
        """Join ``node``'s member table as ``name`` through its registry API."""
        response = await network.request(
            "POST",
            f"{node.address}/registry",
            {"name": name, "address": self.address, "incarnation": 1},
        )
        assert response.code == 201, response.body

    async def stop(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()


@pytest.fixture
def network(io_loop: Any, pg_server: PostgresServer) -> Iterator[Network]:
    net = Network(pg_server)
    yield net
    io_loop.run_sync(net.stop)


@pytest.fixture
def foreign_peers(io_loop: Any) -> Iterator[list[ForeignPeer]]:
    peers: list[ForeignPeer] = []
    yield peers
    for peer in peers:
        io_loop.run_sync(peer.stop)


async def network_search(
    network: Network, node: LocalNode, **params: str | int
) -> dict[str, Any]:
    query = urlencode({"scope": "network", **params})
    response = await network.request("GET", f"{node.address}/search?{query}")
    assert response.code == 200, response.body
    return json.loads(response.body)


@pytest.mark.gen_test(timeout=20)
async def test_network_merges_three_nodes(network: Network) -> None:
    """Tweets of three nodes come back in one created_at order, limited after the merge."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    carol = await network.start("carol", seeds=[alice.address])
    posted = []
    for number in range(9):
        node = (alice, bob, carol)[number % 3]
        posted.append(await network.post_tweet(node.address, f"news {number}"))
    await network.post_tweet(bob.address, "unrelated")
    # Bob joined before carol, so he learns her address in one gossip round with alice.
    await bob.gossiper.run_round()

    everything = await network_search(network, alice, content="NEWS")
    limited = await network_search(network, bob, content="news", limit=4)

    assert everything["failed"] == []
    assert texts(everything["tweets"]) == [f"news {n}" for n in range(8, -1, -1)]
    assert [t["name"] for t in everything["tweets"][:3]] == ["carol", "bob", "alice"]
    assert everything["tweets"][0] == posted[8]
    assert texts(limited["tweets"]) == ["news 8", "news 7", "news 6", "news 5"]


@pytest.mark.gen_test(timeout=20)
async def test_network_forwards_bounds_as_local(
    network: Network, foreign_peers: list[ForeignPeer]
) -> None:
    """Members get scope=local with the same content, limit and time bounds."""
    alice = await network.start("alice")
    foreign = ForeignPeer(json.dumps({"tweets": [], "failed": []}))
    foreign_peers.append(foreign)
    await foreign.register(network, alice, "dora")

    await network_search(
        network,
        alice,
        content=" 50% of_é\\ ",
        limit=7,
        **{"from": "1733323846.5", "to": "2026-12-04T15:00:00+01:00"},
    )

    assert foreign.queries == [
        {
            "scope": "local",
            "content": " 50% of_é\\ ",
            "limit": "7",
            "from": "2024-12-04T14:50:46.500000+00:00",
            "to": "2026-12-04T14:00:00+00:00",
        }
    ]


@pytest.mark.gen_test(timeout=20)
async def test_network_parses_foreign_times(
    network: Network, foreign_peers: list[ForeignPeer]
) -> None:
    """Times of other formats are parsed for the merge and rewritten in this node's form."""
    alice = await network.start("alice")
    mine = await network.post_tweet(alice.address, "mine")
    now = datetime.fromisoformat(mine["created_at"])
    later = (now + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2)))
    earlier = now - timedelta(seconds=1)
    foreign = ForeignPeer(
        json.dumps(
            {
                "tweets": [
                    foreign_tweet(5, "dora", later.isoformat(timespec="seconds")),
                    foreign_tweet(4, "dora", earlier.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
                ]
            }
        )
    )
    foreign_peers.append(foreign)
    await foreign.register(network, alice, "dora")

    result = await network_search(network, alice)

    assert result["failed"] == []
    assert [(t["name"], t["id"]) for t in result["tweets"]] == [
        ("dora", 5),
        ("alice", mine["id"]),
        ("dora", 4),
    ]
    expected_later = later.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    assert result["tweets"][0]["created_at"] == expected_later
    assert result["tweets"][2]["created_at"] == earlier.isoformat()


def foreign_tweet(tweet_id: int, name: str, created_at: str) -> dict[str, Any]:
    return {
        "id": tweet_id,
        "name": name,
        "tweet": f"foreign {tweet_id}",
        "created_at": created_at,
        "type": "original",
        "reference": None,
        "likes": 3,
    }


@pytest.mark.gen_test
async def test_network_ties_order_by_name_then_id(
    network: Network, foreign_peers: list[ForeignPeer]
) -> None:
    """Tweets created at the same instant sort by name ascending, then id descending."""
    alice = await network.start("alice")
    instant = "2026-01-01T00:00:00+00:00"
    for name in ("erin", "dora"):
        body = json.dumps(
            {
                "tweets": [
                    foreign_tweet(9, name, instant),
                    foreign_tweet(2, name, instant),
                ]
            }
        )
        foreign = ForeignPeer(body)
        foreign_peers.append(foreign)
        await foreign.register(network, alice, name)

    result = await network_search(network, alice)

    assert [(t["name"], t["id"]) for t in result["tweets"]] == [
        ("dora", 9),
        ("dora", 2),
        ("erin", 9),
        ("erin", 2),
    ]


def malformed_cases() -> list[tuple[str, int, str]]:
    """Return (body, status, error fragment) of broken members; NAME is the member's name."""
    day = "2026-01-01T00:00:00"
    surrogate = (
        '{"tweets": [{"id": 1, "name": "NAME", "tweet": "\\ud800",'
        f' "created_at": "{day}", "type": "original", "reference": null}}]}}'
    )
    return [
        ("<html>oops</html>", 200, "not valid JSON"),
        ("[" * 100_000, 200, "not valid JSON"),
        ("x" * 2_000_000, 200, "larger than 1048576 bytes"),
        (json.dumps([]), 200, "without a 'tweets' array"),
        (json.dumps({"tweets": {}}), 200, "without a 'tweets' array"),
        (json.dumps({"tweets": [1]}), 200, "tweets[0]: it is not an object"),
        (tweets_body(foreign_tweet(1, "erin", day)), 200, "its name is 'erin'"),
        (
            tweets_body(foreign_tweet(1, "NAME", "yesterday")),
            200,
            "'created_at' 'yesterday' is not an ISO 8601 time",
        ),
        (tweets_body(foreign_tweet(0, "NAME", day)), 200, "'id' 0 is out of range"),
        (
            tweets_body({**foreign_tweet(1, "NAME", day), "tweet": None}),
            200,
            "'tweet' is not a string",
        ),
        (surrogate, 200, "unpaired surrogate"),
        (
            tweets_body({**foreign_tweet(1, "NAME", day), "tweet": " \u3000 "}),
            200,
            "must not be blank",
        ),
        (
            tweets_body({**foreign_tweet(1, "NAME", day), "tweet": "a" * 5000}),
            200,
            "5000 code points long",
        ),
        (
            tweets_body({**foreign_tweet(1, "NAME", day), "type": "retweet"}),
            200,
            "'type' and 'reference'",
        ),
        (json.dumps({"error": "database is down", "status": 503}), 503, "status 503"),
        ("not found", 404, "returned status 404"),
    ]


def tweets_body(*tweets: dict[str, Any]) -> str:
    return json.dumps({"tweets": list(tweets), "failed": []})


@pytest.mark.gen_test(timeout=20)
async def test_network_lists_malformed_peers(
    network: Network, foreign_peers: list[ForeignPeer]
) -> None:
    """Each member's malformed or failed response is listed in failed, never a 500."""
    alice = await network.start("alice")
    await network.post_tweet(alice.address, "still here")
    cases = malformed_cases()
    names = [f"peer{index:02}" for index in range(len(cases))]
    for name, (body, status, _) in zip(names, cases, strict=True):
        foreign = ForeignPeer(body.replace("NAME", name), status)
        foreign_peers.append(foreign)
        await foreign.register(network, alice, name)

    result = await network_search(network, alice)

    assert texts(result["tweets"]) == ["still here"]
    assert [entry["name"] for entry in result["failed"]] == names
    for (body, _, fragment), entry in zip(cases, result["failed"], strict=True):
        assert fragment in entry["error"], f"{body[:60]!r}: {entry['error']}"


@pytest.mark.gen_test
async def test_network_slow_peer_times_out(
    network: Network, foreign_peers: list[ForeignPeer]
) -> None:
    """A member slower than the peer timeout is listed as timed out, in bounded time."""
    alice = await network.start("alice")
    bob = await network.start("bob", seeds=[alice.address])
    await network.post_tweet(bob.address, "from bob")
    slow = ForeignPeer(json.dumps({"tweets": []}), delay=3.0)
    foreign_peers.append(slow)
    await slow.register(network, alice, "dora")

    started = time.monotonic()
    result = await network_search(network, alice)
    elapsed = time.monotonic() - started

    assert texts(result["tweets"]) == ["from bob"]
    assert result["failed"] == [{"name": "dora", "error": "timed out after 0.5 s"}]
    assert PEER_TIMEOUT <= elapsed < PEER_TIMEOUT + MARGIN


@pytest.mark.gen_test(timeout=20)
async def test_network_skips_dead_members(network: Network) -> None:
    """With every other member dead the node returns its own tweets without waiting."""
    alice = await network.start("alice")
    alice.gossiper.start()
    peers = [
        await network.start(name, seeds=[alice.address]) for name in ("bob", "carol")
    ]
    await network.post_tweet(alice.address, "alone")
    for peer in peers:
        await peer.stop_serving()
    await wait_until(
        lambda: all(
            alice.gossiper.member(peer.name).status is Status.DEAD for peer in peers
        ),
        timeout=10,
    )

    started = time.monotonic()
    result = await network_search(network, alice)
    elapsed = time.monotonic() - started

    assert texts(result["tweets"]) == ["alone"]
    assert result["failed"] == []
    assert elapsed < 0.2


async def wait_until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.05)


# -- network search over real processes ------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.kill()


@pytest.mark.slow
def test_network_survives_sigkill(
    pg_server: PostgresServer, processes: list[NodeProcess]
) -> None:
    """A member killed with SIGKILL is listed in failed while the others' tweets arrive."""

    def start(name: str, *seed: str) -> NodeProcess:
        node = NodeProcess(
            "--name", name, "--port", "0", "--token", TOKEN, "--gossip-interval", "1.0",
            "--db", pg_server.create_database(), *seed,
        )  # fmt: skip
        processes.append(node)
        return node

    alice = start("alice")
    alice_address = alice.wait_ready()
    bob, carol = (
        start("bob", "--seed", alice_address),
        start("carol", "--seed", alice_address),
    )
    for node in (alice, bob, carol):
        http(
            "POST",
            f"{node.wait_ready()}/tweets",
            {"tweet": f"hi from {node.args[1]}"},
            AUTH,
        )
    carol.kill()

    started = time.monotonic()
    status, _, body = http("GET", f"{alice_address}/search?scope=network&content=hi")
    elapsed = time.monotonic() - started

    assert status == 200, body
    assert texts(body["tweets"]) == ["hi from bob", "hi from alice"]
    assert [entry["name"] for entry in body["failed"]] == ["carol"]
    assert "connection failed" in body["failed"][0]["error"], body["failed"]
    assert elapsed < DEFAULT_PEER_TIMEOUT + MARGIN
