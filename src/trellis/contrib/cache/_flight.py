"""``get_or_set`` for shared caches: one computation per key, with a lock in the cache.

``RedisCache`` and ``DatabaseCache`` share this loop; ``MemoryCache`` has its own (no
polling: waiters in the process wait on the computation itself).

The lock is a key of the cache holding a random token, stored only when missing (``SET NX
PX`` in Redis, ``add`` in a table) and expiring after ``lock_timeout`` seconds, so a
process that dies while computing holds nobody up for long. Only the holder of the token
removes it (compare and delete). Waiters poll with a growing, jittered delay until the
value appears or the lock is free again; then one of them takes the lock and computes.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import random
import secrets
from collections.abc import Callable
from typing import Any, Protocol

import anyio

__all__ = ["MISSING", "call_factory", "lock_key", "locked_get_or_set", "new_token"]

#: Stands for "no value" where ``None`` is a value (JSON ``null``).
MISSING: Any = object()

#: The default for ``lock_timeout``: the longest one computation holds its key.
LOCK_TIMEOUT = 30.0

# Waiters poll after 5 ms, then up to every 100 ms (each delay jittered, so that waiters do
# not hit the cache in step).
_FIRST_DELAY = 0.005
_MAX_DELAY = 0.1
_GROWTH = 1.5

# What one attempt found: the value; no value and the lock now ours; no value and the lock
# someone else's; no value and no lock (when asked not to take it).
FOUND, LOCKED, BUSY, FREE = 0, 1, 2, 3


def lock_key(key: str) -> str:
    """The key of the lock that guards the computation of ``key`` (fixed length)."""
    return "trellis:lock:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def new_token() -> str:
    """A random token naming one holder of a lock."""
    return secrets.token_hex(16)


async def call_factory(factory: Callable[[], Any]) -> Any:
    """Call ``factory()``, awaiting its result when it is awaitable (an ``async def``)."""
    value = factory()
    if inspect.isawaitable(value):
        value = await value
    return value


def check_lock_timeout(lock_timeout: float) -> None:
    """Refuse a lock that would expire at once."""
    if not lock_timeout > 0:
        raise ValueError(f"lock_timeout must be more than 0 seconds, not {lock_timeout!r}")


class LockingCache(Protocol):
    """What the loop needs from a backend (besides ``set``)."""

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def _get_or_lock(
        self, key: str, lock: str, token: str, lock_timeout: float, take: bool
    ) -> tuple[int, Any]:
        """``(FOUND, value)``, or ``(LOCKED | BUSY | FREE, None)``: see the constants."""

    async def _unlock(self, lock: str, token: str) -> None:
        """Remove ``lock`` if it still holds ``token``."""


async def locked_get_or_set(
    cache: LockingCache,
    key: str,
    factory: Callable[[], Any],
    ttl: float | None,
    lock_timeout: float,
    *,
    retry: bool,
    encode: Callable[[Any], Any],
) -> Any:
    """The value of ``key``, computed by ``factory`` in one caller at a time.

    Args:
        cache: The backend.
        key: The key.
        factory: Computes the value (sync or async).
        ttl: The value's lifetime.
        lock_timeout: Seconds the lock lasts.
        retry: When the lock is freed without a value (the computation failed, or its
            result was not stored), waiters take the lock and one computes (``get_or_set``);
            otherwise each waiter computes at once, without the lock (``cached``, whose
            computations may decline to store: waiters must not queue behind each other).
        encode: The value in its JSON form (what a reader of the cache would get).
    """
    check_lock_timeout(lock_timeout)
    lock = lock_key(key)
    token = new_token()
    delay = _FIRST_DELAY
    waited = False
    while True:
        take = retry or not waited
        state, value = await cache._get_or_lock(key, lock, token, lock_timeout, take)
        if state == FOUND:
            return value
        if state == FREE:
            return encode(await call_factory(factory))
        if state == LOCKED:
            try:
                value = encode(await call_factory(factory))
                await cache.set(key, value, ttl)
                return value
            finally:
                # Even when cancelled: a lock left behind would hold the others up until
                # it expires. If Redis is down the lock expires by itself.
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await cache._unlock(lock, token)
        await anyio.sleep(delay * random.uniform(0.5, 1.0))
        delay = min(delay * _GROWTH, _MAX_DELAY)
        waited = True
