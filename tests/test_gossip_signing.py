"""HMAC signatures of node-to-node requests."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from seventweets.errors import UnauthorizedError
from seventweets.gossip.signing import MAX_CLOCK_SKEW, sign, verify

SECRET = "s3cret"
NOW = 1_800_000_000.0
BODY = b'{"from":"a","members":[]}'


def test_signature_matches_protocol_formula() -> None:
    """The header carries the HMAC-SHA256 of "t, METHOD, path" lines plus the body."""
    expected = hmac.new(
        SECRET.encode(), b"1800000000\nPOST\n/gossip\n" + BODY, hashlib.sha256
    ).hexdigest()

    header = sign(SECRET, "POST", "/gossip", BODY, NOW)

    assert header == f"t=1800000000,v1={expected}"


def test_valid_signature_accepted_within_window() -> None:
    """A signature made up to the maximum skew ago or ahead verifies."""

    for skew in (-MAX_CLOCK_SKEW, 0, MAX_CLOCK_SKEW):
        header = sign(SECRET, "POST", "/gossip", BODY, NOW + skew)

        verify(SECRET, header, "POST", "/gossip", BODY, NOW)


@pytest.mark.parametrize(
    ("header", "method", "path", "body", "now", "message"),
    [
        (None, "POST", "/gossip", BODY, NOW, "missing"),
        ("garbage", "POST", "/gossip", BODY, NOW, "malformed"),
        ("t=abc,v1=00", "POST", "/gossip", BODY, NOW, "malformed"),
        ("t=\u0661\u0662,v1=00", "POST", "/gossip", BODY, NOW, "malformed"),
        (
            sign("other", "POST", "/gossip", BODY, NOW),
            "POST",
            "/gossip",
            BODY,
            NOW,
            "invalid",
        ),
        (
            sign(SECRET, "POST", "/gossip", BODY, NOW),
            "DELETE",
            "/gossip",
            BODY,
            NOW,
            "invalid",
        ),
        (
            sign(SECRET, "POST", "/gossip", BODY, NOW),
            "POST",
            "/registry",
            BODY,
            NOW,
            "invalid",
        ),
        (
            sign(SECRET, "POST", "/gossip", BODY, NOW),
            "POST",
            "/gossip",
            BODY + b" ",
            NOW,
            "invalid",
        ),
        (
            sign(SECRET, "POST", "/gossip", BODY, NOW - 301),
            "POST",
            "/gossip",
            BODY,
            NOW,
            "away",
        ),
        (
            sign(SECRET, "POST", "/gossip", BODY, NOW + 301),
            "POST",
            "/gossip",
            BODY,
            NOW,
            "away",
        ),
        ("t=" + "9" * 5000 + ",v1=00", "POST", "/gossip", BODY, NOW, "malformed"),
    ],
)
def test_bad_signature_rejected(
    header: str | None, method: str, path: str, body: bytes, now: float, message: str
) -> None:
    """A missing, malformed, wrong or stale signature is an authorization error."""

    with pytest.raises(UnauthorizedError) as raised:
        verify(SECRET, header, method, path, body, now)

    assert message in raised.value.message
