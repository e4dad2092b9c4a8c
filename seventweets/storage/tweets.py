"""SQL for the tweets table and the idempotency keys of POST /tweets."""

from __future__ import annotations

from typing import Any, NamedTuple

import aiopg


class TweetRow(NamedTuple):
    id: int
    tweet: str
    # ISO 8601 in UTC with microseconds and an explicit offset, formatted by PostgreSQL.
    created_at: str
    type: str
    reference_name: str | None
    reference_id: int | None


class StoredResponse(NamedTuple):
    body_sha256: bytes
    status: int
    response: str
    location: str


COLUMNS = (
    "id, tweet,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
    " type, reference_name, reference_id"
)


# The protocol's tweet object as columns in its field order, for row_to_json. The node's
# name is the first parameter. An original tweet gets "reference":null.
TWEET_OBJECT_COLUMNS = (
    "id, %s::text AS name, tweet,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    " AS created_at,"
    " type,"
    " (SELECT row_to_json(r) FROM (SELECT reference_name AS name, reference_id AS id) r"
    " WHERE reference_name IS NOT NULL) AS reference"
)


def _tweet(row: Any) -> TweetRow:
    return TweetRow(*row)


async def get_tweet(cursor: aiopg.Cursor, tweet_id: int) -> TweetRow | None:
    await cursor.execute(f"SELECT {COLUMNS} FROM tweets WHERE id = %s", (tweet_id,))
    row = await cursor.fetchone()
    return _tweet(row) if row else None


async def get_tweet_json(cursor: aiopg.Cursor, name: str, tweet_id: int) -> str | None:
    """Return the tweet object of ``tweet_id`` as JSON text, or None when there is none."""
    await cursor.execute(
        f"SELECT row_to_json(t)::text FROM (SELECT {TWEET_OBJECT_COLUMNS}"
        " FROM tweets WHERE id = %s) t",
        (name, tweet_id),
    )
    row = await cursor.fetchone()
    return row[0] if row else None


async def list_tweets_json(
    cursor: aiopg.Cursor,
    name: str,
    limit: int,
    max_id: int | None,
    since_id: int | None,
) -> list[tuple[int, str]]:
    """Return the id and the tweet object as JSON text of what ``list_tweets`` returns.

    PostgreSQL builds the JSON, in the same compact form as the node's json.dumps, so
    that the node does not build and encode a dictionary per row.
    """
    conditions = []
    params: list[Any] = [name]
    if max_id is not None:
        conditions.append("id < %s")
        params.append(max_id)
    if since_id is not None:
        conditions.append("id > %s")
        params.append(since_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    await cursor.execute(
        "SELECT t.id, row_to_json(t)::text FROM ("
        f"SELECT {TWEET_OBJECT_COLUMNS} FROM tweets {where} ORDER BY id DESC LIMIT %s"
        ") t ORDER BY t.id DESC",
        params,
    )
    return await cursor.fetchall()


async def insert_tweet_json(
    cursor: aiopg.Cursor, name: str, text: str
) -> tuple[int, str]:
    """Insert a tweet; return its id and its tweet object as JSON text."""
    [(tweet_id, _, response)] = await insert_tweets_json(cursor, name, [text])
    return tweet_id, response


async def insert_tweets_json(
    cursor: aiopg.Cursor, name: str, texts: list[str]
) -> list[tuple[int, str, str]]:
    """Insert one tweet per text in one statement.

    Returns the id, the text and the tweet object as JSON text of each new row, in no
    particular order.
    """
    await cursor.execute(
        "WITH t AS (INSERT INTO tweets (tweet) SELECT unnest(%s::text[])"
        f" RETURNING {TWEET_OBJECT_COLUMNS})"
        " SELECT t.id, t.tweet, row_to_json(t)::text FROM t",
        (texts, name),
    )
    return await cursor.fetchall()


async def delete_tweet(cursor: aiopg.Cursor, tweet_id: int) -> bool:
    await cursor.execute("DELETE FROM tweets WHERE id = %s", (tweet_id,))
    return bool(cursor.rowcount)


async def claim_idempotency_key(
    cursor: aiopg.Cursor, key: str, body_sha256: bytes, max_age_seconds: int
) -> StoredResponse | None:
    """Claim ``key`` for this transaction, or return the response stored under it.

    An expired key is deleted first and claimed anew. When another transaction has an
    uncommitted claim on the key, this waits for it and then returns its response.
    """
    await cursor.execute(
        "DELETE FROM idempotency_keys"
        " WHERE key = %s AND created_at < now() - make_interval(secs => %s)",
        (key, max_age_seconds),
    )
    await cursor.execute(
        "INSERT INTO idempotency_keys (key, body_sha256, status, response, location)"
        " VALUES (%s, %s, 0, '', '') ON CONFLICT (key) DO NOTHING RETURNING key",
        (key, body_sha256),
    )
    if await cursor.fetchone():
        return None
    await cursor.execute(
        "SELECT body_sha256, status, response, location FROM idempotency_keys WHERE key = %s",
        (key,),
    )
    row = await cursor.fetchone()
    return StoredResponse(bytes(row[0]), row[1], row[2], row[3])


async def store_idempotent_response(
    cursor: aiopg.Cursor, key: str, status: int, response: str, location: str
) -> None:
    await cursor.execute(
        "UPDATE idempotency_keys SET status = %s, response = %s, location = %s WHERE key = %s",
        (status, response, location, key),
    )


async def purge_idempotency_keys(cursor: aiopg.Cursor, max_age_seconds: int) -> int:
    """Delete keys older than ``max_age_seconds``; return how many went."""
    await cursor.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => %s)",
        (max_age_seconds,),
    )
    return cursor.rowcount
