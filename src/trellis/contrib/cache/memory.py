"""A cache in the process's memory: tests, development, and one-process deployments."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from trellis.contrib.cache._flight import GetOrSet, call_factory, check_lock_timeout
from trellis.contrib.cache._values import INT64, check_key, counter, dumps, loads
from trellis.contrib.cache._values import not_an_integer as _not_an_integer
from trellis.contrib.cache._values import overflow as _overflow
from trellis.exceptions import ConfigurationError

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["MemoryCache"]

# A stored value: a counter as an int (incr adds to it), anything else as its JSON bytes;
# and when it expires on the cache's clock (None: never).
_Entry = tuple[int | bytes, float | None]

# How often a waiter on another thread's event loop looks whether the computation ended.
_POLL_FIRST, _POLL_MAX = 0.001, 0.05


class _Flight:
    """One computation of ``get_or_set`` under way: the others wait for it, not compute.

    Waiters on the same event loop wait on a future (woken at once); a waiter on another
    thread's loop (a cache shared between loops) polls a ``threading.Event``.
    """

    __slots__ = ("deadline", "done", "future", "loop", "value")

    def __init__(self, deadline: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.done = threading.Event()
        #: ``time.monotonic()`` after which the computation no longer holds the key.
        self.deadline = deadline
        #: The stored form of the computed value, once there is one.
        self.value: int | bytes | None = None

    def finish(self) -> None:
        """Wake the waiters (called by the owner, on its own loop)."""
        if not self.future.done():
            self.future.set_result(None)
        self.done.set()

    async def wait(self) -> None:
        """Until the computation ends or its time is up."""
        timeout = self.deadline - time.monotonic()
        if asyncio.get_running_loop() is self.loop:
            # asyncio.wait, not awaiting the future: a cancelled waiter leaves it alone.
            await asyncio.wait((self.future,), timeout=max(timeout, 0))
            return
        delay = _POLL_FIRST
        while not self.done.is_set() and time.monotonic() < self.deadline:
            await anyio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)


class MemoryCache(GetOrSet):
    """A cache in a dictionary of this process: fast, but not shared between processes.

    It behaves like ``RedisCache`` and ``DatabaseCache``: values are stored as JSON, so what
    comes back is a copy (a tuple comes back as a list, changing a returned dict changes
    nothing in the cache) and a value JSON cannot hold is refused with ``TypeError``.
    Beyond ``max_entries`` keys, the least recently used ones are dropped.

    ```python
    import asyncio

    from trellis.contrib.cache import MemoryCache


    async def build_report() -> dict[str, int]:
        return {"orders": 12}


    async def main() -> None:
        cache = MemoryCache()  # in an app: app.install(MemoryCache()), then app.state.cache
        await cache.set("answer", {"n": 42}, ttl=60)
        assert await cache.incr("hits:10.0.0.1", ttl=60) == 1  # a counter in a one-minute window
        # built once, however many ask at the same time
        assert await cache.get_or_set("report", build_report, ttl=300) == {"orders": 12}
        assert cache.get_now("answer") == {"n": 42}  # without await, for synchronous code


    asyncio.run(main())
    ```

    Args:
        max_entries: The most keys kept; the least recently used go first.
        clock: The time in seconds (``time.monotonic``); tests pass a fake one.
    """

    def __init__(
        self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # Every method runs without awaiting, so on one event loop each is atomic already;
        # the lock covers a cache shared with other threads (a sync handler's event loop).
        # PERF: an uncontended lock costs well under a microsecond.
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def setup(self, app: App) -> None:
        """Install on ``app`` as ``app.state.cache``.

        Raises:
            ConfigurationError: the application has another cache already.
        """
        existing = getattr(app.state, "cache", None)
        if existing is not None and existing is not self:
            raise ConfigurationError(f"the application already has app.state.cache ({existing!r})")
        app.state.cache = self

    # -- helpers (call with the lock held) ----------------------------------------------------

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and expires <= now:
            del self._entries[key]
            return None
        return entry

    def _store(self, key: str, stored: int | bytes, expires: float | None) -> None:
        entries = self._entries
        entries[key] = (stored, expires)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    @staticmethod
    def _encode(value: Any) -> int | bytes:
        number = counter(value)
        return dumps(value) if number is None else number

    @staticmethod
    def _decode(stored: int | bytes) -> Any:
        return stored if isinstance(stored, int) else loads(stored)

    # -- the cache ----------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing or expired."""
        return self.get_now(key, default)

    def get_now(self, key: str, default: Any = None) -> Any:
        """``get`` without ``await``, for synchronous code (template fragments)."""
        check_key(key)
        with self._lock:
            entry = self._live(key, self.clock())
            if entry is None:
                return default
            self._entries.move_to_end(key)
        return self._decode(entry[0])

    def set_now(self, key: str, value: Any, ttl: float | None = None) -> None:
        """``set`` without ``await``, for synchronous code (template fragments)."""
        check_key(key)
        self._put({key: self._encode(value)}, ttl)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The values of the ``keys`` that are present (missing and expired ones left out)."""
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            check_key(key)
        found: dict[str, int | bytes] = {}
        with self._lock:
            now = self.clock()
            for key in wanted:
                entry = self._live(key, now)
                if entry is not None:
                    self._entries.move_to_end(key)
                    found[key] = entry[0]
        return {key: self._decode(stored) for key, stored in found.items()}

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: until deleted)."""
        await self.set_many({key: value}, ttl)

    async def set_many(self, values: Mapping[str, Any], ttl: float | None = None) -> None:
        """Store every item of ``values``, all with the same ``ttl``."""
        for key in values:
            check_key(key)
        encoded = {key: self._encode(value) for key, value in values.items()}
        self._put(encoded, ttl)

    def _put(self, encoded: Mapping[str, int | bytes], ttl: float | None) -> None:
        with self._lock:
            now = self.clock()
            if ttl is not None and ttl <= 0:
                for key in encoded:  # stored and expired at once
                    self._entries.pop(key, None)
                return
            expires = None if ttl is None else now + ttl
            for key, stored in encoded.items():
                self._store(key, stored, expires)

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is missing (or expired); whether it was stored."""
        check_key(key)
        stored = self._encode(value)
        with self._lock:
            now = self.clock()
            if self._live(key, now) is not None:
                return False
            if ttl is None or ttl > 0:
                self._store(key, stored, None if ttl is None else now + ttl)
            return True

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer under ``key``; the new value.

        A missing (or expired) key counts as 0 and gets ``ttl`` (a rate limit's window); an
        existing key keeps its expiry.

        Raises:
            TypeError: the key holds a value that is not an integer.
            OverflowError: the result would not fit in 64 bits (as in Redis).
        """
        check_key(key)
        step = counter(delta)
        if step is None:
            raise TypeError(f"delta must be an integer, not {delta!r}")
        with self._lock:
            now = self.clock()
            entry = self._live(key, now)
            if entry is None:
                if ttl is None or ttl > 0:
                    self._store(key, step, None if ttl is None else now + ttl)
                return step
            current, expires = entry
            if not isinstance(current, int):
                raise _not_an_integer(key)
            result = current + step
            if result not in INT64:
                raise _overflow(key)
            self._store(key, result, expires)
            return result

    async def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there (an expired key was not)."""
        check_key(key)
        with self._lock:
            present = self._live(key, self.clock()) is not None
            self._entries.pop(key, None)
            return present

    async def clear(self) -> None:
        """Remove every key."""
        with self._lock:
            self._entries.clear()

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires; ``None`` when it has no expiry.

        Raises:
            KeyError: the key is missing or expired.
        """
        check_key(key)
        with self._lock:
            now = self.clock()
            entry = self._live(key, now)
            if entry is None:
                raise KeyError(key)
        expires = entry[1]
        return None if expires is None else expires - now

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new expiry, keeping its value; whether the key was there.

        ``ttl=None`` keeps it until deleted; zero or less expires it at once.
        """
        check_key(key)
        with self._lock:
            now = self.clock()
            entry = self._live(key, now)
            if entry is None:
                return False
            if ttl is not None and ttl <= 0:
                del self._entries[key]
            else:
                self._store(key, entry[0], None if ttl is None else now + ttl)
            return True

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
        check_lock_timeout(lock_timeout)
        waited = False
        while True:
            owner = False
            stored: int | bytes | None = None
            flight: _Flight | None = None
            with self._lock:
                entry = self._live(key, self.clock())
                if entry is not None:
                    self._entries.move_to_end(key)
                    stored = entry[0]
                else:
                    now = time.monotonic()
                    flight = self._flights.get(key)
                    if flight is not None and flight.deadline <= now:
                        flight = None  # took too long: no longer holds the key
                    if flight is None and (retry or not waited):
                        flight = self._flights[key] = _Flight(now + lock_timeout)
                        owner = True
            if stored is not None:
                return self._decode(stored)
            if flight is None:  # waited once already (see _flight.locked_get_or_set)
                return self._decode(self._encode(await call_factory(factory)))
            if owner:
                try:
                    stored = self._encode(await call_factory(factory))
                    self._put({key: stored}, ttl)
                    flight.value = stored
                    return self._decode(stored)
                finally:
                    with self._lock:
                        if self._flights.get(key) is flight:
                            del self._flights[key]
                    flight.finish()
            await flight.wait()
            if flight.value is not None:
                return self._decode(flight.value)
            waited = True

    def __repr__(self) -> str:
        return f"<MemoryCache {len(self._entries)}/{self.max_entries} entries>"
