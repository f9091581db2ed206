"""``get_or_set`` for shared caches: one computation per key, with a lock in the cache.

Every backend's public ``get_or_set`` is ``GetOrSet``'s. ``RedisCache`` and ``DatabaseCache``
share this loop (``LockedGetOrSet``); ``MemoryCache`` has its own (no polling: waiters in
the process wait on the computation itself).

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
from typing import TYPE_CHECKING, Any

import anyio

from trellis.contrib.cache._values import check_key

__all__ = [
    "MISSING",
    "GetOrSet",
    "LockedGetOrSet",
    "call_factory",
    "lock_key",
    "locked_get_or_set",
    "new_token",
]

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


class GetOrSet:
    """A backend's ``get_or_set``, on top of its ``_get_or_set`` (which ``cached`` calls too)."""

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: float | None = None,
        *,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> Any:
        """The value of ``key``; when missing, ``factory()`` computes it and it is stored.

        One computation per key at a time, in every process that shares the cache: the
        other callers wait for it and get its value. ``MemoryCache``'s wait on the
        computation itself (a lock per key, no polling); ``RedisCache``'s and
        ``DatabaseCache``'s poll (5 ms, growing to 100 ms) a lock kept in the cache (``SET
        NX PX``, or an ``add`` of a row, with a random token) until the value is there.
        When the computation raises, its caller gets the exception, the lock is released
        (only by its holder), and one of the waiters computes. After ``lock_timeout``
        seconds a computation no longer holds the others back (also when its process died).

        Args:
            key: The key.
            factory: A function without arguments (``async`` or not) returning the value.
            ttl: Seconds to keep the value (``None``: until deleted).
            lock_timeout: How long the lock lasts: more than a computation takes.

        Returns:
            The value in its JSON form, computed or not (a tuple comes back as a list).
        """
        return await self._get_or_set(key, factory, ttl, lock_timeout, retry=True)

    async def _get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: float | None,
        lock_timeout: float,
        *,
        retry: bool,
    ) -> Any:
        """``get_or_set``; ``retry``: see ``locked_get_or_set``."""
        raise NotImplementedError


class LockedGetOrSet(GetOrSet):
    """``get_or_set`` with the lock in the cache: what a backend supplies besides ``set``."""

    if TYPE_CHECKING:  # the backend's own (a base class of it may have one too)

        async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def _get_or_lock(
        self, key: str, lock: str, token: str, lock_timeout: float, take: bool
    ) -> tuple[int, Any]:
        """``(FOUND, value)``, or ``(LOCKED | BUSY | FREE, None)``: see the constants."""
        raise NotImplementedError

    async def _unlock(self, lock: str, token: str) -> None:
        """Remove ``lock`` if it still holds ``token``."""
        raise NotImplementedError

    def _json_form(self, value: Any) -> Any:
        """``value`` as a reader of the cache gets it back."""
        raise NotImplementedError

    async def _get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: float | None,
        lock_timeout: float,
        *,
        retry: bool,
    ) -> Any:
        check_key(key)
        return await locked_get_or_set(
            self, key, factory, ttl, lock_timeout, retry=retry, encode=self._json_form
        )


async def locked_get_or_set(
    cache: LockedGetOrSet,
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
