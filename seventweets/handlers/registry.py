"""Membership routes: the member list, join, leave, and push-pull gossip between nodes.

Writes are node-to-node: when the network has a shared secret, each must carry a valid
signature, checked before the body is parsed, so an unsigned request changes nothing.
"""

from __future__ import annotations

from seventweets.errors import BadRequestError, NotFoundError
from seventweets.gossip import Gossiper
from seventweets.gossip.members import (
    NAME_PATTERN,
    NAME_RULE,
    Status,
    max_table_bytes,
    members_to_json,
    parse_gossip_message,
    parse_join_request,
    parse_leave_request,
)
from seventweets.gossip.signing import SIGNATURE_HEADER
from seventweets.handlers.base import JsonHandler


class _MembershipHandler(JsonHandler):
    gossiper: Gossiper

    @property
    def max_body_size(self) -> int:
        """Return the larger of the node's limit and room for the largest member table.

        A typical entry takes about 110 bytes, so the 64 KiB tweet limit alone would stop
        gossip at roughly 600 members.
        """
        table_size = max_table_bytes(self.gossiper.config.max_members)
        return max(super().max_body_size, table_size)

    def verify_signature(self) -> None:
        self.gossiper.verify_signature(
            self.request.method or "",
            self.request.uri or "",
            self.body,
            self.request.headers.get(SIGNATURE_HEADER),
        )


class RegistryHandler(_MembershipHandler):
    route = "/registry"

    def get(self) -> None:
        raw = self.get_query_argument("status", None)
        status = None
        if raw is not None:
            try:
                status = Status(raw)
            except ValueError:
                allowed = ", ".join(status.value for status in Status)
                raise BadRequestError(
                    f"query parameter status {raw!r} is invalid; use one of {allowed}"
                ) from None

        self.write_json(members_to_json(self.gossiper.members(status)))

    async def post(self) -> None:
        self.verify_signature()
        body = self.parse_json_body()
        assert body is not None
        request = parse_join_request(body)

        members = await self.gossiper.accept_join(request)

        self.write_json(members_to_json(members), status=201)


class RegistryMemberHandler(_MembershipHandler):
    route = "/registry/<name>"

    def get(self, name: str) -> None:
        member = self.gossiper.member(_member_name(name))
        if member is None:
            raise NotFoundError(f"no member named {name!r}")

        self.write_json(member.to_json())

    def delete(self, name: str) -> None:
        self.verify_signature()
        announced = parse_leave_request(self.parse_json_body(required=False))

        self.gossiper.accept_leave(_member_name(name), announced)

        self.set_status(204)
        self.finish()


class GossipHandler(_MembershipHandler):
    route = "/gossip"

    def post(self) -> None:
        self.verify_signature()
        body = self.parse_json_body()
        assert body is not None
        message = parse_gossip_message(body, self.gossiper.config.max_members)

        members = self.gossiper.accept_gossip(message)

        self.write_json({"members": members_to_json(members)}, compress=True)


def _member_name(raw: str) -> str:
    """Return the member name of a path; a name that cannot exist is a 404."""
    if not NAME_PATTERN.fullmatch(raw):
        raise NotFoundError(f"no member named {raw!r}; names are {NAME_RULE}")
    return raw
