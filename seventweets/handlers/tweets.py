"""Routes of the tweets stored on this node: list, fetch, post and delete."""

from __future__ import annotations

from urllib.parse import urlencode

from seventweets.errors import BadRequestError, NotFoundError
from seventweets.handlers.base import JsonHandler
from seventweets.services.tweets import TweetService

MAX_ID = 2**63 - 1


def parse_tweet_id(raw: str) -> int:
    """Return the id in a tweet path; any id that cannot exist is a 404, not a 400."""
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(raw) > 19
        or not 0 < int(raw) <= MAX_ID
    ):
        raise NotFoundError(f"tweet {raw!r} not found; ids are positive integers")
    return int(raw)


class TweetListHandler(JsonHandler):
    route = "/tweets"
    tweets: TweetService
    token: str

    async def get(self) -> None:
        limit = self.query_int("limit", 1, 100, default=20)
        max_id = self.query_int("max_id", 0, MAX_ID)
        since_id = self.query_int("since_id", 0, MAX_ID)

        page = await self.tweets.list_json(limit, max_id, since_id)

        if page.next_max_id is not None:
            query = {"limit": limit, "max_id": page.next_max_id}
            if since_id is not None:
                query["since_id"] = since_id
            url = f"{self.request.protocol}://{self.request.host}/tweets?{urlencode(query)}"
            self.set_header("Link", f'<{url}>; rel="next"')
        self.finish(page.body)

    async def post(self) -> None:
        self.require_token(self.token)
        keys = self.request.headers.get_list("Idempotency-Key")
        if len(keys) > 1:
            raise BadRequestError("send one Idempotency-Key header, not several")
        key = keys[0] if keys else None
        if key is not None and not (
            1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key)
        ):
            raise BadRequestError(
                "Idempotency-Key must be 1 to 255 printable ASCII characters"
            )
        body = self.parse_json_body()
        assert body is not None

        created = await self.tweets.create(body, self.body, key)

        self.set_status(created.status)
        self.set_header("Location", created.location)
        self.finish(created.body.encode("utf-8"))


class TweetHandler(JsonHandler):
    route = "/tweets/<id>"
    tweets: TweetService
    token: str

    async def get(self, raw_id: str) -> None:
        self.finish(await self.tweets.get_json(parse_tweet_id(raw_id)))

    async def delete(self, raw_id: str) -> None:
        self.require_token(self.token)
        await self.tweets.delete(parse_tweet_id(raw_id))
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()
