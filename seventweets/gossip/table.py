"""One node's member table: merges, failure detection and the join and leave claims.

The table needs nothing but a clock and, to choose peers, a ``random.Random``; it does no
I/O, so tests and a simulator can drive it with a fake clock and a seeded generator.
Times are seconds on the injected monotonic clock.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Iterable

from seventweets.errors import NotFoundError, ValidationError
from seventweets.gossip.config import GossipConfig
from seventweets.gossip.members import (
    JoinRequest,
    Member,
    Status,
    Version,
    bump,
    left_version,
    merge_member,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# Called with the entry before and after each change; None stands for "not in the table".
TransitionListener = Callable[[Member | None, Member | None], None]


@dataclasses.dataclass
class _Entry:
    member: Member
    # Clock time when this node last saw the member's version grow, or first saw it.
    heard_at: float
    # Clock time when the entry became dead or left; None while it is live.
    tombstone_at: float | None


class MemberTable:
    """Members known to one node, itself included, keyed by name."""

    def __init__(
        self,
        name: str,
        address: str,
        incarnation: int,
        config: GossipConfig,
        clock: Clock,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._on_transition = on_transition
        self._self = Member(name, address, Status.ALIVE, incarnation, 0)
        self._others: dict[str, _Entry] = {}
        # Counting from creation makes a first round that comes late, such as the
        # first round of a process paused right after it started, a stall as well.
        self._last_tick = clock()
        # Clock time when this node found its own loop stalled; None when not guarded.
        self._stall_guard_since: float | None = None
        # Version and drop time of each dropped entry. For one more tombstone timeout,
        # gossip about that member is ignored unless it carries a higher version, so a
        # stale copy held by a paused or partitioned peer cannot bring it back.
        self._dropped: dict[str, tuple[Version, float]] = {}

    # -- reading ----------------------------------------------------------------------

    @property
    def me(self) -> Member:
        """This node's own entry."""
        return self._self

    @property
    def name(self) -> str:
        return self._self.name

    @property
    def leaving(self) -> bool:
        return self._self.status is Status.LEFT

    @property
    def stall_guarded(self) -> bool:
        """Whether failure detection is held back because this node's loop stalled."""
        return self._stall_guard_since is not None

    def members(self, status: Status | None = None) -> list[Member]:
        """Return every member, this node included, sorted by name in code-point order."""
        everyone = [self._self, *(entry.member for entry in self._others.values())]
        if status is not None:
            everyone = [member for member in everyone if member.status is status]
        return sorted(everyone, key=lambda member: member.name)

    def member(self, name: str) -> Member | None:
        if name == self._self.name:
            return self._self
        entry = self._others.get(name)
        return entry.member if entry is not None else None

    def live_peers(self) -> list[Member]:
        """Return the alive and suspect members other than this node, sorted by name."""
        return sorted(
            (
                entry.member
                for entry in self._others.values()
                if entry.member.status.is_live
            ),
            key=lambda member: member.name,
        )

    def counts_by_status(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for member in self.members():
            counts[member.status.value] += 1
        return counts

    def choose_peers(self, rng: random.Random) -> list[Member]:
        """Choose this round's partners: ``fanout`` random live members, and now and then
        one dead member, so that a healed partition joins up again.

        A dead member is added with probability dead / (live + 1), so the probing is
        frequent when many members look dead (a partition) and rare when few do. Left
        members are never contacted.
        """
        live = self.live_peers()
        chosen = rng.sample(live, min(self.config.fanout, len(live)))
        dead = sorted(
            (e.member for e in self._others.values() if e.member.status is Status.DEAD),
            key=lambda member: member.name,
        )
        if dead and rng.random() < len(dead) / (len(live) + 1):
            chosen.append(rng.choice(dead))
        return chosen

    # -- the round --------------------------------------------------------------------

    def tick(self) -> Member:
        """Start a round: bump the own heartbeat, then detect failures and drop expired
        tombstones. Returns this node's entry as it is gossiped in this round."""
        now = self._clock()
        if not self.leaving:
            self._self = dataclasses.replace(
                self._self, heartbeat=bump(self._self.heartbeat)
            )
        self._check_own_stall(now)
        self._last_tick = now
        for entry in list(self._others.values()):
            self._detect_failure(entry, now)
            self._drop_expired_tombstone(entry, now)
        for name, (_, dropped_at) in list(self._dropped.items()):
            if now - dropped_at >= self.config.tombstone_timeout:
                del self._dropped[name]
        return self._self

    def _check_own_stall(self, now: float) -> None:
        if now - self._last_tick > self.config.stall_timeout:
            # Every silence measured now includes our own stall, so restart each live
            # member's timer and hold convictions until fresh gossip arrives.
            log.warning(
                "own gossip loop stalled name=%s seconds=%.2f; convicting nobody until "
                "fresh gossip arrives",
                self.name,
                now - self._last_tick,
            )
            self._stall_guard_since = now
            for entry in self._others.values():
                if entry.member.status.is_live:
                    entry.heard_at = max(entry.heard_at, now)
            return
        guard_since = self._stall_guard_since
        if guard_since is not None and now - guard_since >= self.config.dead_timeout:
            log.info("stall guard ended without fresh gossip name=%s", self.name)
            self._stall_guard_since = None

    def _detect_failure(self, entry: _Entry, now: float) -> None:
        member = entry.member
        if not member.status.is_live or self.stall_guarded:
            return
        silence = now - entry.heard_at
        if silence >= self.config.dead_timeout:
            self._replace(entry, member.with_status(Status.DEAD), now)
        elif silence >= self.config.suspect_timeout and member.status is Status.ALIVE:
            self._replace(entry, member.with_status(Status.SUSPECT), now)

    def _drop_expired_tombstone(self, entry: _Entry, now: float) -> None:
        if entry.tombstone_at is None:
            return
        if entry.member.status is Status.DEAD:
            keep_for = self.config.dead_retention_timeout
        else:
            keep_for = self.config.tombstone_timeout
        if now - entry.tombstone_at < keep_for:
            return
        del self._others[entry.member.name]
        self._dropped[entry.member.name] = (entry.member.version, now)
        log.info(
            "member dropped name=%s status=%s incarnation=%s",
            entry.member.name,
            entry.member.status.value,
            entry.member.incarnation,
        )
        self._notify(entry.member, None)

    # -- claims from peers ------------------------------------------------------------

    def merge(self, received: Iterable[Member]) -> int:
        """Merge a table received from a peer; return how many entries grew fresher.

        The caller has validated the whole table first, so a bad entry changes nothing.
        """
        received = list(received)
        self._check_capacity(candidate.name for candidate in received)
        now = self._clock()
        fresher = 0
        for candidate in received:
            if candidate.name == self.name:
                self._answer_rumour_about_self(candidate)
            elif self._merge_other(candidate, now):
                fresher += 1
        if fresher and self._stall_guard_since is not None:
            log.info("stall guard ended by fresh gossip name=%s", self.name)
            self._stall_guard_since = None
        return fresher

    def _merge_other(self, candidate: Member, now: float) -> bool:
        entry = self._others.get(candidate.name)
        if entry is None and candidate.status.is_tombstone:
            # Nodes drop a tombstone at different times, each counting from when it got
            # it. A node that took one back from a peer that has not dropped it yet would
            # undo its drop, and tombstones would never expire. Only a node that knew the
            # member needs the tombstone.
            return False
        if entry is None:
            dropped = self._dropped.get(candidate.name)
            if dropped is not None and candidate.version <= dropped[0]:
                return False
            self._others[candidate.name] = _Entry(candidate, now, None)
            self._log_change(None, candidate)
            self._notify(None, candidate)
            return True
        known = entry.member
        winner = merge_member(known, candidate)
        if winner is known:
            if candidate.address != known.address and candidate.version > known.version:
                log.warning(
                    "ignored address change without a higher incarnation name=%s "
                    "address=%s claimed_address=%s incarnation=%s",
                    known.name,
                    known.address,
                    candidate.address,
                    candidate.incarnation,
                )
            return False
        grew = winner.version > known.version
        if grew:
            entry.heard_at = now
        self._replace(entry, winner, now)
        return grew

    def _answer_rumour_about_self(self, rumour: Member) -> None:
        """Keep this node's own entry; refute a rumour that would otherwise win."""
        own = self._self
        if self.leaving or rumour.version < own.version:
            return
        if rumour.version == own.version and rumour == own:
            return
        refuted = dataclasses.replace(
            own, incarnation=bump(max(own.incarnation, rumour.incarnation))
        )
        log.info(
            "refuted rumour about this node name=%s rumour_status=%s rumour_address=%s "
            "rumour_incarnation=%s incarnation=%s",
            own.name,
            rumour.status.value,
            rumour.address,
            rumour.incarnation,
            refuted.incarnation,
        )
        self._self = refuted
        self._notify(own, refuted)

    def join_conflict(self, request: JoinRequest) -> Member | None:
        """Return the live entry that a join would take over at another address, if any.

        The caller must then check whether that address still responds to ``GET /health``
        with that name.
        """
        known = self.member(request.name)
        if known is None or not known.status.is_live:
            return None
        if known.address == request.address and known is not self._self:
            return None
        return known

    def _check_capacity(self, names: Iterable[str]) -> None:
        """Raise ValidationError when adding ``names`` would grow the table past the
        maximum, because peers reject a table that large and the node would be cut off."""
        new = {name for name in names if name != self.name and name not in self._others}
        size = len(self._others) + 1 + len(new)
        if new and size > self.config.max_members:
            raise ValidationError(
                f"adding {len(new)} new members would grow the member table to {size}, "
                f"more than the maximum of {self.config.max_members}"
            )

    def apply_join(self, request: JoinRequest) -> list[Member]:
        """Add a joining node as alive at its incarnation and heartbeat 0, unless a higher
        version is known, and return the table for the joiner."""
        if request.name == self.name:
            return self.members()
        self._check_capacity([request.name])
        joiner = Member(
            request.name, request.address, Status.ALIVE, request.incarnation, 0
        )
        self._merge_other(joiner, self._clock())
        return self.members()

    def apply_leave(self, name: str, announced: Version | None) -> None:
        """Mark a member ``left`` at its announced final version.

        Without an announced version the member is left one heartbeat above the version
        known here; an announced version lower than the known one changes nothing.
        """
        if name == self.name:
            log.warning("ignored leave announcement naming this node name=%s", name)
            return
        entry = self._others.get(name)
        if entry is None:
            raise NotFoundError(f"no member named {name!r}")
        version = left_version(entry.member, announced)
        if version is None:
            log.debug("ignored stale leave name=%s version=%s", name, announced)
            return
        incarnation, heartbeat = version
        departed = dataclasses.replace(
            entry.member,
            status=Status.LEFT,
            incarnation=incarnation,
            heartbeat=heartbeat,
        )
        self._merge_other(departed, self._clock())

    def start_leaving(self) -> Member:
        """Mark this node as left one heartbeat above any version it gossiped before,
        and return that final entry."""
        if not self.leaving:
            previous = self._self
            self._self = dataclasses.replace(
                previous, status=Status.LEFT, heartbeat=bump(previous.heartbeat)
            )
            self._log_change(previous, self._self)
            self._notify(previous, self._self)
        return self._self

    # -- bookkeeping ------------------------------------------------------------------

    def _replace(self, entry: _Entry, member: Member, now: float) -> None:
        previous = entry.member
        entry.member = member
        if member.status.is_tombstone and (
            entry.tombstone_at is None or member.status is not previous.status
        ):
            entry.tombstone_at = now
        elif member.status.is_live:
            entry.tombstone_at = None
        self._log_change(previous, member)
        self._notify(previous, member)

    def _notify(self, previous: Member | None, current: Member | None) -> None:
        if self._on_transition is not None:
            self._on_transition(previous, current)

    def _log_change(self, previous: Member | None, current: Member) -> None:
        if previous is None:
            log.info(
                "member added name=%s address=%s status=%s incarnation=%s",
                current.name,
                current.address,
                current.status.value,
                current.incarnation,
            )
            return
        if current.address != previous.address:
            log.info(
                "member address changed name=%s address=%s previous_address=%s "
                "incarnation=%s",
                current.name,
                current.address,
                previous.address,
                current.incarnation,
            )
        if current.incarnation != previous.incarnation and current.status.is_live:
            log.info(
                "member restarted name=%s incarnation=%s previous_incarnation=%s",
                current.name,
                current.incarnation,
                previous.incarnation,
            )
        if current.status is not previous.status:
            log.info(
                "member status changed name=%s status=%s previous_status=%s "
                "incarnation=%s heartbeat=%s",
                current.name,
                current.status.value,
                previous.status.value,
                current.incarnation,
                current.heartbeat,
            )
        elif current.version != previous.version:
            log.debug(
                "member heartbeat name=%s incarnation=%s heartbeat=%s",
                current.name,
                current.incarnation,
                current.heartbeat,
            )
