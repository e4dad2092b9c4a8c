"""Checks of client-supplied text and numbers shared by the services."""

from __future__ import annotations

from typing import Any

from seventweets.errors import ValidationError

# Characters with the Unicode White_Space property (Unicode 15, PropList.txt). Python's
# str.isspace() also counts U+001C..U+001F, which Unicode does not call white space.
UNICODE_WHITESPACE = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


_WHITESPACE_CHARACTERS = "".join(sorted(UNICODE_WHITESPACE))


def is_blank(text: str) -> bool:
    # str.strip with an explicit set runs in C, unlike a generator over the text.
    return not text.strip(_WHITESPACE_CHARACTERS)


def check_text(text: str, field: str) -> None:
    """Raise ValidationError when ``text`` contains a NUL or an unpaired surrogate."""
    if "\x00" in text:
        raise ValidationError(f"{field} must not contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{field} contains an unpaired surrogate at code point {exc.start}"
        ) from None


def require_text(body: dict[str, Any], field: str, max_length: int) -> str:
    """Return ``body[field]`` as non-blank text of 1 to ``max_length`` code points."""
    if field not in body:
        raise ValidationError(f"field {field!r} is missing")
    value = body[field]
    if not isinstance(value, str):
        raise ValidationError(f"field {field!r} must be a string")
    check_tweet_text(value, f"field {field!r}", max_length)
    return value


def check_tweet_text(text: str, field: str, max_length: int) -> None:
    """Raise ValidationError unless ``text`` is valid, non-blank and 1 to ``max_length``
    code points long: the rules every tweet follows, from a client or from a peer."""
    check_text(text, field)
    if is_blank(text):
        raise ValidationError(f"{field} must not be blank")
    if len(text) > max_length:
        raise ValidationError(
            f"{field} is {len(text)} code points long; the maximum is {max_length}"
        )


def require_int(body: dict[str, Any], field: str, minimum: int, maximum: int) -> int:
    """Return ``body[field]`` as an integer from ``minimum`` to ``maximum``."""
    if field not in body:
        raise ValidationError(f"field {field!r} is missing")
    value = body[field]
    # bool is a subclass of int in Python, but true is not an id.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"field {field!r} must be an integer")
    if not minimum <= value <= maximum:
        raise ValidationError(
            f"field {field!r} must be from {minimum} to {maximum}, not {value}"
        )
    return value
