"""The membership routes of one node over real HTTP: list, join, leave, gossip, signing."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import tornado.web

from seventweets.gossip import GossipConfig, Gossiper
from seventweets.gossip.signing import SIGNATURE_HEADER, sign
from seventweets.metrics import NodeMetrics
from tests.test_gossip_network import GossipNode, make_membership_app

NAME = "alice"
SECRET = "s3cret"
# A small maximum, so that an oversized table fits in a request body.
CONFIG = dataclasses.replace(GossipConfig.fast(0.1), max_members=5)


def entry(
    name: str, port: int, heartbeat: int = 1, incarnation: int = 10, **fields: Any
):
    return {
        "name": name,
        "address": f"http://127.0.0.1:{port}",
        "status": "alive",
        "incarnation": incarnation,
        "heartbeat": heartbeat,
        **fields,
    }


@pytest.fixture
def secret() -> str | None:
    return None


@pytest.fixture
def gossiper(http_port: int, secret: str | None) -> Gossiper:
    return Gossiper(
        name=NAME,
        address=f"http://127.0.0.1:{http_port}",
        seeds=[],
        config=CONFIG,
        secret=secret,
        metrics=NodeMetrics(),
    )


@pytest.fixture
def app(gossiper: Gossiper) -> tornado.web.Application:
    return make_membership_app(gossiper, NodeMetrics())


async def registry(client: Any) -> list[dict[str, Any]]:
    response = await client.request("GET", "/registry")
    assert response.code == 200
    return json.loads(response.body)


async def join(
    client: Any, name: str, port: int, incarnation: int = 10, **kw: Any
) -> Any:
    body = {
        "name": name,
        "address": f"http://127.0.0.1:{port}",
        "incarnation": incarnation,
    }
    return await client.request("POST", "/registry", json_body=body, **kw)


@pytest.mark.gen_test
async def test_registry_lists_members_sorted(client: Any, base_url: str) -> None:
    """GET /registry returns every member, the node itself included, sorted by name."""
    await join(client, "zed", 9001)
    await join(client, "bob", 9002)

    members = await registry(client)

    assert [m["name"] for m in members] == ["alice", "bob", "zed"]
    assert members[0] == {
        "name": "alice",
        "address": base_url,
        "status": "alive",
        "incarnation": members[0]["incarnation"],
        "heartbeat": 0,
    }
    assert members[1] == entry("bob", 9002, heartbeat=0)


@pytest.mark.gen_test
async def test_registry_status_filter(client: Any) -> None:
    """The status query filters members; an unknown or empty status is a 400."""
    await join(client, "bob", 9002)
    await client.request("DELETE", "/registry/bob")

    alive = await client.request("GET", "/registry?status=alive")
    left = await client.request("GET", "/registry/?status=left")
    unknown = await client.request("GET", "/registry?status=zombie")
    empty = await client.request("GET", "/registry?status=")

    assert [m["name"] for m in json.loads(alive.body)] == ["alice"]
    assert [m["name"] for m in json.loads(left.body)] == ["bob"]
    assert unknown.code == 400
    assert "zombie" in json.loads(unknown.body)["error"]
    assert empty.code == 400


@pytest.mark.gen_test
async def test_registry_member_lookup(client: Any) -> None:
    """GET /registry/<name> returns one member, or 404 for an unknown or invalid name."""
    await join(client, "bob", 9002)

    found = await client.request("GET", "/registry/bob")
    missing = await client.request("GET", "/registry/carol")
    invalid = await client.request("GET", "/registry/Bob%20X")

    assert found.code == 200
    assert json.loads(found.body) == entry("bob", 9002, heartbeat=0)
    assert missing.code == 404
    assert json.loads(missing.body) == {
        "error": "no member named 'carol'",
        "status": 404,
    }
    assert invalid.code == 404


@pytest.mark.gen_test
async def test_join_returns_table_with_joiner(client: Any) -> None:
    """A join adds the node alive at heartbeat 0 and returns the table with 201."""

    response = await join(client, "bob", 9002, incarnation=77)

    assert response.code == 201
    members = json.loads(response.body)
    assert [m["name"] for m in members] == ["alice", "bob"]
    assert members[1] == entry("bob", 9002, heartbeat=0, incarnation=77)


@pytest.mark.gen_test
async def test_join_keeps_known_higher_version(client: Any) -> None:
    """A join below the version the node has changes nothing and still gets 201."""
    gossip = {
        "from": "bob",
        "members": [entry("bob", 9002, heartbeat=5, incarnation=20)],
    }
    await client.request("POST", "/gossip", json_body=gossip)

    response = await join(client, "bob", 9002, incarnation=10)

    assert response.code == 201
    assert (await registry(client))[1] == entry(
        "bob", 9002, heartbeat=5, incarnation=20
    )


@pytest.mark.gen_test
async def test_join_own_name_conflicts(client: Any) -> None:
    """A join under the receiving node's own name is a 409 and changes nothing."""
    before = await registry(client)

    response = await join(client, NAME, 9009)

    assert response.code == 409
    assert await registry(client) == before


@pytest.mark.gen_test(timeout=20)
async def test_join_live_name_elsewhere_conflicts(client: Any) -> None:
    """A join under the name of a member that still responds elsewhere is a 409;
    once that member stops responding, the same join is accepted."""
    bob = GossipNode("bob")
    await join(client, "bob", bob.port)
    before = await registry(client)

    rejected = await join(client, "bob", 9009, incarnation=50)
    after_rejection = await registry(client)
    await bob.crash()
    accepted = await join(client, "bob", 9009, incarnation=50)

    assert rejected.code == 409
    assert "bob" in json.loads(rejected.body)["error"]
    assert after_rejection == before
    assert accepted.code == 201
    assert (await registry(client))[1] == entry(
        "bob", 9009, heartbeat=0, incarnation=50
    )


@pytest.mark.gen_test
async def test_gossip_merges_and_replies_with_table(client: Any) -> None:
    """POST /gossip merges the sender's table and replies with the merged table."""
    members = [entry("bob", 9002, heartbeat=3), entry("carol", 9003, status="suspect")]

    response = await client.request(
        "POST", "/gossip", json_body={"from": "bob", "members": members}
    )

    assert response.code == 200
    reply = json.loads(response.body)["members"]
    assert [m["name"] for m in reply] == ["alice", "bob", "carol"]
    assert reply[1:] == members
    assert await registry(client) == reply


@pytest.mark.gen_test
async def test_gossip_own_entry_not_overwritten(client: Any, base_url: str) -> None:
    """Gossip claiming the node itself is dead makes it refute, not die."""
    own = (await registry(client))[0]
    rumour = dict(own, status="dead")

    await client.request(
        "POST", "/gossip", json_body={"from": "bob", "members": [rumour]}
    )

    now = (await registry(client))[0]
    assert now["status"] == "alive"
    assert now["address"] == base_url
    assert now["incarnation"] == own["incarnation"] + 1


INVALID_REQUESTS = [
    ("POST", "/registry", b"{not json", 400),
    ("POST", "/registry", b"[]", 400),
    ("POST", "/registry", b'{"name": "bob", "address": "http://127.0.0.1:1"}', 422),
    (
        "POST",
        "/registry",
        b'{"name": "Bob", "address": "http://127.0.0.1:1", "incarnation": 1}',
        422,
    ),
    (
        "POST",
        "/registry",
        b'{"name": "bob", "address": "ftp://127.0.0.1:1", "incarnation": 1}',
        422,
    ),
    (
        "POST",
        "/registry",
        b'{"name": "bob", "address": "http://127.0.0.1:1", "incarnation": "1"}',
        422,
    ),
    ("POST", "/gossip", b"{not json", 400),
    ("POST", "/gossip", b'{"from": "bob"}', 422),
    ("POST", "/gossip", b'{"from": "bob", "members": "all"}', 422),
    (
        "POST",
        "/gossip",
        json.dumps(
            {
                "from": "bob",
                "members": [entry("bob", 9002), entry("carol", 9003, heartbeat=-1)],
            }
        ).encode(),
        422,
    ),
    (
        "POST",
        "/gossip",
        json.dumps(
            {"from": "bob", "members": [entry(f"n{i}", 9000 + i) for i in range(6)]}
        ).encode(),
        422,
    ),
    (
        "POST",
        "/gossip",
        json.dumps(
            {
                "from": "bob",
                "members": [entry("bob", 9002), entry("bob", 9002, heartbeat=2)],
            }
        ).encode(),
        422,
    ),
    ("POST", "/gossip", b'{"from": "bob", "members": [' + b" " * 70000 + b"]}", 413),
    ("DELETE", "/registry/bob", b'{"incarnation": 10}', 422),
    ("DELETE", "/registry/bob", b'{"incarnation": 10, "heartbeat": true}', 422),
    ("DELETE", "/registry/bob", b"nope", 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), INVALID_REQUESTS)
@pytest.mark.gen_test
async def test_invalid_input_rejected_and_ignored(
    client: Any, method: str, path: str, body: bytes, status: int
) -> None:
    """Malformed membership input gets its status and the table stays as it was."""
    await join(client, "bob", 9002)
    before = await registry(client)

    response = await client.request(
        method, path, body=body, headers={"Content-Type": "application/json"}
    )

    assert response.code == status
    error = json.loads(response.body)
    assert error["status"] == status
    assert isinstance(error["error"], str)
    assert await registry(client) == before


@pytest.mark.gen_test
async def test_write_without_json_media_type_rejected(client: Any) -> None:
    """A membership write whose body is not declared as JSON gets 415."""
    body = json.dumps(
        {"name": "bob", "address": "http://127.0.0.1:1", "incarnation": 1}
    )

    response = await client.request(
        "POST", "/registry", body=body, headers={"Content-Type": "text/plain"}
    )

    assert response.code == 415
    assert [m["name"] for m in await registry(client)] == ["alice"]


@pytest.mark.gen_test
async def test_leave_marks_member_left(client: Any) -> None:
    """DELETE /registry/<name> marks the member left at the announced version."""
    await join(client, "bob", 9002)

    response = await client.request(
        "DELETE", "/registry/bob", json_body={"incarnation": 10, "heartbeat": 4}
    )

    assert response.code == 204
    assert response.body == b""
    assert (await registry(client))[1] == entry("bob", 9002, heartbeat=4, status="left")


@pytest.mark.gen_test
async def test_leave_without_body_bumps_heartbeat(client: Any) -> None:
    """A leave without a body marks the member left one heartbeat above the known one."""
    await join(client, "bob", 9002)

    response = await client.request("DELETE", "/registry/bob")

    assert response.code == 204
    assert (await registry(client))[1] == entry("bob", 9002, heartbeat=1, status="left")


@pytest.mark.gen_test
async def test_leave_stale_or_unknown(client: Any) -> None:
    """A leave below the known version changes nothing; an unknown name is a 404."""
    gossip = {"from": "bob", "members": [entry("bob", 9002, heartbeat=8)]}
    await client.request("POST", "/gossip", json_body=gossip)

    stale = await client.request(
        "DELETE", "/registry/bob", json_body={"incarnation": 10, "heartbeat": 3}
    )
    unknown = await client.request("DELETE", "/registry/carol")

    assert stale.code == 204
    assert (await registry(client))[1] == entry("bob", 9002, heartbeat=8)
    assert unknown.code == 404


def signed(method: str, path: str, body: bytes, secret: str = SECRET, skew: float = 0):
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, method, path, body, time.time() + skew),
    }


SETUP_BODY = json.dumps({"from": "bob", "members": [entry("bob", 9002)]}).encode()
GOSSIP_BODY = json.dumps(
    {"from": "bob", "members": [entry("bob", 9002, heartbeat=2)]}
).encode()
JOIN_BODY = json.dumps(
    {"name": "carol", "address": "http://127.0.0.1:9", "incarnation": 1}
)
LEAVE_BODY = json.dumps({"incarnation": 10, "heartbeat": 9}).encode()


@pytest.mark.parametrize("secret", [SECRET])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/gossip", GOSSIP_BODY),
        ("POST", "/registry", JOIN_BODY.encode()),
        ("DELETE", "/registry/bob", LEAVE_BODY),
    ],
)
@pytest.mark.gen_test
async def test_unsigned_or_badly_signed_writes_rejected(
    client: Any, secret: str, method: str, path: str, body: bytes
) -> None:
    """With a secret, unsigned, wrongly signed and stale writes get 401 and change
    nothing, and a correctly signed one is accepted."""
    await client.request(
        "POST",
        "/gossip",
        body=SETUP_BODY,
        headers=signed("POST", "/gossip", SETUP_BODY),
    )
    before = await registry(client)
    attempts = {
        "unsigned": {"Content-Type": "application/json"},
        "wrong secret": signed(method, path, body, secret="guess"),
        "other path": signed(method, path + "/", body),
        "stale": signed(method, path, body, skew=-301),
        "future": signed(method, path, body, skew=301),
    }

    responses = {
        case: await client.request(method, path, body=body, headers=headers)
        for case, headers in attempts.items()
    }
    after_rejections = await registry(client)
    accepted = await client.request(
        method, path, body=body, headers=signed(method, path, body)
    )

    for case, response in responses.items():
        assert response.code == 401, case
        assert json.loads(response.body)["status"] == 401, case
    assert after_rejections == before
    assert accepted.code in (200, 201, 204)
    assert await registry(client) != before


@pytest.mark.gen_test
async def test_gossip_reply_gzipped_when_accepted(client: Any) -> None:
    """A gossip reply is gzip-compressed for a client that accepts gzip, and plain otherwise."""
    message = {"from": "bob", "members": [entry("bob", 9002)]}

    compressed = await client.request(
        "POST", "/gossip", json_body=message, headers={"Accept-Encoding": "gzip"}
    )
    plain = await client.http_client.fetch(
        client.base_url + "/gossip",
        method="POST",
        body=json.dumps(message),
        headers={"Content-Type": "application/json"},
        decompress_response=False,
    )

    assert compressed.code == 200
    assert compressed.headers.get("X-Consumed-Content-Encoding") == "gzip"
    assert [m["name"] for m in json.loads(compressed.body)["members"]] == [
        "alice",
        "bob",
    ]
    assert plain.code == 200
    assert "Content-Encoding" not in plain.headers
    assert json.loads(plain.body) == json.loads(compressed.body)
