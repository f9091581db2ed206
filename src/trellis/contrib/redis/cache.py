"""A cache in Redis, shared by every process of the application."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from trellis.contrib.cache._flight import BUSY, FOUND, FREE, LOCKED, LockedGetOrSet
from trellis.contrib.cache._values import (
    counter,
    dumps,
    loads,
    not_an_integer,
    overflow,
)
from trellis.contrib.redis._client import RedisStore, milliseconds

__all__ = ["RedisCache"]

# One atomic step: add to the counter, and give it its window only when this call made it
# (an existing key keeps its expiry, also when it has none). PEXPIRE with 0 deletes the key:
# a ttl of zero or less is "expired at once", as on the other backends.
_INCR = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# get_or_set, in one round trip: the value if there is one; else take the lock (SET NX PX
# with this caller's token) when asked to, or say whether someone holds it.
_GET_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value then
    return {0, value}
end
if ARGV[3] == '1' then
    if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
        return {1}
    end
    return {2}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
    return {2}
end
return {3}
"""

# Release a lock only if it still holds our token: after it expired, another caller may hold
# it now, and deleting theirs would let a third one compute too.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_CLEAR_BATCH = 500


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisCache(LockedGetOrSet, RedisStore):
    """A cache in Redis: shared by every process and server, fast, with expiry done by Redis.

    It behaves like ``MemoryCache`` and ``DatabaseCache``: values are JSON (orjson, never
    pickle: a tuple comes back as a list), ``incr`` and ``add`` are atomic across processes.
    Every key is stored under ``prefix``, and ``clear()`` removes only those keys.

    ```python
    # needs: redis
    import os

    from trellis import App
    from trellis.contrib.redis import RedisCache
    from trellis.testing import TestClient

    app = App()
    prefix = os.environ["REDIS_PREFIX"] + ":cache:"  # default "trellis:cache:"
    cache = app.install(RedisCache(os.environ["REDIS_URL"], prefix=prefix))  # app.state.cache


    @app.get("/weather")
    async def weather() -> dict[str, float]:
        await cache.set("weather:paris", {"temp": 21.5}, ttl=600)
        views = await cache.incr("views:weather", ttl=60)  # atomic across processes
        return {"views": views, **await cache.get("weather:paris")}


    with TestClient(app) as client:
        assert client.get("/weather").json() == {"views": 1, "temp": 21.5}
        assert client.get("/weather").json() == {"views": 2, "temp": 21.5}
    ```

    Args:
        url_or_client: A Redis URL or a ``redis.asyncio.Redis`` client of yours.
        prefix: Put before every key (default ``trellis:cache:``).
        connect_timeout: Seconds to wait for a connection.
        timeout: Seconds to wait for an answer to a command.
        options: More options of ``redis.asyncio.Redis.from_url``.
    """

    state_name = "cache"
    default_prefix = "trellis:cache:"

    @cached_property
    def _incr(self) -> AsyncScript:
        return self.client.register_script(_INCR)

    @cached_property
    def _get_or_lock_script(self) -> AsyncScript:
        return self.client.register_script(_GET_OR_LOCK)

    @cached_property
    def _unlock_script(self) -> AsyncScript:
        return self.client.register_script(_UNLOCK)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing or expired."""
        raw = await self.client.get(self._key(key))
        return default if raw is None else loads(raw)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the ``keys`` that are present (one ``MGET``)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        raws = await self.client.mget([self._key(key) for key in wanted])
        return {key: loads(raw) for key, raw in zip(wanted, raws, strict=True) if raw is not None}

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: until deleted)."""
        name = self._key(key)
        data = dumps(value)
        if ttl is None:
            await self.client.set(name, data)
        elif ttl > 0:
            await self.client.set(name, data, px=milliseconds(ttl))
        else:
            await self.client.delete(name)  # stored and expired at once

    async def set_many(self, values: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every item of ``values``, all with the same ``ttl`` (one transaction)."""
        if not values:
            return
        items = [(self._key(key), dumps(value)) for key, value in values.items()]
        async with self.client.pipeline(transaction=True) as pipe:
            for name, data in items:
                if ttl is None:
                    pipe.set(name, data)
                elif ttl > 0:
                    pipe.set(name, data, px=milliseconds(ttl))
                else:
                    pipe.delete(name)
            await pipe.execute()

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is missing (``SET NX``); whether it was stored.

        Atomic: of concurrent ``add`` calls for one key, in any process, one returns ``True``
        (a lock, a once-only job).
        """
        name = self._key(key)
        data = dumps(value)
        if ttl is not None and ttl <= 0:
            return not await self.client.exists(name)  # stored and expired at once
        px = None if ttl is None else milliseconds(ttl)
        return bool(await self.client.set(name, data, nx=True, px=px))

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer under ``key``; the new value. Atomic (a Lua script).

        A missing (or expired) key counts as 0 and gets ``ttl`` (a rate limit's window); an
        existing key keeps its expiry.

        Raises:
            TypeError: the key holds a value that is not an integer.
            OverflowError: the result would not fit in 64 bits.
        """
        name = self._key(key)
        step = counter(delta)
        if step is None:
            raise TypeError(f"delta must be an integer, not {delta!r}")
        window = "" if ttl is None else str(milliseconds(ttl) if ttl > 0 else 0)
        try:
            result = await self._incr(keys=[name], args=[step, window])
        except ResponseError as exc:
            if "overflow" in str(exc):
                raise overflow(key) from None
            if "not an integer" in str(exc):
                raise not_an_integer(key) from None
            raise
        return int(result)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        return bool(await self.client.delete(self._key(key)))

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires (``PTTL``); ``None`` when it has no expiry.

        Raises:
            KeyError: the key is missing or expired.
        """
        left = int(await self.client.pttl(self._key(key)))
        if left == -2:
            raise KeyError(key)
        return None if left == -1 else left / 1000

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new expiry (``PEXPIRE``; ``PERSIST`` for ``None``), keeping its value.

        Zero or less expires it at once. Returns whether the key was there.
        """
        name = self._key(key)
        if ttl is None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.exists(name)
                pipe.persist(name)
                exists, _ = await pipe.execute()
            return bool(exists)
        if ttl <= 0:
            return bool(await self.client.delete(name))
        return bool(await self.client.pexpire(name, milliseconds(ttl)))

    async def _get_or_lock(
        self, key: str, lock: str, token: str, lock_timeout: float, take: bool
    ) -> tuple[int, Any]:
        reply = await self._get_or_lock_script(
            keys=[self._key(key), self._key(lock)],
            args=[token, milliseconds(lock_timeout), "1" if take else "0"],
        )
        state = int(reply[0])
        if state == 0:
            return FOUND, loads(reply[1])
        return (LOCKED, BUSY, FREE)[state - 1], None

    async def _unlock(self, lock: str, token: str) -> None:
        await self._unlock_script(keys=[self._key(lock)], args=[token])

    def _json_form(self, value: Any) -> Any:
        return loads(dumps(value))

    async def clear(self) -> None:
        """Remove every key under this cache's prefix (``SCAN``, never ``FLUSHDB``).

        With an empty prefix, that is every key of the Redis database.
        """
        pattern = _glob_escape(self.prefix) + "*"
        batch: list[bytes | str] = []
        async for name in self.client.scan_iter(match=pattern, count=_CLEAR_BATCH):
            batch.append(name)
            if len(batch) >= _CLEAR_BATCH:
                await self.client.unlink(*batch)
                batch.clear()
        if batch:
            await self.client.unlink(*batch)
