"""SQL of the local search over the tweets table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiopg

from seventweets.storage.tweets import COLUMNS, TweetRow

# Name of the trigram index that migration 0002 creates when pg_trgm is available.
TRIGRAM_INDEX = "tweets_tweet_trgm_idx"


def like_pattern(content: str) -> str:
    """Return an ILIKE pattern that matches ``content`` anywhere, as plain characters.

    Backslash is the default escape character of LIKE and ILIKE, so it is escaped first,
    then the wildcards ``%`` and ``_``.
    """
    escaped = content.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_tweets(
    cursor: aiopg.Cursor,
    content: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[TweetRow]:
    """Return up to ``limit`` tweets that contain ``content``, newest first.

    ``content`` is matched case-insensitively, and an empty one matches every tweet.
    ``start`` is inclusive and ``end`` exclusive, and None leaves that side open.
    """
    conditions = []
    params: list[Any] = []
    if content:
        conditions.append("tweet ILIKE %s")
        params.append(like_pattern(content))
    if start is not None:
        conditions.append("created_at >= %s")
        params.append(start)
    if end is not None:
        conditions.append("created_at < %s")
        params.append(end)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    await cursor.execute(
        f"SELECT {COLUMNS} FROM tweets {where} ORDER BY created_at DESC, id DESC LIMIT %s",
        params,
    )
    return [TweetRow(*row) for row in await cursor.fetchall()]


async def has_trigram_index(cursor: aiopg.Cursor) -> bool:
    await cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (TRIGRAM_INDEX,))
    row = await cursor.fetchone()
    return bool(row[0])
