"""GET /search: local search on one node, and network search over real nodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from seventweets.storage.database import Database
from tests.conftest import NODE_NAME, Client, body_of

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


@pytest.mark.parametrize(
    ("content", "expected"),
    [
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
    ],
)
@pytest.mark.gen_test
async def test_content_special_characters_are_plain(
    client: Client, content: str, expected: list[str]
) -> None:
    """Wildcards, backslash, quotes and non-ASCII letters in content match only themselves."""
    for text in (
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
    ):
        await client.post_tweet(text)

    found = await search(client, content=content)

    assert texts(found) == expected


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
    shifted = moment.astimezone(timezone_of(hours=5, minutes=30)).isoformat()
    zulu = moment.replace(tzinfo=None).isoformat() + "Z"

    results = [
        await search(client, **{"from": value}) for value in (naive, shifted, zulu)
    ]

    for found in results:
        assert texts(found) == ["t2", "t1"]


def timezone_of(hours: int, minutes: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=minutes))


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


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
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
    ],
)
@pytest.mark.gen_test
async def test_invalid_parameters_rejected(
    client: Client, query: str, status: int, fragment: str
) -> None:
    """Unparseable or out-of-range parameters get the protocol's status and a reason."""
    response = await client.request("GET", f"/search?{query}")

    assert_error(response, status, fragment)


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
