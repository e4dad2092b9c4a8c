"""Gossip membership: every node learns every other node and notices when one fails.

``members`` contains the pure merge rules, ``table`` one node's member table with failure
detection, ``gossiper`` the network side (the gossip loop, join and leave), ``signing``
the HMAC signatures of node-to-node requests. Nothing here deals with tweets or imports
``tornado.web``.
"""

from seventweets.gossip.config import GossipConfig
from seventweets.gossip.gossiper import Gossiper, JoinRejectedError
from seventweets.gossip.members import Member, Status
from seventweets.gossip.table import MemberTable

__all__ = [
    "GossipConfig",
    "Gossiper",
    "JoinRejectedError",
    "Member",
    "MemberTable",
    "Status",
]
