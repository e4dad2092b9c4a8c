"""HMAC-SHA256 signatures of node-to-node requests under the network's shared secret.

The header is ``X-SevenTweets-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
the HMAC-SHA256 under the secret of the UTF-8 string ``<t>\\n<METHOD>\\n<path and query>\\n``
followed by the raw body. The secret never travels. A signature whose ``t`` is more than
``MAX_CLOCK_SKEW`` seconds away from the receiver's clock is rejected, which bounds how
long a captured request can be replayed.
"""

from __future__ import annotations

import hashlib
import hmac

from seventweets.errors import UnauthorizedError

SIGNATURE_HEADER = "X-SevenTweets-Signature"
MAX_CLOCK_SKEW = 300


def _digest(secret: str, timestamp: int, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, path: str, body: bytes, now: float) -> str:
    """Return the signature header value for a request sent at ``now`` (Unix seconds).

    ``path`` is the path and query exactly as the request line carries them.
    """
    timestamp = int(now)
    return f"t={timestamp},v1={_digest(secret, timestamp, method, path, body)}"


def verify(
    secret: str, header: str | None, method: str, path: str, body: bytes, now: float
) -> None:
    """Raise UnauthorizedError unless ``header`` signs this request under ``secret``."""
    if header is None:
        raise UnauthorizedError(
            f"missing {SIGNATURE_HEADER} header; this network requires signed requests"
        )
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields[key] = value
    timestamp_text = fields.get("t", "")
    presented = fields.get("v1", "")
    # Twelve digits reach the year 33658; a longer number is no Unix time, and a very long
    # one would make int() raise.
    if (
        not (timestamp_text.isascii() and timestamp_text.isdigit())
        or len(timestamp_text) > 12
        or not presented
    ):
        raise UnauthorizedError(
            f"malformed {SIGNATURE_HEADER} header; expected t=<unix seconds>,v1=<hex>"
        )
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > MAX_CLOCK_SKEW:
        raise UnauthorizedError(
            f"signature time {timestamp} is more than {MAX_CLOCK_SKEW} s away from this "
            "node's clock; check both clocks"
        )
    expected = _digest(secret, timestamp, method, path, body)
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise UnauthorizedError("invalid request signature")
