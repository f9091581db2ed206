"""What the caches share: JSON values (orjson, never pickle), key checks, integer range."""

from __future__ import annotations

from typing import Any

import orjson

#: Counters are 64-bit signed integers on every backend (Redis's INCRBY, a BIGINT column).
INT64 = range(-(2**63), 2**63)


def dumps(value: Any, what: str = "the cache keeps JSON values") -> bytes:
    """``value`` as JSON bytes; a clear ``TypeError`` for what JSON cannot hold."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"{what} and cannot store {type(value).__name__} ({exc}):"
            " convert it to dicts, lists, strings and numbers first"
        ) from None


loads = orjson.loads


def check_key(key: str) -> None:
    """Refuse a key that is not a string (bytes would be a different key on each backend)."""
    if not isinstance(key, str):
        raise TypeError(f"keys are strings, not {type(key).__name__}")


def counter(value: Any) -> int | None:
    """``value`` as a counter ``incr`` can add to: a 64-bit integer, not a bool."""
    if isinstance(value, int) and not isinstance(value, bool) and value in INT64:
        return int(value)
    return None


def not_an_integer(key: str) -> TypeError:
    """The error of ``incr`` on a key holding something else."""
    return TypeError(f"cache key {key!r} holds a value that is not an integer")


def overflow(key: str) -> OverflowError:
    """The error of ``incr`` past the 64-bit range."""
    return OverflowError(f"incrementing cache key {key!r} would overflow 64 bits")
