"""Routes that reach other nodes: retweets of their tweets and search across the network."""

from __future__ import annotations

from seventweets.errors import BadRequestError, ValidationError
from seventweets.gossip.members import parse_name
from seventweets.handlers.base import JsonHandler
from seventweets.services.retweets import MAX_TWEET_ID, RetweetService
from seventweets.services.search import SearchQuery, SearchService, parse_time
from seventweets.services.tweets import MAX_TWEET_LENGTH
from seventweets.validation import check_text, require_int

SCOPES = ("local", "network")


class RetweetHandler(JsonHandler):
    route = "/retweets"
    retweets: RetweetService
    token: str

    async def post(self) -> None:
        self.require_token(self.token)
        body = self.parse_json_body()
        assert body is not None
        if "name" not in body:
            raise ValidationError("field 'name' is missing")
        origin = parse_name(body["name"], "field 'name'")
        tweet_id = require_int(body, "id", 1, MAX_TWEET_ID)

        retweet = await self.retweets.retweet(origin, tweet_id)

        if retweet.created:
            self.set_header("Location", f"/tweets/{retweet.tweet['id']}")
            self.write_json(retweet.tweet, 201)
        else:
            self.write_json(retweet.tweet, 200)


class SearchHandler(JsonHandler):
    route = "/search"
    search: SearchService

    async def get(self) -> None:
        content = self.query_content()
        raw_from = self.get_query_argument("from", None)
        start = None if raw_from is None else parse_time(raw_from, "from")
        raw_to = self.get_query_argument("to", None)
        end = None if raw_to is None else parse_time(raw_to, "to")
        limit = self.query_int("limit", 1, 100, default=20)
        assert limit is not None
        scope = self.get_query_argument("scope", "local")
        if scope not in SCOPES:
            raise BadRequestError(
                f"query parameter 'scope' must be 'local' or 'network', not {scope!r}"
            )
        query = SearchQuery(content, start, end, limit)

        if scope == "network":
            result = await self.search.network(query)
        else:
            result = await self.search.local(query)

        self.write_json(result.to_json())

    def query_content(self) -> str:
        """Return the ``content`` parameter exactly as sent, or "" when it is absent.

        Tornado's get_query_argument strips surrounding whitespace and turns control
        characters into spaces, which would change the substring searched for, so the
        raw value is decoded here.
        """
        values = self.request.query_arguments.get("content")
        if not values:
            return ""
        try:
            content = values[-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestError(
                f"query parameter 'content' is not valid UTF-8 at byte {exc.start}"
            ) from None
        check_text(content, "query parameter 'content'")
        if len(content) > MAX_TWEET_LENGTH:
            raise BadRequestError(
                f"query parameter 'content' is {len(content)} code points long; the"
                f" maximum is {MAX_TWEET_LENGTH} because no tweet is longer"
            )
        return content
