"""MemoryCache on its own: expiry on a fake clock, eviction, copies, installing on an app.

What every backend shares (JSON values, atomic incr and add ...) is in test_backends.py.
"""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from trellis import App
from trellis.contrib.cache import CacheBackend, MemoryCache
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient


class Clock:
    """A clock that only moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> MemoryCache:
    return MemoryCache(clock=clock)


pytestmark = pytest.mark.anyio


async def test_ttl_expiry_on_the_clock(cache: MemoryCache, clock: Clock) -> None:
    await cache.set("k", "v", ttl=10)
    await cache.set("forever", "v")
    clock.advance(9.999)
    assert await cache.get("k") == "v"
    clock.advance(0.001)  # expires_at <= now: expired, as in DatabaseCache
    assert await cache.get("k", "gone") == "gone"
    clock.advance(10**9)
    assert await cache.get("forever") == "v"


async def test_expired_entries_are_dropped_when_read(cache: MemoryCache, clock: Clock) -> None:
    await cache.set_many({"a": 1, "b": 2}, ttl=5)
    clock.advance(5)
    assert repr(cache) == "<MemoryCache 2/10000 entries>"
    assert await cache.get_many(["a", "b"]) == {}
    assert repr(cache) == "<MemoryCache 0/10000 entries>"


async def test_set_replaces_the_expiry(cache: MemoryCache, clock: Clock) -> None:
    await cache.set("k", 1, ttl=5)
    await cache.set("k", 2)
    clock.advance(100)
    assert await cache.get("k") == 2
    await cache.set("k", 3, ttl=5)
    clock.advance(5)
    assert await cache.get("k") is None


async def test_add_after_expiry(cache: MemoryCache, clock: Clock) -> None:
    assert await cache.add("lock", "a", ttl=30) is True
    clock.advance(29)
    assert await cache.add("lock", "b", ttl=30) is False
    clock.advance(1)
    assert await cache.add("lock", "c", ttl=30) is True
    assert await cache.get("lock") == "c"


async def test_incr_window_on_the_clock(cache: MemoryCache, clock: Clock) -> None:
    assert await cache.incr("hits", ttl=60) == 1
    clock.advance(59)
    assert await cache.incr("hits", ttl=60) == 2  # the window does not slide
    clock.advance(1)
    assert await cache.get("hits") is None
    assert await cache.incr("hits", ttl=60) == 1
    await cache.set("n", 5, ttl=10)
    assert await cache.incr("n", ttl=1000) == 6  # keeps its own expiry
    clock.advance(10)
    assert await cache.get("n") is None


async def test_incr_stays_within_64_bits(cache: MemoryCache) -> None:
    await cache.set("big", 2**63 - 1)
    with pytest.raises(OverflowError, match="would overflow 64 bits"):
        await cache.incr("big")
    assert await cache.get("big") == 2**63 - 1
    await cache.set("small", -(2**63))
    with pytest.raises(OverflowError):
        await cache.incr("small", -1)


@pytest.mark.parametrize("delta", [1.5, "1", True, 2**64])
async def test_incr_delta_is_an_integer(cache: MemoryCache, delta: object) -> None:
    with pytest.raises(TypeError, match="delta must be an integer"):
        await cache.incr("n", delta)  # type: ignore[arg-type]
    assert await cache.get("n") is None


async def test_the_least_recently_used_keys_go_first(clock: Clock) -> None:
    cache = MemoryCache(max_entries=3, clock=clock)
    await cache.set_many({"a": 1, "b": 2, "c": 3})
    assert await cache.get("a") == 1  # a is now the most recently used
    await cache.set("d", 4)  # b goes
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    await cache.incr("c")  # a write counts as a use too
    await cache.add("e", 5)  # a goes (d was read after a by get_many)
    assert await cache.get_many(["a", "c", "d", "e"]) == {"c": 4, "d": 4, "e": 5}
    assert repr(cache) == "<MemoryCache 3/3 entries>"
    await cache.set_many({str(n): n for n in range(10)})
    assert await cache.get_many([str(n) for n in range(10)]) == {"7": 7, "8": 8, "9": 9}


def test_max_entries_is_positive() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, not 0"):
        MemoryCache(max_entries=0)


async def test_the_clock_can_be_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = MemoryCache()
    assert cache.clock is time.monotonic
    now = [500.0]
    monkeypatch.setattr(cache, "clock", lambda: now[0])
    await cache.set("k", "v", ttl=1)
    now[0] += 0.5
    assert await cache.get("k") == "v"
    now[0] += 0.5
    assert await cache.get("k") is None


async def test_integers_are_counters_and_other_values_json(cache: MemoryCache) -> None:
    await cache.set("n", 7)
    await cache.set("big", 2**64 - 1)  # beyond a counter: kept as JSON
    await cache.set("flag", True)
    assert await cache.get("n") == 7
    assert await cache.get("big") == 2**64 - 1
    assert await cache.get("flag") is True
    with pytest.raises(TypeError, match="JSON values and cannot store int"):
        await cache.set("huge", 2**64)


async def test_keys_are_checked_everywhere(cache: MemoryCache) -> None:
    for call in (
        cache.get(1),  # type: ignore[arg-type]
        cache.set(1, "v"),  # type: ignore[arg-type]
        cache.add(1, "v"),  # type: ignore[arg-type]
        cache.incr(1),  # type: ignore[arg-type]
        cache.delete(1),  # type: ignore[arg-type]
        cache.get_many(["a", 1]),  # type: ignore[list-item]
        cache.set_many({1: "v"}),  # type: ignore[dict-item]
    ):
        with pytest.raises(TypeError, match="keys are strings, not int"):
            await call


async def test_shared_between_threads(cache: MemoryCache) -> None:
    # A sync handler's portal or another event loop: the lock keeps incr atomic.
    def bump() -> None:
        for _ in range(200):
            anyio.run(cache.incr, "n")

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert await cache.get("n") == 800


def test_install_sets_app_state_cache() -> None:
    app = App()
    cache = app.install(MemoryCache())
    assert app.state.cache is cache
    assert isinstance(cache, CacheBackend)
    app.install(cache)  # the same one again: fine
    with pytest.raises(ConfigurationError, match=r"already has app.state.cache \(<MemoryCache"):
        app.install(MemoryCache())


def test_handlers_use_the_installed_cache() -> None:
    app = App(debug=True)
    app.install(MemoryCache())

    @app.get("/visits")
    async def visits() -> dict[str, int]:
        cache = app.state.cache
        return {"visits": await cache.incr("visits")}

    with TestClient(app) as client:
        assert client.get("/visits").json() == {"visits": 1}
        assert client.get("/visits").json() == {"visits": 2}
