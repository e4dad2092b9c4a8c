"""One node's member table driven by a fake clock: detection, tombstones, claims."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seventweets.errors import NotFoundError, ValidationError
from seventweets.gossip.config import GossipConfig
from seventweets.gossip.members import JoinRequest, Member, Status
from seventweets.gossip.table import MemberTable

CONFIG = GossipConfig.production(1.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_table(
    clock: FakeClock, name: str = "a", incarnation: int = 1000
) -> MemberTable:
    return MemberTable(
        name, f"http://127.0.0.1:8001/{name}", incarnation, CONFIG, clock
    )


def peer(
    name: str, heartbeat: int, incarnation: int = 500, status: Status = Status.ALIVE
):
    return Member(name, f"http://127.0.0.1:8002/{name}", status, incarnation, heartbeat)


def run_rounds(table: MemberTable, clock: FakeClock, rounds: int) -> None:
    for _ in range(rounds):
        clock.now += CONFIG.interval
        table.tick()


def test_tick_bumps_own_heartbeat() -> None:
    """Each round starts by growing the node's own heartbeat."""
    clock = FakeClock()
    table = make_table(clock)

    table.tick()
    table.tick()

    assert table.me.heartbeat == 2
    assert table.me.status is Status.ALIVE


def test_silent_member_suspect_then_dead() -> None:
    """A member whose heartbeat stops growing turns suspect, then dead, on time."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()
    table.merge([peer("b", 1)])

    run_rounds(table, clock, CONFIG.suspect_rounds - 1)
    before_suspicion = table.member("b")
    run_rounds(table, clock, 1)
    suspected = table.member("b")
    run_rounds(table, clock, CONFIG.dead_rounds - CONFIG.suspect_rounds)
    convicted = table.member("b")

    assert before_suspicion is not None and before_suspicion.status is Status.ALIVE
    assert suspected is not None and suspected.status is Status.SUSPECT
    assert convicted is not None and convicted.status is Status.DEAD
    assert convicted.version == (500, 1)


def test_growing_heartbeat_keeps_member_alive() -> None:
    """A member whose heartbeat keeps growing is never suspected."""
    clock = FakeClock()
    table = make_table(clock)

    for heartbeat in range(1, 3 * CONFIG.dead_rounds):
        run_rounds(table, clock, 1)
        table.merge([peer("b", heartbeat)])

    member = table.member("b")
    assert member is not None and member.status is Status.ALIVE


def test_fresh_heartbeat_revives_suspect() -> None:
    """A suspect member becomes alive again as soon as its heartbeat grows."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()
    table.merge([peer("b", 1)])
    run_rounds(table, clock, CONFIG.suspect_rounds)

    table.merge([peer("b", 2)])

    member = table.member("b")
    assert member is not None and member.status is Status.ALIVE


def test_tombstone_dropped_after_ttl_and_kept_before() -> None:
    """A left entry stays for the tombstone timeout, blocking stale gossip, then goes."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()
    table.merge([peer("b", 5)])
    table.apply_leave("b", (500, 6))

    run_rounds(table, clock, CONFIG.tombstone_rounds - 1)
    table.merge([peer("b", 5)])
    kept = table.member("b")
    run_rounds(table, clock, 1)
    dropped = table.member("b")

    assert kept is not None and kept.status is Status.LEFT
    assert kept.version == (500, 6)
    assert dropped is None


def test_dropped_tombstone_not_taken_back() -> None:
    """After its tombstone expired here, a peer's older copy does not bring it back."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 5)])
    table.apply_leave("b", (500, 6))
    run_rounds(table, clock, CONFIG.tombstone_rounds)

    table.merge([peer("b", 6, status=Status.LEFT)])

    assert table.member("b") is None


def test_stale_alive_copy_after_drop_ignored() -> None:
    """A stale alive copy of a dropped member is ignored for one more tombstone timeout,
    while a restart at a higher version is accepted."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 5)])
    table.apply_leave("b", (500, 6))
    run_rounds(table, clock, CONFIG.tombstone_rounds)

    table.merge([peer("b", 4)])
    ignored = table.member("b")
    table.merge([peer("b", 0, incarnation=501)])

    assert ignored is None
    assert table.member("b").version == (501, 0)
    assert table.member("b").status is Status.ALIVE


def test_dead_entry_kept_longer_than_left() -> None:
    """A dead entry outlives the left tombstone timeout, so partitions can still heal,
    and is dropped after the dead retention timeout."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 5), peer("c", 5)])
    table.merge([peer("b", 5, status=Status.DEAD)])
    table.apply_leave("c", None)

    run_rounds(table, clock, CONFIG.tombstone_rounds)
    after_left_timeout = table.member("b")
    run_rounds(table, clock, CONFIG.dead_retention_rounds - CONFIG.tombstone_rounds)

    assert table.member("c") is None
    assert after_left_timeout is not None
    assert after_left_timeout.status is Status.DEAD
    assert table.member("b") is None


def test_own_entry_refutes_death_rumour() -> None:
    """A rumour of the node's own death makes it raise its incarnation, not die."""
    clock = FakeClock()
    table = make_table(clock, incarnation=1000)
    table.tick()
    rumour = table.me.with_status(Status.DEAD)

    table.merge([rumour])

    assert table.me.status is Status.ALIVE
    assert table.me.incarnation == 1001
    assert table.me.address == rumour.address


def test_own_entry_ignores_older_rumour() -> None:
    """An older rumour about the node itself changes nothing."""
    clock = FakeClock()
    table = make_table(clock, incarnation=1000)
    table.tick()
    table.tick()
    old = Member("a", "http://127.0.0.1:9999", Status.LEFT, 1000, 1)

    table.merge([old])

    assert table.me.incarnation == 1000
    assert table.me.address == "http://127.0.0.1:8001/a"


def test_stalled_node_convicts_nobody_until_fresh_gossip() -> None:
    """After its own loop stalls, a node waits for fresh gossip before convicting."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()
    table.merge([peer("b", 1), peer("c", 1)])

    clock.now += CONFIG.dead_timeout * 3
    table.tick()
    run_rounds(table, clock, CONFIG.suspect_rounds + 1)
    during_guard = table.members()
    table.merge([peer("b", 2)])
    run_rounds(table, clock, CONFIG.dead_rounds)

    assert table.stall_guarded is False
    assert all(member.status is Status.ALIVE for member in during_guard)
    b = table.member("b")
    c = table.member("c")
    assert b is not None and b.status is Status.DEAD
    assert c is not None and c.status is Status.DEAD


def test_late_first_round_is_a_stall() -> None:
    """A first round long after the table was made, as after a pause right at start,
    convicts nobody either."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 1)])

    clock.now += CONFIG.dead_timeout * 3
    table.tick()

    b = table.member("b")
    assert table.stall_guarded is True
    assert b is not None and b.status is Status.ALIVE


def test_stall_guard_expires_without_gossip() -> None:
    """A stalled node that hears nothing convicts after one dead timeout of running."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()
    table.merge([peer("b", 1)])

    clock.now += CONFIG.dead_timeout * 3
    table.tick()
    run_rounds(table, clock, CONFIG.dead_rounds + 1)

    b = table.member("b")
    assert b is not None and b.status is Status.DEAD


def test_join_conflict_only_for_live_entry_elsewhere() -> None:
    """Only a live member at another address, or this node itself, conflicts."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 1), peer("d", 1, status=Status.DEAD)])

    elsewhere = table.join_conflict(JoinRequest("b", "http://127.0.0.1:9002", 900))
    same_place = table.join_conflict(JoinRequest("b", "http://127.0.0.1:8002/b", 900))
    dead_name = table.join_conflict(JoinRequest("d", "http://127.0.0.1:9004", 900))
    own_name = table.join_conflict(JoinRequest("a", "http://127.0.0.1:9001", 900))
    new_name = table.join_conflict(JoinRequest("e", "http://127.0.0.1:9005", 900))

    assert elsewhere == peer("b", 1)
    assert same_place is None
    assert dead_name is None
    assert own_name == table.me
    assert new_name is None


def test_join_adds_alive_at_heartbeat_zero_unless_newer_known() -> None:
    """A join adds the node alive at heartbeat 0; a known newer version stays."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 7, incarnation=600)])

    table.apply_join(JoinRequest("c", "http://127.0.0.1:8003", 900))
    table.apply_join(JoinRequest("b", "http://127.0.0.1:8002/b", 500))

    assert table.member("c") == Member(
        "c", "http://127.0.0.1:8003", Status.ALIVE, 900, 0
    )
    assert table.member("b") == peer("b", 7, incarnation=600)


def test_restart_with_new_address_after_leave() -> None:
    """A node that left comes back alive at a new address with a higher incarnation."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer("b", 7)])
    table.apply_leave("b", None)

    table.apply_join(JoinRequest("b", "http://127.0.0.1:9002", 501))
    table.merge([peer("b", 7, status=Status.ALIVE)])

    assert table.member("b") == Member(
        "b", "http://127.0.0.1:9002", Status.ALIVE, 501, 0
    )


def test_leave_unknown_member_not_found() -> None:
    """A leave for a name the table does not hold is a not-found error."""
    table = make_table(FakeClock())

    with pytest.raises(NotFoundError):
        table.apply_leave("zed", None)


def test_leave_stale_version_changes_nothing() -> None:
    """A leave announcing a version below the known one is ignored."""
    table = make_table(FakeClock())
    table.merge([peer("b", 7)])

    table.apply_leave("b", (500, 3))

    assert table.member("b") == peer("b", 7)


def test_start_leaving_is_final() -> None:
    """A leaving node is left one heartbeat higher, stops beating and refutes nothing."""
    clock = FakeClock()
    table = make_table(clock)
    table.tick()

    final = table.start_leaving()
    table.tick()
    table.merge([final.with_status(Status.DEAD)])

    assert final.status is Status.LEFT
    assert final.heartbeat == 2
    assert table.me == final


def test_choose_peers_fanout_and_dead_probe() -> None:
    """Partners are live members up to the fanout, plus a dead one now and then."""
    clock = FakeClock()
    table = make_table(clock)
    table.merge([peer(name, 1) for name in "bcdexy"])
    table.merge([peer("x", 1, status=Status.DEAD), peer("y", 1, status=Status.LEFT)])
    rng = random.Random(7)

    rounds = [table.choose_peers(rng) for _ in range(500)]

    live_counts = {sum(m.status.is_live for m in chosen) for chosen in rounds}
    dead_probes = sum(any(m.name == "x" for m in chosen) for chosen in rounds)
    assert live_counts == {CONFIG.fanout}
    assert all(m.name != "y" for chosen in rounds for m in chosen)
    # The dead member is tried with probability 1 / (4 live + 1) per round.
    assert 60 < dead_probes < 140


def test_metrics_counts_include_self() -> None:
    """Counts by status cover every status and include the node itself."""
    table = make_table(FakeClock())
    table.merge([peer("b", 1), peer("c", 1)])
    table.apply_leave("c", None)

    counts = table.counts_by_status()

    assert counts == {"alive": 2, "suspect": 0, "dead": 0, "left": 1}


@st.composite
def gossip_steps(draw: st.DrawFn) -> list[tuple[str, Member | None]]:
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        action = draw(st.sampled_from(["tick", "merge"]))
        if action == "tick":
            steps.append(("tick", None))
        else:
            name = draw(st.sampled_from(["a", "b", "c"]))
            incarnation = draw(st.integers(999, 1001))
            member = Member(
                name,
                f"http://127.0.0.1:{8000 + incarnation % 3}",
                draw(st.sampled_from(list(Status))),
                incarnation,
                draw(st.integers(0, 5)),
            )
            steps.append(("merge", member))
    return steps


@settings(max_examples=200)
@given(gossip_steps())
def test_versions_only_grow_and_self_stays_alive(
    steps: list[tuple[str, Member | None]],
) -> None:
    """Under any sequence of rounds and received entries, no version ever shrinks and
    the node's own entry stays alive at its own address."""
    clock = FakeClock()
    table = make_table(clock, incarnation=1000)
    own_address = table.me.address
    seen: dict[str, tuple[int, int]] = {}

    for action, member in steps:
        if action == "tick":
            clock.now += CONFIG.interval
            table.tick()
        else:
            assert member is not None
            table.merge([member])
        for current in table.members():
            assert current.version >= seen.get(current.name, (0, 0))
            seen[current.name] = current.version

        assert table.me.status is Status.ALIVE
        assert table.me.address == own_address


def test_versions_saturate_at_protocol_maximum() -> None:
    """Counters pushed to 2**63 - 1 by a peer stay there instead of overflowing."""
    clock = FakeClock()
    table = make_table(clock)
    limit = 2**63 - 1
    table.merge([peer("b", limit)])
    rumour = Member(table.me.name, table.me.address, Status.SUSPECT, limit, 0)

    table.apply_leave("b", None)
    table.merge([rumour])

    assert table.member("b").version == (500, limit)
    assert table.member("b").status is Status.LEFT
    assert table.me.incarnation == limit


def test_merge_past_capacity_changes_nothing() -> None:
    """A table that would grow past the maximum is rejected before any entry changes."""
    clock = FakeClock()
    config = dataclasses.replace(CONFIG, max_members=3)
    table = MemberTable("a", "http://127.0.0.1:8001", 1000, config, clock)
    table.merge([peer("b", 1)])

    with pytest.raises(ValidationError):
        table.merge([peer("b", 5), peer("c", 1), peer("d", 1)])

    assert [m.name for m in table.members()] == ["a", "b"]
    assert table.member("b").heartbeat == 1
