"""The cache interface every backend implements (in memory, Redis, a database table)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["CacheBackend"]


@runtime_checkable
class CacheBackend(Protocol):
    """What a cache backend does (``MemoryCache``, ``RedisCache``, ``DatabaseCache``): all async.

    Keys are strings; values are JSON (a tuple comes back as a list). A ``ttl`` is in
    seconds: ``None`` keeps the key until it is deleted, zero or less expires it at once.
    """

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing or expired."""

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: until deleted)."""

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is missing; whether it was stored."""

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer under ``key`` (missing counts as 0); the new value."""

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the ``keys`` that are present."""

    async def set_many(self, values: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every item of ``values``."""

    async def clear(self) -> None:
        """Remove every key."""

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires (``None``: no expiry); ``KeyError`` when missing."""

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new expiry, keeping its value; whether the key was there."""

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        ttl: float | None = None,
        *,
        lock_timeout: float = 30.0,
    ) -> Any:
        """The value of ``key``, computed by ``factory()`` and stored when missing.

        One computation per key at a time, in every process that shares the cache: the
        other callers wait for its value (stampede protection).
        """
