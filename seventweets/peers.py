"""Reads from peer nodes over HTTP, shared by retweets and network search.

Every request has one timeout that bounds it from start to end, connecting and any
wait for a free client slot included. The response size is capped too. So a slow or
misbehaving peer costs a request at most that long and that much memory.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple
from urllib.parse import urlencode

from tornado.httpclient import HTTPClientError
from tornado.simple_httpclient import (
    HTTPStreamClosedError,
    HTTPTimeoutError,
    SimpleAsyncHTTPClient,
)

from seventweets.errors import PeerError, PeerTimeoutError
from seventweets.jsonutil import decode_json
from seventweets.netutil import LiteralAddressResolver

# Seconds a read from a peer may take. Raising it lets slower peers respond but makes a
# peer that hangs hold up retweets and network searches that long.
DEFAULT_PEER_TIMEOUT = 2.0

# Maximum bytes of a peer's response body. A search page of 100 tweets of 280 code
# points is at most about 350 KB, even with every code point escaped as a JSON surrogate
# pair (12 bytes). 1 MiB leaves room for that and still bounds what a peer can send.
MAX_RESPONSE_SIZE = 1024 * 1024

# Requests in flight at once. Tornado's default of 10 would queue a network search
# behind its first 10 peers. This is the gossip module's default member limit.
MAX_CLIENTS = 1000

# How much of a peer's error message is repeated in our own messages.
MAX_QUOTED_ERROR = 200


class PeerResponse(NamedTuple):
    """A peer's HTTP response: the status, and the decoded JSON body for a 200."""

    status: int
    body: Any
    # The ``error`` field of the peer's body for a status other than 200, or "".
    error: str


class PeerClient:
    """Send GET requests to peers and decode their JSON responses."""

    def __init__(self, timeout: float = DEFAULT_PEER_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError(f"peer timeout must be positive, got {timeout}")
        self.timeout = timeout
        self._client: SimpleAsyncHTTPClient | None = None

    async def get(
        self, address: str, path: str, query: dict[str, str] | None = None
    ) -> PeerResponse:
        """Send ``GET address+path?query`` and return the response of any status.

        Raises PeerTimeoutError when no complete response arrives within the timeout,
        and PeerError when the connection fails or a 200 body is not JSON.
        """
        url = address.rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        fetch = self._http_client().fetch(
            url,
            method="GET",
            headers={"Accept": "application/json"},
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            follow_redirects=False,
            raise_error=False,
        )
        try:
            # Tornado's own timeouts start once a client slot is free; this one bounds
            # the whole request.
            response = await asyncio.wait_for(fetch, self.timeout)
        except (TimeoutError, HTTPTimeoutError):
            raise PeerTimeoutError(f"timed out after {self.timeout} s") from None
        except HTTPStreamClosedError:
            # Tornado 6 closes the connection on a malformed response or on a body
            # above MAX_RESPONSE_SIZE, and reports all three cases as this error.
            raise PeerError(
                "request failed: the connection closed before a complete response, or"
                f" the response was malformed or larger than {MAX_RESPONSE_SIZE} bytes"
            ) from None
        except HTTPClientError as exc:
            # Code 599: no HTTP response for another reason.
            raise PeerError(f"request failed: {exc.message or exc}") from None
        except OSError as exc:
            raise PeerError(f"connection failed: {exc.strerror or exc}") from None

        if response.code != 200:
            return PeerResponse(response.code, None, _error_message(response.body))
        try:
            body = decode_json(response.body)
        except ValueError as exc:
            raise PeerError(f"returned a body that is not valid JSON: {exc}") from None
        return PeerResponse(200, body, "")

    def _http_client(self) -> SimpleAsyncHTTPClient:
        # Made on first use, so that it belongs to the running loop. Its own instance,
        # because nodes that share one loop in tests must not share client slots.
        # TODO: reuse connections to peers. This client opens one per request, which
        # costs the node about 0.75 ms of CPU per member of a network search.
        if self._client is None:
            self._client = SimpleAsyncHTTPClient(
                force_instance=True,
                max_clients=MAX_CLIENTS,
                max_body_size=MAX_RESPONSE_SIZE,
                resolver=LiteralAddressResolver(),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error_message(body: bytes) -> str:
    """Return the ``error`` field of a peer's error body, shortened, or ''."""
    try:
        decoded = decode_json(body)
    except ValueError:
        return ""
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
        return decoded["error"][:MAX_QUOTED_ERROR]
    return ""
