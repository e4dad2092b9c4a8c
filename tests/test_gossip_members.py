"""Properties of the member merge rules and validation of member entries from peers."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seventweets.errors import ValidationError
from seventweets.gossip.members import (
    Member,
    Status,
    is_view_change,
    left_version,
    merge_member,
    merge_tables,
    parse_address,
    parse_gossip_message,
    parse_join_request,
    parse_leave_request,
    parse_member,
    supersedes,
)

NAMES = ["a", "b", "c"]


def address_of(name: str, incarnation: int) -> str:
    # One address per (name, incarnation): a process keeps its address for its life.
    return f"http://127.0.0.1:{8000 + incarnation % 3}/{name}"


@st.composite
def members(draw: st.DrawFn, name: str | None = None) -> Member:
    chosen = name if name is not None else draw(st.sampled_from(NAMES))
    incarnation = draw(st.integers(0, 4))
    return Member(
        name=chosen,
        address=address_of(chosen, incarnation),
        status=draw(st.sampled_from(list(Status))),
        incarnation=incarnation,
        heartbeat=draw(st.integers(0, 4)),
    )


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Member]:
    chosen = draw(st.lists(st.sampled_from(NAMES), unique=True))
    return {name: draw(members(name)) for name in chosen}


@given(tables(), tables())
def test_merge_commutative(first: dict[str, Member], second: dict[str, Member]) -> None:
    """Merging two tables gives the same result in either order."""

    forward = merge_tables(first, second)
    backward = merge_tables(second, first)

    assert forward == backward


@given(tables(), tables(), tables())
def test_merge_associative(
    first: dict[str, Member], second: dict[str, Member], third: dict[str, Member]
) -> None:
    """Grouping does not matter when three tables are merged."""

    left_first = merge_tables(merge_tables(first, second), third)
    right_first = merge_tables(first, merge_tables(second, third))

    assert left_first == right_first


@given(tables(), tables())
def test_merge_idempotent(first: dict[str, Member], second: dict[str, Member]) -> None:
    """Merging a table into itself, or the same table twice, changes nothing more."""

    once = merge_tables(first, second)
    twice = merge_tables(once, second)

    assert merge_tables(first, first) == first
    assert twice == once


@given(tables(), tables())
def test_merge_never_lowers_version(
    first: dict[str, Member], second: dict[str, Member]
) -> None:
    """No entry of a merged table has a lower version than either input's entry."""

    merged = merge_tables(first, second)

    for source in (first, second):
        for name, member in source.items():
            assert merged[name].version >= member.version


@given(members("a"), members("a"))
def test_merge_picks_highest_version_then_precedence(
    known: Member, received: Member
) -> None:
    """The winner has the highest version, and at equal versions the higher status."""

    winner = merge_member(known, received)

    key = (winner.version, winner.status.precedence)
    assert key == max(
        (known.version, known.status.precedence),
        (received.version, received.status.precedence),
    )


@given(members("a"), st.sampled_from([Status.DEAD, Status.LEFT]))
def test_tombstone_beats_stale_alive(member: Member, tombstone_status: Status) -> None:
    """A tombstone is not replaced by alive gossip at the same or a lower version."""
    tombstone = member.with_status(tombstone_status)
    stale = Member(
        member.name,
        member.address,
        Status.ALIVE,
        member.incarnation,
        max(0, member.heartbeat - 1),
    )

    same_version = merge_member(tombstone, member.with_status(Status.ALIVE))
    older = merge_member(tombstone, stale)

    assert same_version == tombstone
    assert older == tombstone


def test_left_beats_dead_beats_suspect_beats_alive() -> None:
    """At equal versions the status precedence is left, dead, suspect, alive."""
    base = Member("a", "http://127.0.0.1:8001", Status.ALIVE, 5, 3)
    ordered = [Status.ALIVE, Status.SUSPECT, Status.DEAD, Status.LEFT]

    for lower, higher in itertools.pairwise(ordered):
        winner_up = merge_member(base.with_status(lower), base.with_status(higher))
        winner_down = merge_member(base.with_status(higher), base.with_status(lower))

        assert winner_up.status is higher
        assert winner_down.status is higher


@given(members("a"), st.integers(1, 5), st.booleans())
def test_restart_always_wins(known: Member, later: int, moved: bool) -> None:
    """A restart (a higher incarnation at heartbeat 0) beats any entry, at any address."""
    incarnation = known.incarnation + later
    address = "http://127.0.0.1:9999" if moved else known.address
    restarted = Member("a", address, Status.ALIVE, incarnation, 0)

    winner = merge_member(known, restarted)

    assert winner == restarted


@given(
    members("a"), st.integers(0, 4), st.integers(0, 9), st.sampled_from(list(Status))
)
def test_moved_without_restart_loses(
    known: Member, lower: int, heartbeat: int, status: Status
) -> None:
    """Another address without a higher incarnation never replaces an entry."""
    incarnation = max(0, known.incarnation - lower)
    moved = Member("a", "http://127.0.0.1:9999", status, incarnation, heartbeat)

    winner = merge_member(known, moved)

    assert winner == known


def test_restart_beats_tombstone() -> None:
    """A restarted node's first alive entry beats the left tombstone of its last life."""
    left = Member("a", "http://127.0.0.1:8001", Status.LEFT, 1000, 57)
    restarted = Member("a", "http://127.0.0.1:8001", Status.ALIVE, 2000, 0)

    winner = merge_member(left, restarted)

    assert winner == restarted


def test_address_change_needs_higher_incarnation() -> None:
    """A new address is taken only together with a higher incarnation."""
    known = Member("a", "http://127.0.0.1:8001", Status.ALIVE, 1000, 5)
    same_incarnation = Member("a", "http://127.0.0.1:9001", Status.ALIVE, 1000, 9)
    higher_incarnation = Member("a", "http://127.0.0.1:9001", Status.ALIVE, 1001, 0)

    assert not supersedes(same_incarnation, known)
    assert merge_member(known, same_incarnation) == known
    assert merge_member(known, higher_incarnation) == higher_incarnation


def test_address_conflict_keeps_first_claim() -> None:
    """Two claims of one name and incarnation at two addresses keep the table's own."""
    first = {"a": Member("a", "http://127.0.0.1:8001", Status.ALIVE, 7, 1)}
    second = {"a": Member("a", "http://127.0.0.1:9001", Status.ALIVE, 7, 4)}

    assert merge_tables(first, second) == first
    assert merge_tables(second, first) == second


def test_left_version_rules() -> None:
    """A leave lands at its announced version, one above the known one, or not at all."""
    known = Member("a", "http://127.0.0.1:8001", Status.ALIVE, 7, 10)

    assert left_version(known, None) == (7, 11)
    assert left_version(known, (7, 12)) == (7, 12)
    assert left_version(known, (7, 10)) == (7, 10)
    assert left_version(known, (7, 9)) is None
    assert left_version(known.with_status(Status.LEFT), (7, 10)) is None


VALID_ENTRY = {
    "name": "bob",
    "address": "http://127.0.0.1:8002",
    "status": "alive",
    "incarnation": 3,
    "heartbeat": 120,
}


def test_parse_member_valid() -> None:
    """A well-formed entry becomes a Member with the same fields."""

    member = parse_member(dict(VALID_ENTRY))

    assert member == Member("bob", "http://127.0.0.1:8002", Status.ALIVE, 3, 120)
    assert member.to_json() == VALID_ENTRY


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Bob"),
        ("name", ""),
        ("name", "a" * 33),
        ("name", "bob\x00"),
        ("name", 7),
        ("address", "ftp://127.0.0.1:8002"),
        ("address", "127.0.0.1:8002"),
        ("address", "http://"),
        ("address", "http://user:pw@127.0.0.1:8002"),
        ("address", "http://127.0.0.1:8002/?q=1"),
        ("address", "http://127.0.0.1:99999"),
        ("address", "http://127.0.0.1:8002 x"),
        ("address", None),
        ("status", "gone"),
        ("status", 1),
        ("incarnation", -1),
        ("incarnation", 1.5),
        ("incarnation", True),
        ("incarnation", "3"),
        ("incarnation", 2**63),
        ("heartbeat", None),
    ],
)
def test_parse_member_rejects_invalid_field(field: str, value: object) -> None:
    """Each invalid field value is a validation error naming that field."""
    entry = dict(VALID_ENTRY, **{field: value})

    with pytest.raises(ValidationError) as raised:
        parse_member(entry)

    assert field in raised.value.message


@pytest.mark.parametrize("field", sorted(VALID_ENTRY))
def test_parse_member_rejects_missing_field(field: str) -> None:
    """An entry without one of its five fields is a validation error naming it."""
    entry = {key: value for key, value in VALID_ENTRY.items() if key != field}

    with pytest.raises(ValidationError) as raised:
        parse_member(entry)

    assert field in raised.value.message


def test_parse_address_strips_trailing_slash() -> None:
    """Addresses are compared without a trailing slash."""

    assert parse_address("https://node.example:8443/") == "https://node.example:8443"


def test_gossip_message_rejected_whole() -> None:
    """One invalid entry, a duplicate name or too many entries rejects the message."""
    good = dict(VALID_ENTRY)
    bad = dict(VALID_ENTRY, name="c", status="zombie")
    duplicate = dict(VALID_ENTRY, heartbeat=5)

    with pytest.raises(ValidationError, match=r"members\[1\]\.status"):
        parse_gossip_message({"from": "bob", "members": [good, bad]}, max_members=10)
    with pytest.raises(ValidationError, match="more than once"):
        parse_gossip_message(
            {"from": "bob", "members": [good, duplicate]}, max_members=10
        )
    with pytest.raises(ValidationError, match="maximum of 1"):
        parse_gossip_message(
            {"from": "bob", "members": [good, dict(good, name="c")]}, max_members=1
        )
    with pytest.raises(ValidationError, match="from"):
        parse_gossip_message({"from": "Bob!", "members": [good]}, max_members=10)
    with pytest.raises(ValidationError, match="must be an array"):
        parse_gossip_message({"from": "bob", "members": {"a": 1}}, max_members=10)


def test_parse_join_and_leave_requests() -> None:
    """Join and leave bodies are checked field by field; a leave body is optional."""

    join = parse_join_request(
        {"name": "c", "address": "http://127.0.0.1:8003/", "incarnation": 9}
    )

    assert join.address == "http://127.0.0.1:8003"
    assert parse_leave_request(None) is None
    assert parse_leave_request({"incarnation": 9, "heartbeat": 4}) == (9, 4)
    with pytest.raises(ValidationError, match="incarnation"):
        parse_join_request({"name": "c", "address": "http://127.0.0.1:8003"})
    with pytest.raises(ValidationError, match="heartbeat"):
        parse_leave_request({"incarnation": 9, "heartbeat": "4"})


def test_view_change_ignores_heartbeats() -> None:
    """A heartbeat alone is no view change; presence, status, incarnation and address are."""
    base = Member("b", "http://127.0.0.1:8002", Status.ALIVE, 5, 1)

    assert not is_view_change(base, dataclasses.replace(base, heartbeat=2))
    assert is_view_change(None, base)
    assert is_view_change(base, None)
    assert is_view_change(base, dataclasses.replace(base, status=Status.SUSPECT))
    assert is_view_change(base, dataclasses.replace(base, incarnation=6))
    assert is_view_change(base, dataclasses.replace(base, address="http://127.0.0.1:9"))
