"""Search of tweets by content and time, on this node or across the whole network.

A network search requests the local results of every live member in parallel, merges
them with this node's own and lists each member that failed instead of failing. It
always requests ``scope=local`` from members, so it cannot recurse.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, NamedTuple

from seventweets.errors import BadRequestError, PeerError, ValidationError
from seventweets.gossip import Gossiper, Member
from seventweets.gossip.members import parse_name
from seventweets.peers import PeerClient
from seventweets.services.tweets import MAX_TWEET_LENGTH, tweet_object
from seventweets.storage import search as store
from seventweets.storage.database import Database
from seventweets.validation import check_tweet_text

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_TWEET_ID = 2**63 - 1
UNIX_SECONDS = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# Digits of an ISO 8601 fraction beyond microseconds, which fromisoformat drops.
SUBMICROSECOND_DIGITS = re.compile(r"[.,][0-9]{6}([0-9]+)")


# created_at in microseconds negated, name, id negated: ascending order of this key is
# the protocol's order of search results.
SortKey = tuple[int, str, int]
# A tweet object with its sort key.
Entry = tuple[SortKey, dict[str, Any]]


class SearchQuery(NamedTuple):
    # Case-insensitive substring of the text. An empty string matches every tweet.
    content: str
    # Inclusive lower and exclusive upper bound of created_at, in UTC. None is no bound.
    start: datetime | None
    end: datetime | None
    limit: int


class SearchResult(NamedTuple):
    """Tweets newest first, and the members that failed as {"name", "error"} objects."""

    tweets: list[dict[str, Any]]
    failed: list[dict[str, str]]

    def to_json(self) -> dict[str, Any]:
        return {"tweets": self.tweets, "failed": self.failed}


def parse_time(raw: str, field: str) -> datetime:
    """Parse ISO 8601 or Unix seconds into an aware UTC datetime.

    A time without an offset is UTC. A fraction finer than a microsecond, in either
    form, is rounded up to whole microseconds. Because tweets carry microsecond times,
    rounding up keeps ``created_at >= bound`` and ``created_at < bound`` exact.
    """
    if not raw:
        raise BadRequestError(f"query parameter {field!r} is empty")
    try:
        if UNIX_SECONDS.fullmatch(raw):
            micros = (Decimal(raw) * 1_000_000).to_integral_value(ROUND_CEILING)
            return EPOCH + int(micros) * MICROSECOND
        parsed = datetime.fromisoformat(raw)
        extra = SUBMICROSECOND_DIGITS.search(raw)
        if extra is not None and extra.group(1).strip("0"):
            parsed += MICROSECOND
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, InvalidOperation):
        raise BadRequestError(
            f"query parameter {field!r} must be an ISO 8601 time such as"
            f" 2026-12-04T14:50:46Z or Unix seconds from year 1 to 9999, not {raw!r}"
        ) from None


def parse_created_at(raw: str) -> datetime:
    """Parse a tweet's created_at, written by any node, into an aware UTC datetime."""
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_created_at(moment: datetime) -> str:
    """Format a UTC time the way this node writes created_at, with microseconds."""
    return moment.isoformat(timespec="microseconds")


def sort_key(created_at: datetime, name: str, tweet_id: int) -> SortKey:
    """Order of search results: created_at newest first, then name, then id descending."""
    return (-((created_at - EPOCH) // MICROSECOND), name, -tweet_id)


class SearchService:
    """Search the tweets of the node ``name`` and, on request, of every live member."""

    def __init__(
        self, database: Database, name: str, gossiper: Gossiper, peers: PeerClient
    ) -> None:
        self.database = database
        self.name = name
        self.gossiper = gossiper
        self.peers = peers
        self._index_checked = False

    async def local(self, query: SearchQuery) -> SearchResult:
        tweets = [tweet for _, tweet in await self._local_entries(query)]
        return SearchResult(tweets, [])

    async def network(self, query: SearchQuery) -> SearchResult:
        """Merge this node's results with those of every live member.

        Members are requested in parallel, each within the peer timeout, so the response
        takes about as long as the slowest member or the timeout, whichever is shorter.
        """
        members = self.gossiper.live_peers()
        params = peer_query(query)
        asks = [self._ask(member, params, query.limit) for member in members]
        local, answers = await asyncio.gather(
            self._local_entries(query), asyncio.gather(*asks)
        )

        entries = list(local)
        failed = []
        for member, answer in zip(members, answers, strict=True):
            if isinstance(answer, PeerError):
                failed.append({"name": member.name, "error": answer.message})
            else:
                entries.extend(answer)
        entries.sort(key=lambda entry: entry[0])
        failed.sort(key=lambda entry: entry["name"])
        return SearchResult([tweet for _, tweet in entries[: query.limit]], failed)

    async def _local_entries(self, query: SearchQuery) -> list[Entry]:
        async with self.database.cursor() as cursor:
            if not self._index_checked:
                await self._check_index(cursor)
            rows = await store.search_tweets(
                cursor, query.content, query.start, query.end, query.limit
            )
        entries = []
        for row in rows:
            key = sort_key(parse_created_at(row.created_at), self.name, row.id)
            entries.append((key, tweet_object(self.name, row)))
        return entries

    async def _check_index(self, cursor: Any) -> None:
        # Set before the query, so that concurrent first searches warn only once, and
        # cleared when the query fails, so that a later search checks again.
        self._index_checked = True
        try:
            present = await store.has_trigram_index(cursor)
        except BaseException:
            self._index_checked = False
            raise
        if not present:
            log.warning(
                "search index missing index=%s: pg_trgm was not available when the"
                " database was migrated, so content searches scan the whole table",
                store.TRIGRAM_INDEX,
            )

    async def _ask(
        self, member: Member, params: dict[str, str], limit: int
    ) -> list[Entry] | PeerError:
        """Return a member's local results as sort entries, or the PeerError it caused."""
        try:
            response = await self.peers.get(member.address, "/search", params)
            if response.status != 200:
                detail = f": {response.error}" if response.error else ""
                raise PeerError(f"returned status {response.status}{detail}")
            return parse_peer_answer(response.body, member.name, limit)
        except PeerError as exc:
            log.info(
                "search member failed name=%s address=%s error=%s",
                member.name,
                member.address,
                exc.message,
            )
            return exc


def peer_query(query: SearchQuery) -> dict[str, str]:
    """Return the query parameters that request a member's local part of ``query``."""
    params = {"scope": "local", "limit": str(query.limit)}
    if query.content:
        params["content"] = query.content
    if query.start is not None:
        params["from"] = query.start.isoformat()
    if query.end is not None:
        params["to"] = query.end.isoformat()
    return params


def parse_peer_answer(body: Any, name: str, limit: int) -> list[Entry]:
    """Validate a member's search response and return its tweets as sort entries.

    Only the first ``limit`` tweets can reach a merged page, so the rest are dropped
    unread. Raises PeerError when the body or any tweet in it breaks the protocol.
    """
    if not isinstance(body, dict) or not isinstance(body.get("tweets"), list):
        raise PeerError("returned a body without a 'tweets' array")
    entries = []
    for index, value in enumerate(body["tweets"][:limit]):
        try:
            entries.append(parse_peer_tweet(value, name))
        except ValidationError as exc:
            raise PeerError(
                f"returned an invalid tweets[{index}]: {exc.message}"
            ) from None
    return entries


def parse_peer_tweet(value: Any, name: str) -> Entry:
    """Validate one tweet object of the member ``name`` and rebuild it field by field.

    The rebuilt object carries only the protocol's fields, with created_at in this
    node's format, so that nothing unchecked reaches this node's clients.
    """
    if not isinstance(value, dict):
        raise ValidationError("it is not an object")
    if value.get("name") != name:
        raise ValidationError(
            f"its name is {value.get('name')!r}, but a local search of {name!r} returns"
            " only its own tweets"
        )
    tweet_id = _tweet_id(value.get("id"), "id")
    text = value.get("tweet")
    if not isinstance(text, str):
        raise ValidationError("'tweet' is not a string")
    check_tweet_text(text, "'tweet'", MAX_TWEET_LENGTH)
    raw_created_at = value.get("created_at")
    if not isinstance(raw_created_at, str):
        raise ValidationError("'created_at' is not a string")
    try:
        created_at = parse_created_at(raw_created_at)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"'created_at' {raw_created_at[:40]!r} is not an ISO 8601 time"
        ) from None

    kind = value.get("type")
    reference = value.get("reference")
    if kind == "original" and reference is None:
        parsed_reference = None
    elif kind == "retweet" and isinstance(reference, dict):
        parsed_reference = {
            "name": parse_name(reference.get("name"), "'reference.name'"),
            "id": _tweet_id(reference.get("id"), "reference.id"),
        }
    else:
        raise ValidationError(
            "'type' and 'reference' must be 'original' with null or 'retweet' with"
            " an object"
        )

    tweet = {
        "id": tweet_id,
        "name": name,
        "tweet": text,
        "created_at": format_created_at(created_at),
        "type": kind,
        "reference": parsed_reference,
    }
    return sort_key(created_at, name, tweet_id), tweet


def _tweet_id(value: Any, field: str) -> int:
    # bool is a subclass of int in Python, but true is not an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{field!r} is not an integer")
    if not 1 <= value <= MAX_TWEET_ID:
        raise ValidationError(f"{field!r} {value} is out of range 1 to {MAX_TWEET_ID}")
    return value
