"""Tuning knobs of the gossip membership protocol, in one object.

Timeouts are counted in gossip rounds, so they scale with ``interval``: a network that
gossips every 0.1 s detects a crash ten times sooner than one that gossips every second,
and pays ten times the traffic for it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class GossipConfig:
    """Timing, fan-out and size limits of one node's membership protocol."""

    # Seconds between two gossip rounds of this node. Lower detects failures and spreads
    # news sooner but costs proportionally more requests and CPU on every node.
    interval: float = 1.0

    # Fraction of ``interval`` by which each round is randomly moved (Tornado's
    # PeriodicCallback jitter), so that nodes started together do not gossip in lockstep.
    # Higher spreads load more evenly and makes round lengths less regular.
    jitter: float = 0.1

    # Live members contacted per round. Raising it converges in fewer rounds and tolerates more lost
    # exchanges. Each extra peer adds one request per
    # round and one table of N entries in each direction.
    fanout: int = 2

    # Seconds one exchange may take, connecting included. It must stay well under
    # ``interval`` so a slow peer never holds up the next round. Raising it tolerates
    # slower peers; lowering it counts more slow exchanges as failed.
    exchange_timeout: float = 0.5

    # Rounds without a heartbeat increase before a member is marked ``suspect``. Suspect
    # members are still contacted and still served. Lowering it flags stalls sooner but
    # flags more healthy members on a loaded machine.
    suspect_rounds: int = 4

    # Rounds without a heartbeat increase before a member is marked ``dead``. It must
    # exceed the staleness with which heartbeats reach a node through gossip (estimated
    # at 3-6 rounds for 50 nodes at fanout 2 by simulation). Lowering it detects crashes
    # sooner and raises the risk of declaring a slow but healthy node dead.
    dead_rounds: int = 8

    # Rounds a ``left`` entry is kept, and gossiped, before it is dropped. It must
    # outlast every node's detection window and the age of any gossip still in flight,
    # or old gossip brings the member back. Raising it costs table space.
    tombstone_rounds: int = 60

    # Rounds a ``dead`` entry is kept, gossiped and now and then probed, before it is
    # dropped. A partition heals by itself only while each side still keeps the other
    # side's entries, so this is the longest partition that heals without a restart.
    # Raising it costs table space and a failed connection attempt now and then for
    # each node that is gone for good. It must be at least ``tombstone_rounds``.
    dead_retention_rounds: int = 3600

    # A gap between two of this node's own rounds longer than this many rounds means its
    # own loop stalled (paused process, busy CPU); it then convicts nobody until it hears
    # fresh gossip or has run normally for ``dead_rounds``. Lowering it guards against
    # shorter stalls and delays more real detections after small hiccups.
    stall_rounds: int = 4

    # Seconds each leave announcement may take on shutdown. The announcements go out in
    # parallel, so this bounds the delay that leaving adds to shutdown.
    leave_timeout: float = 0.5

    # Seconds a join request to one seed may take. The seed may first check, with one
    # exchange timeout, whether a node already using the name still responds, so this
    # must exceed ``exchange_timeout``.
    join_timeout: float = 5.0

    # First and longest wait, in seconds, between join attempts when no seed responds.
    # The wait doubles after each failed attempt. With a longest wait of 2 rounds, a seed
    # that comes up late is joined within about 5 rounds p99 instead of 25 (simulator, 50
    # nodes). Raising it saves one small request per wait while the seed is down.
    join_backoff_initial: float = 1.0
    join_backoff_max: float = 2.0

    # Largest member table accepted from a peer; larger tables are rejected whole (422).
    # It also sizes the HTTP client, so that a leave reaches every member at once.
    # NOTE: a table entry is about 100-150 bytes of JSON, so the node's default body
    # limit of 64 KiB already rejects (413) tables of roughly 450-650 members. Larger
    # networks need a larger --max-body-size on every node.
    max_members: int = 1000

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"gossip interval must be positive, got {self.interval}")
        if not 0 < self.exchange_timeout <= self.interval:
            raise ValueError(
                f"exchange timeout {self.exchange_timeout} s must be positive and at most "
                f"the interval of {self.interval} s"
            )
        if self.join_timeout <= self.exchange_timeout:
            raise ValueError(
                f"join timeout {self.join_timeout} s must exceed the exchange timeout of "
                f"{self.exchange_timeout} s"
            )
        if self.fanout < 1:
            raise ValueError(f"fanout must be at least 1, got {self.fanout}")
        rounds = (
            self.suspect_rounds,
            self.dead_rounds,
            self.tombstone_rounds,
            self.dead_retention_rounds,
        )
        if not 0 < rounds[0] < rounds[1] <= rounds[2] <= rounds[3]:
            raise ValueError(
                "rounds must satisfy 0 < suspect_rounds < dead_rounds <= "
                f"tombstone_rounds <= dead_retention_rounds, got {rounds}"
            )

    @classmethod
    def production(cls, interval: float = 1.0) -> GossipConfig:
        """Return the defaults for ``interval`` seconds between rounds."""
        return cls(
            interval=interval,
            exchange_timeout=interval / 2,
            leave_timeout=min(0.5, interval),
            join_timeout=max(5.0, interval),
            join_backoff_initial=interval,
            join_backoff_max=2 * interval,
        )

    @classmethod
    def fast(cls, interval: float = 0.1) -> GossipConfig:
        """Return a profile for tests: short rounds, and timeouts with more rounds of
        margin, because many nodes share one loaded event loop there."""
        return cls(
            interval=interval,
            exchange_timeout=interval / 2,
            join_timeout=2.0,
            suspect_rounds=6,
            dead_rounds=12,
            tombstone_rounds=100,
            dead_retention_rounds=600,
            stall_rounds=6,
            leave_timeout=0.5,
            join_backoff_initial=interval,
            join_backoff_max=1.0,
        )

    @property
    def suspect_timeout(self) -> float:
        """Seconds without a heartbeat increase before a member becomes suspect."""
        return self.suspect_rounds * self.interval

    @property
    def dead_timeout(self) -> float:
        """Seconds without a heartbeat increase before a member becomes dead."""
        return self.dead_rounds * self.interval

    @property
    def tombstone_timeout(self) -> float:
        """Seconds a left entry is kept before it is dropped."""
        return self.tombstone_rounds * self.interval

    @property
    def dead_retention_timeout(self) -> float:
        """Seconds a dead entry is kept, and probed now and then, before it is dropped."""
        return self.dead_retention_rounds * self.interval

    @property
    def stall_timeout(self) -> float:
        """Seconds between own rounds past which this node's own loop counts as stalled."""
        return self.stall_rounds * self.interval
