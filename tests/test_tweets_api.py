"""The tweet API over HTTP against a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import tornado.httputil
import tornado.tcpclient

from seventweets.services.tweets import InsertQueue
from seventweets.storage.database import Database
from tests.conftest import AUTH, JSON, NODE_NAME, TOKEN, Client, body_of

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def assert_error(response, status: int, fragment: str) -> None:
    assert response.code == status, response.body
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = body_of(response)
    assert body["status"] == status
    assert fragment in body["error"], body["error"]


@pytest.mark.gen_test
async def test_post_returns_tweet_object(client: Client) -> None:
    """A posted tweet comes back with every field, a Location header and status 201."""
    response = await client.request(
        "POST", "/tweets", json_body={"tweet": "hello"}, headers=AUTH
    )

    assert response.code == 201
    tweet = body_of(response)
    assert set(tweet) == {"id", "name", "tweet", "created_at", "type", "reference"}
    assert tweet["name"] == NODE_NAME
    assert tweet["tweet"] == "hello"
    assert tweet["type"] == "original"
    assert tweet["reference"] is None
    assert ISO_UTC.match(tweet["created_at"]), tweet["created_at"]
    assert response.headers["Location"] == f"/tweets/{tweet['id']}"
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.gen_test
async def test_get_by_id_and_delete(client: Client) -> None:
    """A tweet can be fetched by id, deleted once with 204, and is 404 afterwards."""
    tweet = await client.post_tweet("to be deleted")

    fetched = await client.request("GET", f"/tweets/{tweet['id']}")
    deleted = await client.request("DELETE", f"/tweets/{tweet['id']}", headers=AUTH)
    again = await client.request("DELETE", f"/tweets/{tweet['id']}", headers=AUTH)
    gone = await client.request("GET", f"/tweets/{tweet['id']}/")

    assert fetched.code == 200
    assert body_of(fetched) == tweet
    assert deleted.code == 204
    assert deleted.body == b""
    assert_error(again, 404, f"tweet {tweet['id']} not found")
    assert_error(gone, 404, "not found")


@pytest.mark.gen_test
async def test_text_stored_exactly(client: Client) -> None:
    """Text keeps surrounding spaces, newlines and characters outside the BMP."""
    text = "  émoji 🐍\nzweite Zeile \u3000"

    tweet = await client.post_tweet(text)
    fetched = body_of(await client.request("GET", f"/tweets/{tweet['id']}"))

    assert fetched["tweet"] == text


@pytest.mark.gen_test
async def test_length_counted_in_code_points(client: Client) -> None:
    """280 code points are accepted even when they take 4 bytes each; 281 are not."""
    at_limit = await client.request(
        "POST", "/tweets", json_body={"tweet": "🐍" * 280}, headers=AUTH
    )
    over_limit = await client.request(
        "POST", "/tweets", json_body={"tweet": "a" * 281}, headers=AUTH
    )

    assert at_limit.code == 201
    assert_error(over_limit, 422, "281 code points")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "'tweet' is missing"),
        ({"tweet": 5}, "must be a string"),
        ({"tweet": None}, "must be a string"),
        ({"tweet": ""}, "must not be blank"),
        ({"tweet": " \t\n\u00a0\u2003\u3000"}, "must not be blank"),
        ({"tweet": "a\x00b"}, "NUL"),
    ],
)
async def test_invalid_tweet_rejected(
    client: Client, body: dict, fragment: str
) -> None:
    """Missing, non-string, blank and NUL-holding text each get a 422 naming the rule."""
    response = await client.request("POST", "/tweets", json_body=body, headers=AUTH)

    assert_error(response, 422, fragment)


@pytest.mark.gen_test
async def test_unpaired_surrogate_rejected(client: Client) -> None:
    """A JSON escape of an unpaired surrogate is well-formed JSON but invalid text."""
    response = await client.request(
        "POST", "/tweets", body='{"tweet": "a\\ud800b"}', headers={**AUTH, **JSON}
    )

    assert_error(response, 422, "unpaired surrogate")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ('{"tweet": NaN}', "not valid JSON"),
        (b'{"tweet": "\xff"}', "not valid UTF-8"),
        ("", "empty"),
    ],
)
async def test_malformed_body_rejected(
    client: Client, body: str | bytes, fragment: str
) -> None:
    """A body that is not a JSON object gets a 400 and stores nothing."""
    response = await client.request(
        "POST", "/tweets", body=body, headers={**AUTH, **JSON}
    )
    listing = await client.request("GET", "/tweets")

    assert_error(response, 400, fragment)
    assert body_of(listing) == []


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
    ],
)
async def test_wrong_media_type_rejected(
    client: Client, content_type: str | None
) -> None:
    """A body without a JSON media type in UTF-8 gets a 415."""
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = await client.request(
        "POST", "/tweets", body='{"tweet": "x"}', headers=headers
    )

    assert_error(response, 415, "")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "application/json; charset=UTF-8",
        "Application/Json;charset=utf8",
    ],
)
async def test_media_type_any_case_accepted(client: Client, content_type: str) -> None:
    """The JSON media type is matched in any letter case, with or without a UTF-8 charset."""
    response = await client.request(
        "POST",
        "/tweets",
        body='{"tweet": "x"}',
        headers={**AUTH, "Content-Type": content_type},
    )

    assert response.code == 201


@pytest.mark.gen_test
async def test_oversized_body_rejected(client: Client) -> None:
    """A body above the 64 KiB default gets a JSON 413."""
    body = '{"tweet": "' + "a" * (70 * 1024) + '"}'

    response = await client.request(
        "POST", "/tweets", body=body, headers={**AUTH, **JSON}
    )

    assert_error(response, 413, "larger than the maximum of 65536 bytes")


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-Api-Token": "wrong"},
        {"Authorization": "Bearer "},
    ],
)
async def test_writes_need_token(client: Client, headers: dict[str, str]) -> None:
    """Posting or deleting without the right token gets a 401 and changes nothing."""
    tweet = await client.post_tweet("keep me")

    post = await client.request(
        "POST", "/tweets", json_body={"tweet": "x"}, headers=headers
    )
    delete = await client.request("DELETE", f"/tweets/{tweet['id']}", headers=headers)
    listing = body_of(await client.request("GET", "/tweets"))

    assert_error(post, 401, "API token")
    assert_error(delete, 401, "API token")
    assert [t["id"] for t in listing] == [tweet["id"]]


@pytest.mark.gen_test
async def test_x_api_token_accepted(client: Client) -> None:
    """The token is accepted in the X-Api-Token header too."""
    response = await client.request(
        "POST", "/tweets", json_body={"tweet": "x"}, headers={"X-Api-Token": TOKEN}
    )

    assert response.code == 201


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        "/tweets/0",
        "/tweets/abc",
        "/tweets/-1",
        "/tweets/99999999999999999999",
        "/tweets/9223372036854775807",
    ],
)
async def test_unknown_tweet_ids_are_404(client: Client, path: str) -> None:
    """Ids that do not exist or cannot exist get a JSON 404, never a 500."""
    response = await client.request("GET", path)

    assert_error(response, 404, "not found")


@pytest.mark.gen_test
async def test_unknown_route_and_method(client: Client) -> None:
    """An unknown path gets a JSON 404 and an unsupported method a JSON 405."""
    missing = await client.request("GET", "/nowhere")
    put = await client.request("PUT", "/tweets", json_body={"tweet": "x"}, headers=AUTH)
    patch = await client.request("PATCH", "/tweets/1", json_body={}, headers=AUTH)

    assert_error(missing, 404, "/nowhere")
    assert_error(put, 405, "PUT")
    assert put.headers["Allow"] == "GET, HEAD, POST"
    assert_error(patch, 405, "PATCH")
    assert patch.headers["Allow"] == "GET, HEAD, DELETE"


@pytest.mark.gen_test
async def test_list_newest_first_with_trailing_slash(client: Client) -> None:
    """GET /tweets and /tweets/ list tweets newest first."""
    ids = [(await client.post_tweet(f"t{i}"))["id"] for i in range(3)]

    plain = body_of(await client.request("GET", "/tweets"))
    slashed = body_of(await client.request("GET", "/tweets/"))

    assert [t["id"] for t in plain] == ids[::-1]
    assert slashed == plain


@pytest.mark.gen_test
async def test_link_header_only_when_older_exist(client: Client) -> None:
    """The next link appears while older tweets exist and is absent on the last page."""
    ids = [(await client.post_tweet(f"t{i}"))["id"] for i in range(4)]

    first = await client.request("GET", "/tweets?limit=2")
    exact = await client.request("GET", "/tweets?limit=4")

    assert [t["id"] for t in body_of(first)] == [ids[3], ids[2]]
    assert 'rel="next"' in first.headers["Link"]
    assert f"max_id={ids[2]}" in first.headers["Link"]
    assert "limit=2" in first.headers["Link"]
    assert "Link" not in exact.headers


@pytest.mark.gen_test
async def test_since_id_and_max_id_bound_selection(client: Client) -> None:
    """since_id and max_id select ids strictly between them, and the link keeps since_id."""
    ids = [(await client.post_tweet(f"t{i}"))["id"] for i in range(6)]

    response = await client.request(
        "GET", f"/tweets?since_id={ids[0]}&max_id={ids[5]}&limit=2"
    )
    page = body_of(response)
    link = response.headers["Link"]

    assert [t["id"] for t in page] == [ids[4], ids[3]]
    assert f"since_id={ids[0]}" in link
    assert f"max_id={ids[3]}" in link


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=",
        "limit=abc",
        "limit=1.5",
        "max_id=-1",
        "since_id=x",
        "max_id=9223372036854775808",
        "since_id=",
        "limit=%EF%BC%91",
    ],
)
async def test_bad_paging_parameters_rejected(client: Client, query: str) -> None:
    """Empty, unparsable or out-of-range paging parameters get a 400."""
    response = await client.request("GET", f"/tweets?{query}")

    assert_error(response, 400, "query parameter")


@pytest.mark.gen_test
async def test_paging_walk_while_writing(client: Client) -> None:
    """Next links visit every tweet once, newest first, while tweets are added and deleted."""
    ids = [(await client.post_tweet(f"t{i}"))["id"] for i in range(25)]
    deleted = {ids[3], ids[10]}
    seen: list[int] = []
    url = "/tweets?limit=7"

    pages = 0
    while url:
        response = await client.request("GET", url)
        seen.extend(t["id"] for t in body_of(response))
        pages += 1
        if pages == 1:
            await client.post_tweet("newer, not in this walk")
            for tweet_id in deleted:
                await client.request("DELETE", f"/tweets/{tweet_id}", headers=AUTH)
        link = response.headers.get("Link")
        url = link[link.index("/tweets") : link.index(">")] if link else ""

    assert pages == 4
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert set(seen) == set(ids) - deleted


@pytest.mark.gen_test
async def test_idempotent_repeat_returns_first_response(client: Client) -> None:
    """A repeat with the same key and body gets the first tweet again and stores nothing."""
    headers = {**AUTH, "Idempotency-Key": "key-1"}

    first = await client.request(
        "POST", "/tweets", json_body={"tweet": "once"}, headers=headers
    )
    second = await client.request(
        "POST", "/tweets", json_body={"tweet": "once"}, headers=headers
    )
    listing = body_of(await client.request("GET", "/tweets"))

    assert first.code == 201
    assert second.code == 201
    assert second.body == first.body
    assert second.headers["Location"] == first.headers["Location"]
    assert len(listing) == 1


@pytest.mark.gen_test
async def test_idempotency_key_with_other_body_conflicts(client: Client) -> None:
    """The same key with a different body gets a 409 and stores nothing more."""
    headers = {**AUTH, "Idempotency-Key": "key-2"}
    await client.request(
        "POST", "/tweets", json_body={"tweet": "first"}, headers=headers
    )

    response = await client.request(
        "POST", "/tweets", json_body={"tweet": "other"}, headers=headers
    )
    listing = body_of(await client.request("GET", "/tweets"))

    assert_error(response, 409, "key-2")
    assert [t["tweet"] for t in listing] == ["first"]


@pytest.mark.gen_test
async def test_idempotent_replay_after_delete(client: Client) -> None:
    """A repeat after the tweet was deleted replays the first response and creates nothing."""
    headers = {**AUTH, "Idempotency-Key": "key-3"}
    first = await client.request(
        "POST", "/tweets", json_body={"tweet": "x"}, headers=headers
    )
    await client.request("DELETE", first.headers["Location"], headers=AUTH)

    again = await client.request(
        "POST", "/tweets", json_body={"tweet": "x"}, headers=headers
    )
    listing = body_of(await client.request("GET", "/tweets"))

    assert again.code == 201
    assert again.body == first.body
    assert listing == []


@pytest.mark.gen_test
async def test_concurrent_posts_get_own_tweets(client: Client) -> None:
    """Forty posts at once, some with equal text, each get a tweet of their own with
    their text, as stored."""
    texts = [f"tweet {index % 10}" for index in range(40)]

    responses = await asyncio.gather(
        *(
            client.request("POST", "/tweets", json_body={"tweet": text}, headers=AUTH)
            for text in texts
        )
    )
    created = [body_of(response) for response in responses]
    stored = [
        body_of(await client.request("GET", f"/tweets/{tweet['id']}"))
        for tweet in created
    ]

    assert [response.code for response in responses] == [201] * 40
    assert len({tweet["id"] for tweet in created}) == 40
    assert [tweet["tweet"] for tweet in created] == texts
    assert stored == created


@pytest.mark.gen_test
async def test_insert_queue_one_statement(database: Database) -> None:
    """Texts queued in one turn of the event loop are inserted in one transaction, and
    each text gets its own row."""
    queue = InsertQueue(database, NODE_NAME)

    results = await asyncio.gather(*(queue.insert(f"t{i % 2}") for i in range(5)))
    tweets = [json.loads(response) for _, response in results]
    async with database.cursor() as cursor:
        await cursor.execute(
            "SELECT count(DISTINCT xmin::text) FROM tweets WHERE id = ANY(%s)",
            ([tweet_id for tweet_id, _ in results],),
        )
        (transactions,) = await cursor.fetchone()

    assert len({tweet_id for tweet_id, _ in results}) == 5
    assert [tweet["id"] for tweet in tweets] == [tweet_id for tweet_id, _ in results]
    assert [tweet["tweet"] for tweet in tweets] == ["t0", "t1", "t0", "t1", "t0"]
    assert transactions == 1


@pytest.mark.gen_test
async def test_concurrent_idempotent_repeats(client: Client) -> None:
    """Ten concurrent posts with one key create one tweet and all get its response."""
    headers = {**AUTH, "Idempotency-Key": "key-concurrent"}

    responses = await asyncio.gather(
        *(
            client.request(
                "POST", "/tweets", json_body={"tweet": "race"}, headers=headers
            )
            for _ in range(10)
        )
    )
    listing = body_of(await client.request("GET", "/tweets"))

    assert {r.code for r in responses} == {201}
    assert len({r.body for r in responses}) == 1
    assert len(listing) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_invalid_idempotency_key_rejected(client: Client, key: str) -> None:
    """An empty, too long or non-printable-ASCII key gets a 400."""
    response = await client.request(
        "POST",
        "/tweets",
        json_body={"tweet": "x"},
        headers={**AUTH, "Idempotency-Key": key},
    )

    assert_error(response, 400, "Idempotency-Key")


@pytest.mark.gen_test
async def test_deeply_nested_json_rejected(client: Client) -> None:
    """JSON nested thousands deep is a 400, not a 500 from the decoder's recursion limit."""
    body = "[" * 5000 + "]" * 5000

    response = await client.request(
        "POST", "/tweets", body=body, headers={**AUTH, **JSON}
    )

    assert_error(response, 400, "nested too deeply")


@pytest.mark.gen_test
async def test_chunked_oversized_body_rejected(client: Client) -> None:
    """A chunked body without Content-Length gets a JSON 413 once it passes 64 KiB."""

    async def produce(write) -> None:
        for _ in range(70):
            await write(b"a" * 1024)

    response = await client.http_client.fetch(
        client.base_url + "/tweets",
        method="POST",
        body_producer=produce,
        headers={**AUTH, **JSON},
        raise_error=False,
    )
    listing = body_of(await client.request("GET", "/tweets"))

    assert_error(response, 413, "larger than the maximum of 65536 bytes")
    assert listing == []


@pytest.mark.gen_test
async def test_stalled_body_connection_closed(app, client: Client, http_port) -> None:
    """The connection of a body that stops arriving is closed once the body timeout
    passes, while bodies that arrived in full are no longer timed."""
    in_flight = app.settings["in_flight"]
    await client.request("POST", "/tweets", json_body={"tweet": "whole"}, headers=AUTH)
    stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", http_port)
    await stream.write(
        b"POST /tweets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    for _ in range(100):
        if in_flight.receiving:
            break
        await asyncio.sleep(0.01)

    closed_early = in_flight.close_stalled(timeout=60)
    closed = in_flight.close_stalled(timeout=0)
    received = await asyncio.wait_for(stream.read_until_close(), 5)

    assert closed_early == 0
    assert closed == 1
    assert received == b""
    assert in_flight.receiving == 0
    assert in_flight.count == 0


@pytest.mark.gen_test
async def test_head_matches_get(client: Client) -> None:
    """HEAD on a route with GET gets GET's status and headers and no body."""
    created = body_of(
        await client.request("POST", "/tweets", json_body={"tweet": "x"}, headers=AUTH)
    )
    path = f"/tweets/{created['id']}"

    get = await client.request("GET", path)
    head = await client.request("HEAD", path)
    missing = await client.request("HEAD", "/tweets/999999")

    assert head.code == 200
    assert head.body == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert missing.code == 404
    assert missing.body == b""


@pytest.mark.gen_test
async def test_head_without_get_is_405(client: Client) -> None:
    """HEAD on a route without GET is a 405 whose Allow header lists neither."""
    response = await client.request("HEAD", "/gossip")

    assert response.code == 405
    assert response.headers["Allow"] == "POST"


@pytest.mark.gen_test
async def test_invented_methods_share_one_label(client: Client) -> None:
    """Requests with invented methods are counted under method="other" in /metrics."""
    for index in range(3):
        await client.request(f"FOO{index}", "/tweets")

    metrics = (await client.request("GET", "/metrics")).body.decode()

    assert "FOO" not in metrics
    assert 'method="other",route="/tweets",status="405"' in metrics


@pytest.mark.gen_test
async def test_path_with_invalid_utf8_is_404(client: Client) -> None:
    """A percent-encoded path segment that is not UTF-8 names no tweet."""
    response = await client.request("GET", "/tweets/%ff")

    assert_error(response, 404, "no resource matches")


@pytest.mark.gen_test
async def test_two_idempotency_keys_rejected(client: Client) -> None:
    """Two Idempotency-Key headers are ambiguous and get a 400 instead of a merged key."""
    headers = tornado.httputil.HTTPHeaders({**AUTH, **JSON})
    headers.add("Idempotency-Key", "x1")
    headers.add("Idempotency-Key", "x2")

    response = await client.http_client.fetch(
        client.base_url + "/tweets",
        method="POST",
        body='{"tweet": "x"}',
        headers=headers,
        raise_error=False,
    )

    assert_error(response, 400, "one Idempotency-Key header")


@pytest.mark.gen_test
async def test_every_route_encodes_tweets_alike(client: Client) -> None:
    """POST, GET by id, the list and a local search return byte-identical tweet objects,
    although PostgreSQL encodes the first three and Python the search results."""
    text = 'quote " backslash \\ tab \t line\u2028sep \x1c émoji 🐍'
    posted = await client.request(
        "POST", "/tweets", json_body={"tweet": text}, headers=AUTH
    )
    tweet_id = body_of(posted)["id"]

    fetched = await client.request("GET", f"/tweets/{tweet_id}")
    listed = await client.request("GET", "/tweets")
    searched = await client.request("GET", "/search?content=backslash")

    assert posted.body == fetched.body
    assert listed.body == b"[" + fetched.body + b"]"
    assert body_of(searched)["tweets"] == [body_of(fetched)]
    assert body_of(fetched)["tweet"] == text
