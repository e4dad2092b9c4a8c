"""Schemathesis hooks for the fuzz run of ``test_schemathesis.py``.

A node sends requests to every address it learns from ``POST /registry`` and
``POST /gossip``. It gossips to members, checks ``GET /health`` of a name in conflict,
fetches originals for retweets and forwards network searches. Generated bodies may name
any host, so before each request this hook replaces every string in the body that could
be a URL with the address in SEVENTWEETS_FUZZ_PEER_ADDRESS. The test binds that port on
127.0.0.1 without listening, so the node's requests to it are refused at once and reach
nothing else.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import schemathesis

PEER_ADDRESS = os.environ["SEVENTWEETS_FUZZ_PEER_ADDRESS"]


def could_be_url(text: str) -> bool:
    """Return whether a node could read ``text`` as the address of a host.

    The node accepts an address only when urllib.parse.urlsplit finds a host in it.
    This check errs on the side of URLs, so anything with ``//`` counts too, and so
    does anything that urlsplit cannot parse.
    """
    if "//" in text:
        return True
    try:
        return bool(urllib.parse.urlsplit(text).hostname)
    except ValueError:
        return True


def confine(value: Any) -> Any:
    """Return ``value`` with every string that could be a URL replaced by PEER_ADDRESS."""
    if isinstance(value, str):
        return PEER_ADDRESS if could_be_url(value) and value != PEER_ADDRESS else value
    if isinstance(value, list):
        return [confine(item) for item in value]
    if isinstance(value, dict):
        return {key: confine(item) for key, item in value.items()}
    return value


def confine_raw(body: bytes | str) -> bytes | str:
    """Confine the URLs in a body that is already serialized.

    A body that is not JSON is left alone, because the node rejects it before reading
    any address in it.
    """
    try:
        decoded = json.loads(body)
    except ValueError:
        return body
    confined = confine(decoded)
    if confined == decoded:
        return body
    text = json.dumps(confined)
    return text.encode() if isinstance(body, bytes) else text


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Confine the URLs in the body of every request that schemathesis sends."""
    if isinstance(case.body, (bytes, str)):
        case.body = confine_raw(case.body)
    elif isinstance(case.body, (dict, list)):
        case.body = confine(case.body)
