"""SQL of retweets: rows of the tweets table with type 'retweet' and a reference."""

from __future__ import annotations

import aiopg

from seventweets.storage.tweets import COLUMNS, TweetRow


async def find_retweet(
    cursor: aiopg.Cursor, reference_name: str, reference_id: int
) -> TweetRow | None:
    await cursor.execute(
        f"SELECT {COLUMNS} FROM tweets"
        " WHERE type = 'retweet' AND reference_name = %s AND reference_id = %s",
        (reference_name, reference_id),
    )
    row = await cursor.fetchone()
    return TweetRow(*row) if row else None


async def insert_retweet(
    cursor: aiopg.Cursor, text: str, reference_name: str, reference_id: int
) -> TweetRow | None:
    """Insert a retweet, or return None when a retweet of that original exists already.

    The partial unique index on (reference_name, reference_id) decides between
    concurrent inserts: the second waits for the first to commit and then inserts
    nothing.
    """
    await cursor.execute(
        "INSERT INTO tweets (tweet, type, reference_name, reference_id)"
        " VALUES (%s, 'retweet', %s, %s)"
        " ON CONFLICT (reference_name, reference_id) WHERE type = 'retweet' DO NOTHING"
        f" RETURNING {COLUMNS}",
        (text, reference_name, reference_id),
    )
    row = await cursor.fetchone()
    return TweetRow(*row) if row else None
