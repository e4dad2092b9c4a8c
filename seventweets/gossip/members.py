"""Member entries, their validation, and the pure rules that merge two views of a member.

A member's version is ``(incarnation, heartbeat)``. The incarnation grows each time the
node starts, and when it refutes a rumour about itself; the heartbeat grows at every
gossip round of that node. Nothing in this module does I/O or reads a clock, so the rules
can be checked exhaustively and driven by a simulator.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from seventweets.errors import ValidationError
from seventweets.jsonutil import json_type_name

NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,32}")
NAME_RULE = "1-32 characters of a-z, 0-9, _ and -"

# Versions travel as JSON numbers; this bound keeps them within a signed 64-bit integer.
MAX_VERSION_NUMBER = 2**63 - 1
MAX_ADDRESS_LENGTH = 2048


def max_table_bytes(max_members: int) -> int:
    """Return the largest JSON body that a table of ``max_members`` entries may need:
    the longest valid address plus 256 bytes for the other fields of each entry."""
    return max_members * (MAX_ADDRESS_LENGTH + 256)


_WHITESPACE = re.compile(r"\s")


class Status(enum.Enum):
    """Status of a member; ``value`` is its JSON spelling, ``precedence`` decides ties."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"

    @property
    def precedence(self) -> int:
        """Rank at equal versions: left beats dead beats suspect beats alive."""
        return _PRECEDENCE[self]

    @property
    def is_live(self) -> bool:
        """Whether the member is expected to respond to requests: alive or suspect."""
        return self in (Status.ALIVE, Status.SUSPECT)

    @property
    def is_tombstone(self) -> bool:
        """Whether the entry only records that the member is gone: dead or left."""
        return not self.is_live


_PRECEDENCE = {Status.ALIVE: 0, Status.SUSPECT: 1, Status.DEAD: 2, Status.LEFT: 3}

Version = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Member:
    """One node as some node's table records it."""

    name: str
    address: str
    status: Status
    incarnation: int
    heartbeat: int

    @property
    def version(self) -> Version:
        return (self.incarnation, self.heartbeat)

    def with_status(self, status: Status) -> Member:
        return dataclasses.replace(self, status=status)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "status": self.status.value,
            "incarnation": self.incarnation,
            "heartbeat": self.heartbeat,
        }


# -- merge rules ----------------------------------------------------------------------


def supersedes(candidate: Member, known: Member) -> bool:
    """Return whether ``candidate`` replaces ``known``, two entries for the same name.

    A higher version wins; at equal versions the status of higher precedence wins. A
    different address is accepted only together with a higher incarnation, because one
    process keeps one address for its whole life: the same incarnation at another
    address is a second process claiming the name, and the first claim stays.
    """
    if candidate.version < known.version:
        return False
    if (
        candidate.address != known.address
        and candidate.incarnation <= known.incarnation
    ):
        return False
    if candidate.version > known.version:
        return True
    return candidate.status.precedence > known.status.precedence


def merge_member(known: Member | None, candidate: Member) -> Member:
    """Return the entry that wins between the entry a table contains and a received one."""
    if known is None or supersedes(candidate, known):
        return candidate
    return known


def merge_tables(
    first: Mapping[str, Member], second: Mapping[str, Member]
) -> dict[str, Member]:
    """Merge two tables name by name.

    The result is the same in either order as long as the tables agree on the address
    of each ``(name, incarnation)``; where they do not, the entry of ``first`` stays.
    """
    merged = dict(first)
    for name, candidate in second.items():
        merged[name] = merge_member(merged.get(name), candidate)
    return merged


def bump(number: int) -> int:
    """Return ``number + 1``, saturating at the largest version number peers accept.

    A version past 2**63 - 1 would make every peer reject this node's gossip whole, so a
    counter that a hostile or buggy peer pushed to the limit stays there instead.
    """
    return min(number + 1, MAX_VERSION_NUMBER)


def left_version(known: Member, announced: Version | None) -> Version | None:
    """Return the version at which a leave announcement marks ``known`` as left.

    ``announced`` is the leaving node's final version, or None when the announcement
    carried none: the entry is then left one heartbeat above the known version. Returns
    None when the announcement is older than what is known, so nothing changes.
    """
    if announced is None:
        return (known.incarnation, bump(known.heartbeat))
    if announced < known.version:
        return None
    if announced == known.version and known.status is Status.LEFT:
        return None
    return announced


# -- parsing of peer input ------------------------------------------------------------


def parse_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {json_type_name(value)}")
    if not NAME_PATTERN.fullmatch(value):
        raise ValidationError(f"{field} {value!r} is invalid: use {NAME_RULE}")
    return value


def parse_address(value: Any, field: str = "address") -> str:
    """Validate an http(s) URL with a host and return it without a trailing slash."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {json_type_name(value)}")
    if len(value) > MAX_ADDRESS_LENGTH:
        raise ValidationError(f"{field} is longer than {MAX_ADDRESS_LENGTH} characters")
    problem = _address_problem(value)
    if problem is not None:
        raise ValidationError(f"{field} {value!r} {problem}")
    return value.rstrip("/")


# Every gossip message repeats the same few addresses, and URL parsing took most of the
# time of validating one in a profile of 20 nodes, so the verdict per address is cached.
@functools.lru_cache(maxsize=4096)
def _address_problem(value: str) -> str | None:
    """Return what is wrong with an address, or None when it is valid."""
    if not value.isprintable() or _WHITESPACE.search(value):
        return "contains whitespace or control characters"
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if port == 0:
        return "has port 0"
    return None


def parse_version_number(value: Any, field: str) -> int:
    # bool is a subclass of int, but true is not a version number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(
            f"{field} must be an integer, not {json_type_name(value)}"
        )
    if not 0 <= value <= MAX_VERSION_NUMBER:
        raise ValidationError(
            f"{field} {value} is out of range 0 to {MAX_VERSION_NUMBER}"
        )
    return value


def parse_status(value: Any, field: str = "status") -> Status:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, not {json_type_name(value)}")
    try:
        return Status(value)
    except ValueError:
        allowed = ", ".join(status.value for status in Status)
        raise ValidationError(f"{field} {value!r} is not one of {allowed}") from None


def parse_member(value: Any, field: str = "member") -> Member:
    """Validate one member entry from a peer and return it as a Member."""
    if not isinstance(value, dict):
        raise ValidationError(f"{field} must be an object, not {json_type_name(value)}")
    _require_fields(
        value, ("name", "address", "status", "incarnation", "heartbeat"), field
    )
    return Member(
        name=parse_name(value["name"], f"{field}.name"),
        address=parse_address(value["address"], f"{field}.address"),
        status=parse_status(value["status"], f"{field}.status"),
        incarnation=parse_version_number(value["incarnation"], f"{field}.incarnation"),
        heartbeat=parse_version_number(value["heartbeat"], f"{field}.heartbeat"),
    )


def parse_member_list(
    value: Any, max_members: int, field: str = "members"
) -> list[Member]:
    """Validate a whole list of member entries; any invalid entry rejects the list."""
    if not isinstance(value, list):
        raise ValidationError(f"{field} must be an array, not {json_type_name(value)}")
    if len(value) > max_members:
        raise ValidationError(
            f"{field} has {len(value)} entries, more than the maximum of {max_members}"
        )
    members = [
        parse_member(entry, f"{field}[{index}]") for index, entry in enumerate(value)
    ]
    _reject_duplicate_names(members, field)
    return members


@dataclasses.dataclass(frozen=True)
class GossipMessage:
    """Body of ``POST /gossip``: the sender's name and its whole table."""

    sender: str
    members: list[Member]


def parse_gossip_message(body: Mapping[str, Any], max_members: int) -> GossipMessage:
    _require_fields(body, ("from", "members"), "request body")
    return GossipMessage(
        sender=parse_name(body["from"], "from"),
        members=parse_member_list(body["members"], max_members),
    )


@dataclasses.dataclass(frozen=True)
class JoinRequest:
    """Body of ``POST /registry``: the join request of a starting node."""

    name: str
    address: str
    incarnation: int


def parse_join_request(body: Mapping[str, Any]) -> JoinRequest:
    _require_fields(body, ("name", "address", "incarnation"), "request body")
    return JoinRequest(
        name=parse_name(body["name"]),
        address=parse_address(body["address"]),
        incarnation=parse_version_number(body["incarnation"], "incarnation"),
    )


def parse_leave_request(body: Mapping[str, Any] | None) -> Version | None:
    """Return the final version a leaving node announced, or None for an empty body."""
    if body is None:
        return None
    _require_fields(body, ("incarnation", "heartbeat"), "request body")
    return (
        parse_version_number(body["incarnation"], "incarnation"),
        parse_version_number(body["heartbeat"], "heartbeat"),
    )


def is_view_change(previous: Member | None, current: Member | None) -> bool:
    """Return whether a table change alters what a node sees of a member: its presence,
    status, incarnation or address. A heartbeat alone is no view change."""
    if previous is None or current is None:
        return True
    return (
        previous.status is not current.status
        or previous.incarnation != current.incarnation
        or previous.address != current.address
    )


def members_to_json(members: Iterable[Member]) -> list[dict[str, Any]]:
    return [member.to_json() for member in members]


def _require_fields(
    value: Mapping[str, Any], fields: Iterable[str], where: str
) -> None:
    missing = [field for field in fields if field not in value]
    if missing:
        raise ValidationError(f"{where} is missing the field {', '.join(missing)}")


def _reject_duplicate_names(members: list[Member], field: str) -> None:
    seen: set[str] = set()
    for member in members:
        if member.name in seen:
            raise ValidationError(
                f"{field} lists the name {member.name!r} more than once"
            )
        seen.add(member.name)
