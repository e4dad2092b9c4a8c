"""Tweets of this node: validation, paging and idempotent creation."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, NamedTuple

from seventweets.errors import ConflictError, NotFoundError
from seventweets.storage import tweets as store
from seventweets.storage.database import Database
from seventweets.validation import require_text

log = logging.getLogger(__name__)

MAX_TWEET_LENGTH = 280

# How long an Idempotency-Key and its response are kept, in seconds.
IDEMPOTENCY_KEY_MAX_AGE = 24 * 60 * 60


class Page(NamedTuple):
    tweets: list[dict[str, Any]]
    # The max_id of the next older page, or None when this page contains the oldest tweet.
    next_max_id: int | None


class Created(NamedTuple):
    """The response to a POST /tweets, stored for replay under its idempotency key."""

    status: int
    body: str
    location: str


def tweet_object(name: str, row: store.TweetRow) -> dict[str, Any]:
    reference = None
    if row.reference_name is not None:
        reference = {"name": row.reference_name, "id": row.reference_id}
    return {
        "id": row.id,
        "name": name,
        "tweet": row.tweet,
        "created_at": row.created_at,
        "type": row.type,
        "reference": reference,
    }


class TweetService:
    """Read and write the tweets stored on the node ``name``."""

    def __init__(self, database: Database, name: str) -> None:
        self.database = database
        self.name = name

    async def get(self, tweet_id: int) -> dict[str, Any]:
        async with self.database.cursor() as cursor:
            row = await store.get_tweet(cursor, tweet_id)
        if row is None:
            raise NotFoundError(f"tweet {tweet_id} not found")
        return tweet_object(self.name, row)

    async def list(self, limit: int, max_id: int | None, since_id: int | None) -> Page:
        # Fetching one row more than the page shows whether an older page exists.
        async with self.database.cursor() as cursor:
            rows = await store.list_tweets(cursor, limit + 1, max_id, since_id)
        next_max_id = rows[limit - 1].id if len(rows) > limit else None
        return Page([tweet_object(self.name, row) for row in rows[:limit]], next_max_id)

    async def create(
        self, body: dict[str, Any], raw_body: bytes, idempotency_key: str | None
    ) -> Created:
        """Store a new tweet, or replay the response first given for ``idempotency_key``."""
        text = require_text(body, "tweet", MAX_TWEET_LENGTH)

        if idempotency_key is None:
            async with self.database.cursor() as cursor:
                row = await store.insert_tweet(cursor, text)
            return self._created(row)

        body_sha256 = hashlib.sha256(raw_body).digest()
        async with self.database.transaction() as cursor:
            stored = await store.claim_idempotency_key(
                cursor, idempotency_key, body_sha256, IDEMPOTENCY_KEY_MAX_AGE
            )
            if stored is not None:
                if stored.body_sha256 != body_sha256:
                    raise ConflictError(
                        f"Idempotency-Key {idempotency_key!r} was used with a different body"
                    )
                return Created(stored.status, stored.response, stored.location)

            created = self._created(await store.insert_tweet(cursor, text))
            await store.store_idempotent_response(
                cursor, idempotency_key, created.status, created.body, created.location
            )
        return created

    def _created(self, row: store.TweetRow) -> Created:
        body = json.dumps(
            tweet_object(self.name, row), ensure_ascii=False, separators=(",", ":")
        )
        return Created(201, body, f"/tweets/{row.id}")

    async def delete(self, tweet_id: int) -> None:
        async with self.database.cursor() as cursor:
            deleted = await store.delete_tweet(cursor, tweet_id)
        if not deleted:
            raise NotFoundError(f"tweet {tweet_id} not found")

    async def purge_expired_idempotency_keys(self) -> None:
        async with self.database.cursor() as cursor:
            count = await store.purge_idempotency_keys(cursor, IDEMPOTENCY_KEY_MAX_AGE)
        if count:
            log.info("idempotency keys purged count=%s", count)
