"""Body limits of the full node app: tweets and node-to-node messages differ in size."""

from __future__ import annotations

import json

import pytest

from tests.conftest import AUTH, Client, body_of


def member(index: int) -> dict[str, object]:
    return {
        "name": f"node-{index:04d}",
        "address": f"http://127.0.0.1:{10000 + index}",
        "status": "alive",
        "incarnation": 1796402898874,
        "heartbeat": 12345,
    }


@pytest.mark.gen_test
async def test_full_member_table_accepted(client: Client) -> None:
    """A gossip message with 1000 members, above 64 KiB, is merged rather than rejected."""
    message = {"from": "node-0000", "members": [member(i) for i in range(1000)]}
    body = json.dumps(message)

    response = await client.request(
        "POST", "/gossip", body=body, headers={"Content-Type": "application/json"}
    )
    listing = body_of(await client.request("GET", "/registry"))

    assert len(body) > 64 * 1024
    assert response.code == 200, response.body
    assert len(listing) == 1001


@pytest.mark.gen_test
async def test_tweet_limit_stays_64_kib(client: Client) -> None:
    """The tweet routes keep the 64 KiB limit while gossip routes accept more."""
    body = json.dumps({"tweet": "a" * (65 * 1024)})

    response = await client.request(
        "POST",
        "/tweets",
        body=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert response.code == 413
