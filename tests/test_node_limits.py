"""Size limits of the full node app: bodies, and the member table that gossip may grow."""

from __future__ import annotations

import json

import pytest

from tests.conftest import AUTH, Client, body_of

MAX_MEMBERS = 1000


def member(index: int, address_length: int = 0) -> dict[str, object]:
    address = f"http://127.0.0.1:{10000 + index}"
    if address_length:
        address += "/" + "a" * (address_length - len(address) - 1)
    return {
        "name": f"node-{index:04d}",
        "address": address,
        "status": "alive",
        "incarnation": 1796402898874,
        "heartbeat": 12345,
    }


async def gossip(client: Client, members: list[dict[str, object]]):
    body = json.dumps({"from": "node-0000", "members": members})
    response = await client.request(
        "POST", "/gossip", body=body, headers={"Content-Type": "application/json"}
    )
    return response, len(body)


@pytest.mark.gen_test
async def test_full_member_table_accepted(client: Client) -> None:
    """A gossip message that fills the table to 1000 members, above 64 KiB, is merged."""
    response, size = await gossip(client, [member(i) for i in range(MAX_MEMBERS - 1)])
    listing = body_of(await client.request("GET", "/registry"))

    assert size > 64 * 1024
    assert response.code == 200, response.body
    assert len(listing) == MAX_MEMBERS


@pytest.mark.gen_test
async def test_table_never_grows_past_maximum(client: Client) -> None:
    """Gossip that would grow the table past 1000 members is rejected whole with 422,
    because peers reject such a table and the node would be cut off."""
    await gossip(client, [member(i) for i in range(MAX_MEMBERS - 1)])

    response, _ = await gossip(client, [member(MAX_MEMBERS), member(MAX_MEMBERS + 1)])
    listing = body_of(await client.request("GET", "/registry"))

    assert response.code == 422
    assert "more than the maximum of 1000" in body_of(response)["error"]
    assert len(listing) == MAX_MEMBERS


@pytest.mark.gen_test
async def test_long_addresses_fit_body_limit(client: Client) -> None:
    """A table of members with the longest valid addresses fits a node-to-node body."""
    members = [member(i, address_length=2048) for i in range(300)]

    response, size = await gossip(client, members)

    assert size > 600 * 1024
    assert response.code == 200, response.body


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
