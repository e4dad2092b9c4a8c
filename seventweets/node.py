"""The life cycle of one node process: start, serve, leave the network, stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.netutil
from tornado.ioloop import PeriodicCallback

from seventweets.app import make_app
from seventweets.config import NodeConfig
from seventweets.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    default_data_dir,
)
from seventweets.errors import DatabaseUnavailableError
from seventweets.gossip import GossipConfig, Gossiper, JoinRejectedError, faults
from seventweets.inflight import InFlight
from seventweets.metrics import NodeMetrics
from seventweets.services.tweets import TweetService
from seventweets.storage.database import Database
from seventweets.storage.migrations import migrate

log = logging.getLogger(__name__)

# Seconds that requests in flight get to finish once the node stops accepting new ones.
DRAIN_TIMEOUT = 10.0

# Milliseconds between purges of expired idempotency keys.
PURGE_INTERVAL_MS = 60 * 60 * 1000

# Milliseconds between checks for request bodies that stopped arriving.
BODY_SWEEP_INTERVAL_MS = 5 * 1000


class StartError(Exception):
    """The node cannot start; the message is the one line shown to the user."""


class Node:
    """One running node: its database, HTTP server and gossip loop."""

    def __init__(
        self, config: NodeConfig, stopping: asyncio.Event | None = None
    ) -> None:
        self.config = config
        # Set when the node must stop: by a signal, or by a failure after start-up.
        self.stopping = stopping or asyncio.Event()
        # The one-line reason when a failure after start-up stops the node.
        self.failure: str | None = None
        self.token = config.token or secrets.token_urlsafe(24)
        self.address = config.address
        self.port = config.port
        self._embedded: EmbeddedPostgres | None = None
        self._database: Database | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._gossiper: Gossiper | None = None
        self._purge: PeriodicCallback | None = None
        self._body_sweep: PeriodicCallback | None = None
        self._in_flight = InFlight()
        self._gossiping = False
        self._ready = False

    async def start(self) -> None:
        """Bind the port, open the database, join the network and start serving."""
        config = self.config
        try:
            sockets = tornado.netutil.bind_sockets(config.port, config.host)
        except OSError as exc:
            raise StartError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror}"
            ) from None
        self.port = sockets[0].getsockname()[1]
        self.address = config.address or f"http://{_url_host(config.host)}:{self.port}"

        dsn = config.db or await self._start_embedded()
        try:
            self._database = await Database.connect(dsn)
        except DatabaseUnavailableError as exc:
            raise StartError(f"cannot connect to the database: {exc.message}") from None
        await migrate(self._database)

        metrics = NodeMetrics()
        tweets = TweetService(self._database, config.name)
        self._gossiper = Gossiper(
            name=config.name,
            address=self.address,
            seeds=list(config.seeds),
            config=GossipConfig.production(config.gossip_interval),
            secret=config.cluster_secret,
            metrics=metrics,
            on_join_rejected=self._join_rejected,
            on_transition=faults.view_log_from_environment(config.name),
        )
        drop_rule = faults.drop_rule_from_environment()
        if drop_rule is not None:
            self._gossiper.blocked_addresses = drop_rule
        database = self._database
        metrics.add_gauge(
            "seventweets_db_pool_connections",
            "Database pool connections by state (used, idle, max).",
            "state",
            database.pool_usage,
        )
        app = make_app(
            name=config.name,
            token=self.token,
            database=database,
            tweets=tweets,
            gossiper=self._gossiper,
            metrics=metrics,
            max_body_size=config.max_body_size,
            in_flight=self._in_flight,
            peer_timeout=config.peer_timeout,
        )
        self._server = tornado.httpserver.HTTPServer(
            app,
            # The handlers stream bodies and return 413 themselves, so this limit only
            # stops a client that keeps sending after that response.
            max_body_size=config.max_body_size + 1024 * 1024,
            idle_connection_timeout=60,
            # Not body_timeout: ``InFlight`` times bodies at a fraction of its cost.
        )

        # Join before serving: a node that accepted joins before it knew the network
        # could accept a second process under a name that is live elsewhere.
        try:
            await self._gossiper.join()
        except JoinRejectedError as exc:
            raise StartError(str(exc)) from None
        self._server.add_sockets(sockets)
        self._gossiper.start()
        self._gossiping = True

        self._purge = PeriodicCallback(self._purge_idempotency_keys, PURGE_INTERVAL_MS)
        self._purge.start()
        self._body_sweep = PeriodicCallback(
            self._close_stalled_bodies, BODY_SWEEP_INTERVAL_MS
        )
        self._body_sweep.start()

        if config.token is None:
            # Shown once so the user can write; never logged again.
            print(f"generated API token (shown once): {self.token}", file=sys.stderr)
        self._ready = True
        log.info("ready name=%s address=%s", config.name, self.address)

    def _join_rejected(self, reason: str) -> None:
        """Stop the node when a join retried in the background is rejected by a seed."""
        self.failure = reason
        self.stopping.set()

    def _close_stalled_bodies(self) -> None:
        self._in_flight.close_stalled()

    async def _start_embedded(self) -> str:
        data_dir = self.config.data_dir or default_data_dir(self.config.name)
        try:
            self._embedded = EmbeddedPostgres(Path(data_dir))
            return await asyncio.get_running_loop().run_in_executor(
                None, self._embedded.start
            )
        except EmbeddedPostgresError as exc:
            self._embedded = None
            raise StartError(str(exc)) from None

    async def _purge_idempotency_keys(self) -> None:
        assert self._database is not None
        try:
            await TweetService(
                self._database, self.config.name
            ).purge_expired_idempotency_keys()
        except DatabaseUnavailableError as exc:
            log.warning("idempotency key purge failed error=%s", exc.message)

    async def stop(self) -> None:
        """Leave the network, stop accepting requests, drain, close the database."""
        if self._purge is not None:
            self._purge.stop()
        if self._body_sweep is not None:
            self._body_sweep.stop()
        if self._gossiping:
            assert self._gossiper is not None
            await self._gossiper.leave()
        if self._server is not None:
            self._server.stop()
            if not await self._in_flight.wait_idle(DRAIN_TIMEOUT):
                log.warning(
                    "shutdown drain timed out in_flight=%s", self._in_flight.count
                )
            await self._server.close_all_connections()
        if self._database is not None:
            await self._database.close()
        if self._embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._embedded.stop)
        if self._ready:
            log.info("stopped name=%s", self.config.name)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        # A wildcard is no address to give peers; they need --address then.
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def run(config: NodeConfig) -> int:
    """Run a node until SIGTERM or SIGINT; return the process exit status."""
    node = Node(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, node.stopping.set)

    try:
        await node.start()
    except StartError as exc:
        await node.stop()
        print(f"seventweets: error: {exc}", file=sys.stderr)
        return 1

    await node.stopping.wait()
    if node.failure is None:
        log.info("shutdown requested name=%s", config.name)
    await node.stop()
    if node.failure is not None:
        print(f"seventweets: error: {node.failure}", file=sys.stderr)
        return 1
    return 0
