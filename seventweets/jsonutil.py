"""JSON decoding for untrusted input: request bodies and peers' responses."""

from __future__ import annotations

import json
from typing import Any


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(raw: bytes | str) -> Any:
    """Decode one JSON document; raise ValueError for anything that is not valid JSON.

    NaN and Infinity, which Python's json module accepts, are rejected. Arrays or objects
    nested so deeply that the decoder would overflow the stack, and integers longer than
    Python converts, also raise ValueError instead of RecursionError.
    """
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None


def json_type_name(value: Any) -> str:
    """Name a decoded JSON value's type the way JSON does, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
