"""Retweets: a copy of another tweet's text, stored here with a reference to the original.

The original is fetched from the node that stores it, found by name in the member table.
The database allows one retweet per original, so a repeated or concurrent retweet of the
same original returns the first one.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from seventweets.errors import (
    ConflictError,
    NotFoundError,
    PeerError,
    PeerTimeoutError,
    ValidationError,
)
from seventweets.gossip import Gossiper
from seventweets.peers import PeerClient
from seventweets.services.tweets import MAX_TWEET_LENGTH, tweet_object
from seventweets.storage import retweets as store
from seventweets.storage import tweets as tweet_store
from seventweets.storage.database import Database
from seventweets.validation import check_tweet_text

log = logging.getLogger(__name__)

MAX_TWEET_ID = 2**63 - 1


class Retweet(NamedTuple):
    tweet: dict[str, Any]
    # False when the original had been retweeted already and ``tweet`` is that retweet.
    created: bool


class RetweetService:
    """Store retweets on the node ``name``, fetching originals from their nodes."""

    def __init__(
        self, database: Database, name: str, gossiper: Gossiper, peers: PeerClient
    ) -> None:
        self.database = database
        self.name = name
        self.gossiper = gossiper
        self.peers = peers

    async def retweet(self, origin: str, tweet_id: int) -> Retweet:
        """Retweet tweet ``tweet_id`` of the node ``origin``, or return the existing retweet.

        Raises ValidationError when no live member is named ``origin``, NotFoundError
        when the origin has no such tweet, and PeerError or PeerTimeoutError when the
        origin fails or does not respond in time.
        """
        existing = await self._find(origin, tweet_id)
        if existing is not None:
            return Retweet(existing, created=False)

        text = await self._fetch_text(origin, tweet_id)

        # When the insert finds a concurrent retweet of the same original, the select
        # reads that one. A concurrent delete can remove it in between, so the insert
        # is tried a second time.
        for _ in range(2):
            async with self.database.cursor() as cursor:
                row = await store.insert_retweet(cursor, text, origin, tweet_id)
            if row is not None:
                log.debug(
                    "retweet stored id=%s reference_name=%s reference_id=%s",
                    row.id,
                    origin,
                    tweet_id,
                )
                return Retweet(tweet_object(self.name, row), created=True)
            existing = await self._find(origin, tweet_id)
            if existing is not None:
                return Retweet(existing, created=False)
        raise ConflictError(
            f"a retweet of tweet {tweet_id} of {origin!r} was deleted by a concurrent"
            " request twice while this one stored it; send the request again"
        )

    async def _find(self, origin: str, tweet_id: int) -> dict[str, Any] | None:
        async with self.database.cursor() as cursor:
            row = await store.find_retweet(cursor, origin, tweet_id)
        return tweet_object(self.name, row) if row is not None else None

    async def _fetch_text(self, origin: str, tweet_id: int) -> str:
        """Return the text of the original, read from this node's database or its origin."""
        if origin == self.name:
            async with self.database.cursor() as cursor:
                row = await tweet_store.get_tweet(cursor, tweet_id)
            if row is None:
                raise NotFoundError(f"tweet {tweet_id} not found on {origin!r}")
            return row.tweet

        member = self.gossiper.member(origin)
        if member is None or not member.status.is_live:
            raise ValidationError(f"no live member is named {origin!r}")

        request = f"GET /tweets/{tweet_id}"
        try:
            response = await self.peers.get(member.address, f"/tweets/{tweet_id}")
        except PeerTimeoutError as exc:
            raise PeerTimeoutError(
                f"origin {origin!r} did not respond to {request}: {exc.message}"
            ) from None
        except PeerError as exc:
            raise PeerError(
                f"origin {origin!r} failed on {request}: {exc.message}"
            ) from None

        if response.status == 404:
            raise NotFoundError(f"tweet {tweet_id} not found on {origin!r}")
        if response.status != 200:
            detail = f": {response.error}" if response.error else ""
            raise PeerError(
                f"origin {origin!r} returned status {response.status} for {request}{detail}"
            )
        return original_text(response.body, origin, tweet_id)


def original_text(body: Any, origin: str, tweet_id: int) -> str:
    """Return the text of a tweet object fetched from ``origin``.

    Raises PeerError when the object is not the requested tweet or its text breaks the
    rules every tweet follows.
    """
    where = f"origin {origin!r} returned for tweet {tweet_id}"
    if not isinstance(body, dict):
        raise PeerError(f"{where} a body that is not a JSON object")
    if body.get("name") != origin or body.get("id") != tweet_id:
        raise PeerError(
            f"{where} the tweet {body.get('id')!r} of {body.get('name')!r} instead"
        )
    text = body.get("tweet")
    if not isinstance(text, str):
        raise PeerError(f"{where} an object whose 'tweet' is not a string")
    try:
        check_tweet_text(text, "its 'tweet'", MAX_TWEET_LENGTH)
    except ValidationError as exc:
        raise PeerError(f"{where} an invalid text: {exc.message}") from None
    return text
