"""The network side of membership: the gossip loop, joining, leaving, and the claims
that the registry handlers pass on from peers."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPResponse
from tornado.ioloop import PeriodicCallback
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from seventweets.errors import ConflictError, ValidationError
from seventweets.gossip import signing
from seventweets.gossip.config import GossipConfig
from seventweets.gossip.members import (
    GossipMessage,
    JoinRequest,
    Member,
    Status,
    Version,
    max_table_bytes,
    members_to_json,
    parse_member_list,
)
from seventweets.gossip.table import Clock, MemberTable, TransitionListener
from seventweets.jsonutil import decode_json
from seventweets.metrics import NodeMetrics
from seventweets.netutil import LiteralAddressResolver

log = logging.getLogger(__name__)

# Errors of a request that never got an HTTP response: refused or reset connections,
# TLS failures and timeouts (Tornado raises HTTPClientError with code 599 for those).
_TRANSPORT_ERRORS = (HTTPClientError, OSError, asyncio.TimeoutError)


class JoinRejectedError(Exception):
    """A seed rejected this node's join (401 or 409); the message is one line."""


class PeerUnreachableError(Exception):
    """A request to a peer got no HTTP response."""


class Gossiper:
    """One node's membership: its member table and the I/O that keeps it true.

    ``clock`` (monotonic seconds) drives failure detection, ``wall_clock`` (Unix
    seconds) the incarnation and request signatures, and ``rng`` the choice of peers.
    ``on_join_rejected`` is called with the reason when a join retried in the background
    is rejected; without it the gossiper logs the reason and stops. ``on_transition`` is
    called with the entry before and after each change of the table.
    """

    def __init__(
        self,
        *,
        name: str,
        address: str,
        seeds: Sequence[str],
        config: GossipConfig,
        secret: str | None = None,
        metrics: NodeMetrics | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        rng: random.Random | None = None,
        incarnation: int | None = None,
        on_join_rejected: Callable[[str], None] | None = None,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.name = name
        self.address = address.rstrip("/")
        self.config = config
        self._secret = secret
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._rng = rng if rng is not None else random.Random()
        self._on_join_rejected = on_join_rejected
        # A node listed among its own seeds has no other node to join through.
        self.seeds = [
            seed.rstrip("/") for seed in seeds if seed.rstrip("/") != self.address
        ]
        if incarnation is None:
            # The start time in milliseconds: a restarted node comes back with a higher
            # incarnation without keeping any state on disk.
            incarnation = int(wall_clock() * 1000)
        self.table = MemberTable(
            name, self.address, incarnation, config, clock, on_transition=on_transition
        )
        # Addresses this node sends no request to, as if they were unreachable. Tests
        # cut the network between two nodes by blocking each one's address on the
        # other; production code never sets it.
        self.blocked_addresses: set[str] = set()
        self._client: SimpleAsyncHTTPClient | None = None
        self._loop: PeriodicCallback | None = None
        self._join_task: asyncio.Task[None] | None = None
        self._joined = False
        self._stopped = False

        if metrics is not None:
            metrics.add_gauge(
                "seventweets_members",
                "Members in this node's table by status, the node itself included.",
                "status",
                self.table.counts_by_status,
            )
        if secret is None:
            log.warning(
                "network is open name=%s: node-to-node requests are not signed, so any "
                "client can add or remove members; set a cluster secret to require "
                "signatures",
                name,
            )

    # -- what the node and the handlers read ------------------------------------------

    def live_peers(self) -> list[Member]:
        """Return the alive and suspect members other than this node."""
        return self.table.live_peers()

    def member(self, name: str) -> Member | None:
        return self.table.member(name)

    def members(self, status: Status | None = None) -> list[Member]:
        """Return every member, this node included, sorted by name."""
        return self.table.members(status)

    @property
    def joined(self) -> bool:
        """Whether a seed accepted this node, or it started a network of its own."""
        return self._joined

    # -- life cycle -------------------------------------------------------------------

    async def join(self) -> None:
        """Register with the first seed that responds.

        Raises JoinRejectedError when a seed rejects the join with 401 or 409. When no
        seed responds, it returns and keeps retrying with backoff in the background.
        """
        if not self.seeds:
            self._joined = True
            log.info(
                "starting a new network name=%s incarnation=%s",
                self.name,
                self.table.me.incarnation,
            )
            return
        if await self._join_any_seed():
            return
        log.warning(
            "no seed responded name=%s seeds=%s; serving and retrying in the background",
            self.name,
            ",".join(self.seeds),
        )
        self._join_task = asyncio.create_task(self._retry_join())

    def start(self) -> None:
        """Start the gossip loop, one round every ``interval`` seconds with jitter.

        A stopped gossiper can be started again, as a paused process resumes.
        """
        if self._loop is not None and self._loop.is_running():
            return
        self._stopped = False
        self._loop = PeriodicCallback(
            self._run_round, self.config.interval * 1000, jitter=self.config.jitter
        )
        self._loop.start()
        log.info(
            "gossip started name=%s incarnation=%s interval=%s",
            self.name,
            self.table.me.incarnation,
            self.config.interval,
        )

    def stop(self) -> None:
        """Stop the gossip loop and any join retry; the table stays readable."""
        self._stopped = True
        if self._loop is not None:
            self._loop.stop()
        if self._join_task is not None:
            self._join_task.cancel()

    async def leave(self) -> None:
        """Stop gossiping, then announce the leave to every live member at once.

        Along with the announcements, the final table, with this node ``left``, goes to
        one round of gossip partners, so the leave still spreads by gossip when
        announcements are lost. Takes at most about the larger of ``leave_timeout`` and
        ``exchange_timeout``, however many members there are, because every request goes
        out in parallel over a client sized for all of them.
        """
        self.stop()
        final = self.table.start_leaving()
        peers = self.table.live_peers()
        partners = [
            m.address for m in self.table.choose_peers(self._rng) if m.status.is_live
        ]
        payload = {"incarnation": final.incarnation, "heartbeat": final.heartbeat}
        timeout = self.config.leave_timeout
        announced, _ = await asyncio.gather(
            asyncio.gather(
                *(self._announce_leave(peer, payload, timeout) for peer in peers)
            ),
            asyncio.gather(*(self._exchange(address) for address in partners)),
        )
        log.info(
            "left network name=%s incarnation=%s heartbeat=%s announced=%d members=%d",
            self.name,
            final.incarnation,
            final.heartbeat,
            sum(announced),
            len(peers),
        )
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the round --------------------------------------------------------------------

    async def _run_round(self) -> None:
        # Exceptions are logged here, so a bug in one round never ends the loop.
        try:
            await self.run_round()
        except Exception:
            log.exception("gossip round failed name=%s", self.name)

    async def run_round(self) -> None:
        """Run one round: bump the own heartbeat first, then push-pull with this
        round's partners in parallel, each exchange bounded by ``exchange_timeout``."""
        me = self.table.tick()
        if self._metrics is not None:
            self._metrics.gossip_rounds.inc()
        addresses = [member.address for member in self.table.choose_peers(self._rng)]
        if self._joined and not self.table.live_peers():
            addresses += [seed for seed in self.seeds if seed not in addresses]
        log.debug(
            "gossip round name=%s heartbeat=%s partners=%s",
            self.name,
            me.heartbeat,
            ",".join(addresses),
        )
        await asyncio.gather(*(self._exchange(address) for address in addresses))

    async def _exchange(self, address: str) -> bool:
        payload = {"from": self.name, "members": members_to_json(self.table.members())}
        try:
            response = await self._send(
                "POST", address, "/gossip", payload, self.config.exchange_timeout
            )
        except PeerUnreachableError as exc:
            self._count_failure()
            log.debug(
                "gossip exchange failed name=%s address=%s error=%s",
                self.name,
                address,
                exc,
            )
            return False
        self._count_bytes(response)
        if response.code != 200:
            self._count_failure()
            log.warning(
                "gossip exchange rejected name=%s address=%s status=%s error=%s",
                self.name,
                address,
                response.code,
                _error_message(response),
            )
            return False
        try:
            body = _json_object(response)
            received = parse_member_list(body.get("members"), self.config.max_members)
            self.table.merge(received)
        except ValidationError as exc:
            self._count_failure()
            log.warning(
                "malformed gossip reply dropped name=%s address=%s error=%s",
                self.name,
                address,
                exc.message,
            )
            return False
        return True

    def _count_bytes(self, response: HTTPResponse) -> None:
        if self._metrics is None:
            return
        self._metrics.gossip_sent_bytes.inc(len(response.request.body or b""))
        # Tornado decompresses a gzip reply but keeps its Content-Length, which is the
        # size on the wire. A reply without that header counts its decoded size.
        length = response.headers.get("Content-Length")
        received = int(length) if length is not None else len(response.body or b"")
        self._metrics.gossip_received_bytes.inc(received)

    def _count_failure(self) -> None:
        if self._metrics is not None:
            self._metrics.gossip_exchange_failures.inc()

    # -- joining ----------------------------------------------------------------------

    async def _join_any_seed(self) -> bool:
        for seed in self.seeds:
            if await self._join_via(seed):
                return True
        return False

    async def _join_via(self, seed: str) -> bool:
        me = self.table.me
        payload = {
            "name": me.name,
            "address": me.address,
            "incarnation": me.incarnation,
        }
        try:
            response = await self._send(
                "POST", seed, "/registry", payload, self.config.join_timeout
            )
        except PeerUnreachableError as exc:
            log.info(
                "join attempt failed name=%s seed=%s error=%s", self.name, seed, exc
            )
            return False
        if response.code in (401, 409):
            raise JoinRejectedError(
                f"seed {seed} rejected the join of {self.name!r} with status "
                f"{response.code}: {_error_message(response)}"
            )
        if response.code != 201:
            log.warning(
                "join attempt failed name=%s seed=%s status=%s error=%s",
                self.name,
                seed,
                response.code,
                _error_message(response),
            )
            return False
        try:
            received = parse_member_list(_json_array(response), self.config.max_members)
            self.table.merge(received)
        except ValidationError as exc:
            log.warning(
                "malformed join reply dropped name=%s seed=%s error=%s",
                self.name,
                seed,
                exc.message,
            )
            return False
        self._joined = True
        log.info(
            "joined network name=%s incarnation=%s seed=%s members=%d",
            self.name,
            me.incarnation,
            seed,
            len(self.table.members()),
        )
        return True

    async def _retry_join(self) -> None:
        delay = self.config.join_backoff_initial
        while not self._stopped:
            # Random jitter keeps nodes that lost the same seed from retrying in step.
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            try:
                if await self._join_any_seed():
                    return
            except JoinRejectedError as exc:
                log.error("join rejected name=%s reason=%s", self.name, exc)
                if self._on_join_rejected is not None:
                    self._on_join_rejected(str(exc))
                else:
                    self.stop()
                return
            except Exception:
                log.exception("join attempt failed name=%s", self.name)
            delay = min(delay * 2, self.config.join_backoff_max)
            log.info("join retry scheduled name=%s delay=%.1f", self.name, delay)

    # -- leaving ----------------------------------------------------------------------

    async def _announce_leave(
        self, peer: Member, payload: dict[str, Any], timeout: float
    ) -> bool:
        path = "/registry/" + urllib.parse.quote(self.name)
        try:
            response = await self._send("DELETE", peer.address, path, payload, timeout)
        except PeerUnreachableError as exc:
            log.info(
                "leave announcement failed name=%s peer=%s error=%s",
                self.name,
                peer.name,
                exc,
            )
            return False
        if response.code != 204:
            log.warning(
                "leave announcement rejected name=%s peer=%s status=%s error=%s",
                self.name,
                peer.name,
                response.code,
                _error_message(response),
            )
            return False
        return True

    # -- claims from peers, passed on by the registry handlers ------------------------

    def verify_signature(
        self, method: str, uri: str, body: bytes, header: str | None
    ) -> None:
        """Raise UnauthorizedError unless the request is signed under the shared secret;
        accept anything when the network has no secret."""
        if self._secret is not None:
            signing.verify(self._secret, header, method, uri, body, self._wall_clock())

    async def accept_join(self, request: JoinRequest) -> list[Member]:
        """Add a joining node and return the table for it.

        Raises ConflictError when the name is a live member at another address that
        still responds to ``GET /health`` with that name; nothing changes then.
        """
        conflict = self.table.join_conflict(request)
        if conflict is not None and conflict.name == self.name:
            raise ConflictError(
                f"name {request.name!r} is live at {conflict.address}; choose another name"
            )
        if conflict is not None:
            if await self._responds_as(conflict):
                raise ConflictError(
                    f"name {request.name!r} is live at {conflict.address}; choose another "
                    "name or stop the node there first"
                )
            log.info(
                "join takes over a name whose old address does not respond name=%s "
                "old_address=%s address=%s",
                request.name,
                conflict.address,
                request.address,
            )
        return self.table.apply_join(request)

    def accept_leave(self, name: str, announced: Version | None) -> None:
        self.table.apply_leave(name, announced)

    def accept_gossip(self, message: GossipMessage) -> list[Member]:
        """Merge a peer's table and return this node's table for the reply."""
        fresher = self.table.merge(message.members)
        log.debug(
            "gossip received name=%s sender=%s entries=%d fresher=%d",
            self.name,
            message.sender,
            len(message.members),
            fresher,
        )
        return self.table.members()

    async def _responds_as(self, member: Member) -> bool:
        try:
            response = await self._send(
                "GET", member.address, "/health", None, self.config.exchange_timeout
            )
            body = _json_object(response)
        except (PeerUnreachableError, ValidationError):
            return False
        # A node whose database is down still responds 503 with its name: it is live.
        return body.get("name") == member.name

    # -- HTTP -------------------------------------------------------------------------

    async def _send(
        self, method: str, address: str, path: str, payload: Any, timeout: float
    ) -> HTTPResponse:
        """Send one request to a peer and return its response, of any status.

        Raises PeerUnreachableError when no response arrives within ``timeout``.
        """
        if address in self.blocked_addresses:
            raise PeerUnreachableError(f"traffic to {address} is blocked")
        url = address + path
        body = (
            None
            if payload is None
            else json.dumps(payload, separators=(",", ":")).encode()
        )
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self._secret is not None and method != "GET":
            target = urllib.parse.urlsplit(url)
            uri = target.path + (f"?{target.query}" if target.query else "")
            headers[signing.SIGNATURE_HEADER] = signing.sign(
                self._secret, method, uri, body or b"", self._wall_clock()
            )
        try:
            return await self._http_client().fetch(
                url,
                method=method,
                body=body,
                headers=headers,
                connect_timeout=timeout,
                request_timeout=timeout,
                raise_error=False,
                allow_nonstandard_methods=True,
                follow_redirects=False,
            )
        except _TRANSPORT_ERRORS as exc:
            raise PeerUnreachableError(str(exc) or type(exc).__name__) from None

    def _http_client(self) -> SimpleAsyncHTTPClient:
        # Made on first use, inside the running loop. It is an instance of its own, so
        # nodes sharing one loop in tests do not share connection limits. It is sized
        # for every member, so a leave is not queued behind Tornado's default of 10.
        if self._client is None:
            self._client = SimpleAsyncHTTPClient(
                force_instance=True,
                max_clients=self.config.max_members,
                # A peer's reply is one member table; a larger body is cut off.
                max_body_size=max_table_bytes(self.config.max_members),
                resolver=LiteralAddressResolver(),
            )
        return self._client


def _json_object(response: HTTPResponse) -> dict[str, Any]:
    value = _json_body(response)
    if not isinstance(value, dict):
        raise ValidationError(
            f"response body from {response.effective_url} is not an object"
        )
    return value


def _json_array(response: HTTPResponse) -> list[Any]:
    value = _json_body(response)
    if not isinstance(value, list):
        raise ValidationError(
            f"response body from {response.effective_url} is not an array"
        )
    return value


def _json_body(response: HTTPResponse) -> Any:
    try:
        return decode_json(response.body or b"")
    except ValueError as exc:
        raise ValidationError(
            f"response body from {response.effective_url} is not valid JSON: {exc}"
        ) from None


def _error_message(response: HTTPResponse) -> str:
    """Return the ``error`` field of a peer's error body, or its status phrase."""
    try:
        body = decode_json(response.body or b"")
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.reason or f"status {response.code}"
