"""The Tornado application of one node: every route in one list, built by ``make_app``."""

from __future__ import annotations

from typing import Any

import tornado.web

from seventweets.handlers.base import DEFAULT_MAX_BODY_SIZE, NotFoundHandler
from seventweets.handlers.info import HealthHandler, MetricsHandler, OpenApiHandler
from seventweets.handlers.network import RetweetHandler, SearchHandler
from seventweets.handlers.registry import (
    GossipHandler,
    RegistryHandler,
    RegistryMemberHandler,
)
from seventweets.handlers.tweets import TweetHandler, TweetListHandler
from seventweets.inflight import InFlight
from seventweets.metrics import NodeMetrics
from seventweets.peers import DEFAULT_PEER_TIMEOUT, PeerClient
from seventweets.services.retweets import RetweetService
from seventweets.services.search import SearchService
from seventweets.services.tweets import TweetService
from seventweets.storage.database import Database


def make_app(
    *,
    name: str,
    token: str,
    database: Database,
    tweets: TweetService,
    gossiper: Any,
    metrics: NodeMetrics,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    in_flight: InFlight | None = None,
    retweets: RetweetService | None = None,
    search: SearchService | None = None,
    peer_timeout: float = DEFAULT_PEER_TIMEOUT,
) -> tornado.web.Application:
    """Build the application of the node ``name`` from its collaborators.

    Without ``retweets`` or ``search``, those services read from peers with
    ``peer_timeout`` seconds for each request.
    """
    peers = PeerClient(peer_timeout)
    if retweets is None:
        retweets = RetweetService(database, name, gossiper, peers)
    if search is None:
        search = SearchService(database, name, gossiper, peers)
    tweet_args = {"tweets": tweets, "token": token}
    membership_args = {"gossiper": gossiper}
    info_args = {"database": database}
    retweet_args = {"retweets": retweets, "token": token}
    search_args = {"search": search}

    routes: list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]] = [
        # Tweets stored on this node.
        (r"/tweets/?", TweetListHandler, tweet_args),
        (r"/tweets/([^/]+)/?", TweetHandler, tweet_args),
        # Membership, spoken node to node.
        (r"/registry/?", RegistryHandler, membership_args),
        (r"/registry/([^/]+)/?", RegistryMemberHandler, membership_args),
        (r"/gossip/?", GossipHandler, membership_args),
        # Retweets and search across the network.
        (r"/retweets/?", RetweetHandler, retweet_args),
        (r"/search/?", SearchHandler, search_args),
        # Node information.
        (r"/health/?", HealthHandler, info_args),
        (r"/metrics/?", MetricsHandler, {}),
        (r"/openapi.json/?", OpenApiHandler, {}),
    ]

    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        name=name,
        metrics=metrics,
        max_body_size=max_body_size,
        # Counts requests being served, so that shutdown can wait for them to finish,
        # and times their bodies.
        in_flight=in_flight or InFlight(),
        # Tornado's own access log line per request would double the cost of a fast read.
        # Requests are counted in /metrics instead, and the handler logs failures.
        log_function=lambda handler: None,
    )
