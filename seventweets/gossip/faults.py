"""Test-only fault injection for real node processes: a drop rule and a view log.

Both are off unless their environment variable is set, and production deployments set
neither.

``SEVENTWEETS_TEST_FAULTS`` names a JSON file such as
``{"blocked": ["http://127.0.0.1:8002"], "loss": 0.1}``. The node then sends nothing to
the blocked addresses and loses each other request to a peer (gossip exchange, join,
leave announcement) with probability ``loss``, as if the peer did not respond. The file is
read again whenever it changes, so a harness can cut and heal the network at run time.
A harness should replace the file atomically: write a temporary file, then rename it. A
missing file means no faults.

``SEVENTWEETS_TEST_VIEW_LOG`` names a file to which the node appends one JSON line per
change of its view: a member added or dropped, or its status, incarnation or address
changed. Each line has ``time.monotonic()`` at the change, which on Linux is one clock for
every process of the host, so a harness can subtract the time it injected a fault.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import Any, TextIO

from seventweets.gossip.members import Member, is_view_change
from seventweets.gossip.table import TransitionListener

log = logging.getLogger(__name__)

FAULTS_VARIABLE = "SEVENTWEETS_TEST_FAULTS"
VIEW_LOG_VARIABLE = "SEVENTWEETS_TEST_VIEW_LOG"


class DropRule(set[str]):
    """A set of blocked addresses whose membership test applies the fault file.

    ``Gossiper`` sends nothing to an address that is ``in`` its ``blocked_addresses``,
    so assigning a DropRule to that attribute injects the faults without another hook.
    Each test of an address is one request: it is dropped when the file blocks the
    address, or else with the file's loss probability.
    """

    def __init__(self, path: str, rng: random.Random | None = None) -> None:
        super().__init__()
        self.path = path
        self.loss = 0.0
        self._rng = rng if rng is not None else random.Random()
        self._stamp: tuple[int, int] | None = None
        self._reload()

    def __contains__(self, address: object) -> bool:
        self._reload()
        if super().__contains__(address):
            return True
        return self.loss > 0 and self._rng.random() < self.loss

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        blocked: list[str] = []
        loss = 0.0
        if stamp is not None:
            try:
                with open(self.path, encoding="utf-8") as file:
                    rule = json.load(file)
                blocked, loss = _parse_rule(rule)
            except (OSError, ValueError) as exc:
                # Keep the previous rule: a half-written file must not heal a partition.
                log.warning("test fault file ignored path=%s error=%s", self.path, exc)
                return
        self.clear()
        self.update(address.rstrip("/") for address in blocked)
        self.loss = loss
        log.warning(
            "test fault rule loaded path=%s blocked=%d loss=%s",
            self.path,
            len(blocked),
            loss,
        )


def _parse_rule(rule: Any) -> tuple[list[str], float]:
    if not isinstance(rule, dict):
        raise ValueError("the fault file must contain a JSON object")
    blocked = rule.get("blocked", [])
    loss = rule.get("loss", 0.0)
    if not isinstance(blocked, list) or not all(
        isinstance(item, str) for item in blocked
    ):
        raise ValueError("blocked must be an array of address strings")
    if (
        not isinstance(loss, (int, float))
        or isinstance(loss, bool)
        or not 0 <= loss <= 1
    ):
        raise ValueError(f"loss must be a number from 0 to 1, got {loss!r}")
    return blocked, float(loss)


def drop_rule_from_environment() -> DropRule | None:
    """Return the drop rule that ``SEVENTWEETS_TEST_FAULTS`` names, or None if unset."""
    path = os.environ.get(FAULTS_VARIABLE)
    if not path:
        return None
    log.warning("test fault injection enabled path=%s", path)
    return DropRule(path)


class ViewLog:
    """A transition listener that appends each view change as a JSON line."""

    def __init__(self, observer: str, output: TextIO) -> None:
        self.observer = observer
        self._output = output

    def __call__(self, previous: Member | None, current: Member | None) -> None:
        if not is_view_change(previous, current):
            return
        entry = current if current is not None else previous
        assert entry is not None
        line = {
            "time": time.monotonic(),
            "observer": self.observer,
            "subject": entry.name,
            "status": current.status.value if current is not None else None,
            "previous_status": previous.status.value if previous is not None else None,
            "incarnation": entry.incarnation,
            "address": entry.address,
        }
        self._output.write(json.dumps(line) + "\n")
        self._output.flush()


def view_log_from_environment(observer: str) -> TransitionListener | None:
    """Return a ViewLog appending to the file ``SEVENTWEETS_TEST_VIEW_LOG`` names, or
    None if it is unset."""
    path = os.environ.get(VIEW_LOG_VARIABLE)
    if not path:
        return None
    return ViewLog(observer, open(path, "a", encoding="utf-8"))
