"""``get_or_set`` on every backend: one computation per key at a time (stampede protection).

Redis and the database are shared by processes; two cache objects on one Redis (or one
table) stand for two processes.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from trellis.contrib.cache import CacheBackend, MemoryCache
from trellis.contrib.cache._flight import lock_key

pytestmark = pytest.mark.anyio


def unique_prefix() -> str:
    return f"trellis-test:{os.getpid()}:{secrets.token_hex(4)}:"


class Factory:
    """A slow computation that counts its calls."""

    def __init__(self, value: Any = "computed", delay: float = 0.2) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        await anyio.sleep(self.delay)
        return self.value


async def gather(n: int, call: Any) -> list[Any]:
    results: list[Any] = [None] * n

    async def one(i: int) -> None:
        results[i] = await call()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)
    return results


async def test_computes_once_then_reads(cache: CacheBackend) -> None:
    factory = Factory({"n": (1, 2)}, delay=0)
    assert await cache.get_or_set("k", factory, ttl=60) == {"n": [1, 2]}  # its JSON form
    assert await cache.get_or_set("k", factory, ttl=60) == {"n": [1, 2]}
    assert factory.calls == 1
    assert await cache.get("k") == {"n": [1, 2]}
    left = await cache.ttl("k")
    assert left is not None and 59 < left <= 60


async def test_sync_factories_and_none_values(cache: CacheBackend) -> None:
    calls: list[int] = []

    def compute() -> None:
        calls.append(1)

    assert await cache.get_or_set("none", compute) is None
    assert await cache.get_or_set("none", compute) is None  # None is a value, not a miss
    assert calls == [1]
    assert await cache.ttl("none") is None


async def test_fifty_concurrent_callers_one_computation(cache: CacheBackend) -> None:
    factory = Factory({"report": "slow"})
    results = await gather(50, lambda: cache.get_or_set("report", factory, ttl=60))
    assert factory.calls == 1
    assert results == [{"report": "slow"}] * 50
    # Waiters get copies: changing one result changes no other.
    results[0]["report"] = "changed"
    assert results[1] == {"report": "slow"}


async def test_keys_are_independent(cache: CacheBackend) -> None:
    factories = [Factory(i, delay=0.3) for i in range(5)]
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(cache.get_or_set, f"k{i}", factories[i])
    assert anyio.current_time() - start < 1.0  # not one after the other (1.5 s)
    assert [f.calls for f in factories] == [1] * 5
    assert await cache.get_many([f"k{i}" for i in range(5)]) == {f"k{i}": i for i in range(5)}


async def test_a_failing_computation_lets_a_waiter_compute(cache: CacheBackend) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.1)
        if calls == 1:
            raise RuntimeError("the first computation fails")
        return "second"

    outcomes: list[Any] = []

    async def call() -> None:
        try:
            outcomes.append(await cache.get_or_set("k", flaky, ttl=60))
        except RuntimeError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(call)
    assert calls == 2
    assert sum(isinstance(o, RuntimeError) for o in outcomes) == 1
    assert outcomes.count("second") == 9
    with pytest.raises(KeyError):  # the lock is gone
        await cache.ttl(lock_key("k"))


async def test_a_value_json_cannot_hold_is_refused(cache: CacheBackend) -> None:
    with pytest.raises(TypeError, match="cannot store object"):
        await cache.get_or_set("k", object)
    assert await cache.get("k") is None
    assert await cache.get_or_set("k", lambda: "fine") == "fine"  # the lock was released


async def test_a_cancelled_computation_releases_the_lock(cache: CacheBackend) -> None:
    with anyio.move_on_after(0.1):
        await cache.get_or_set("k", Factory(delay=10))
    with anyio.fail_after(2):  # not after lock_timeout (30 s)
        assert await cache.get_or_set("k", Factory("next", delay=0)) == "next"


async def test_a_stuck_computation_holds_the_key_for_lock_timeout(cache: CacheBackend) -> None:
    stuck = Factory(delay=10)
    second = Factory("second", delay=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: cache.get_or_set("k", stuck, lock_timeout=0.3))
        await anyio.sleep(0.05)
        start = anyio.current_time()
        assert await cache.get_or_set("k", second, lock_timeout=0.3) == "second"
        waited = anyio.current_time() - start
        tg.cancel_scope.cancel()
    assert 0.15 < waited < 2
    assert second.calls == 1


async def test_lock_timeout_is_positive(cache: CacheBackend) -> None:
    with pytest.raises(ValueError, match="lock_timeout must be more than 0"):
        await cache.get_or_set("k", Factory(), lock_timeout=0)


async def test_a_ttl_of_zero_computes_every_time(cache: CacheBackend) -> None:
    factory = Factory(delay=0)
    assert await cache.get_or_set("k", factory, ttl=0) == "computed"
    assert await cache.get_or_set("k", factory, ttl=0) == "computed"
    assert factory.calls == 2
    assert await cache.get("k") is None


# -- across processes: two cache objects on one store --------------------------------------------


async def test_two_redis_caches_compute_once(redis_url: str) -> None:
    from trellis.contrib.redis import RedisCache

    prefix = unique_prefix()
    factory = Factory({"shared": True}, delay=0.3)
    async with (
        RedisCache(redis_url, prefix=prefix) as one,
        RedisCache(redis_url, prefix=prefix) as two,
    ):
        try:
            caches = [one, two] * 25
            results = await gather(50, lambda: caches.pop().get_or_set("k", factory, ttl=60))
            assert factory.calls == 1
            assert results == [{"shared": True}] * 50
            left = await two.ttl("k")
            assert left is not None and 59 < left <= 60
        finally:
            await one.clear()


async def test_two_redis_caches_a_waiter_takes_over_after_a_failure(redis_url: str) -> None:
    from trellis.contrib.redis import RedisCache

    prefix = unique_prefix()

    async def failing() -> str:
        await anyio.sleep(0.2)
        raise RuntimeError("boom")

    async with (
        RedisCache(redis_url, prefix=prefix) as one,
        RedisCache(redis_url, prefix=prefix) as two,
    ):
        try:
            second = Factory("from two", delay=0)
            outcome: list[Any] = []

            async def first() -> None:
                with pytest.raises(RuntimeError, match="boom"):
                    await one.get_or_set("k", failing)
                outcome.append("one failed")

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await anyio.sleep(0.05)  # one holds the lock now
                outcome.append(await two.get_or_set("k", second))
            assert outcome == ["one failed", "from two"]
            assert second.calls == 1
        finally:
            await one.clear()


async def test_the_redis_lock_is_a_token_under_the_prefix(redis_url: str) -> None:
    from redis.asyncio import Redis

    from trellis.contrib.redis import RedisCache

    prefix = unique_prefix()
    seen: list[Any] = []
    raw = Redis.from_url(redis_url)
    async with RedisCache(redis_url, prefix=prefix) as cache:
        try:

            async def look() -> str:
                seen.append(await raw.get(prefix + lock_key("k")))
                seen.append(await raw.pttl(prefix + lock_key("k")))
                return "v"

            assert await cache.get_or_set("k", look, lock_timeout=5) == "v"
            token, pttl = seen
            assert isinstance(token, bytes) and len(token) == 32
            assert 4000 < pttl <= 5000
            assert await raw.exists(prefix + lock_key("k")) == 0  # released
            # Someone else's lock (ours expired and was taken) is not deleted by us.
            await raw.set(prefix + lock_key("x"), "their-token")
            await cache._unlock(lock_key("x"), "our-token")
            assert await raw.get(prefix + lock_key("x")) == b"their-token"
        finally:
            await cache.clear()
            await raw.aclose()


async def test_two_database_caches_compute_once(tmp_path: Path) -> None:
    from trellis.contrib.db import Database
    from trellis.contrib.db.stores import DatabaseCache

    database = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        one, two = DatabaseCache(database), DatabaseCache(database)
        await one.create_table()
        factory = Factory([1, 2, 3], delay=0.3)
        caches = [one, two] * 10
        results = await gather(20, lambda: caches.pop().get_or_set("k", factory))
        assert factory.calls == 1
        assert results == [[1, 2, 3]] * 20
    finally:
        await database.dispose()


# -- MemoryCache: waiters on the same loop wait on the computation; other loops poll ----------


async def test_memory_waiters_on_other_threads_wait_too() -> None:
    cache = MemoryCache()
    factory = Factory("shared", delay=0.3)
    results: list[Any] = []

    def in_thread() -> None:
        results.append(anyio.run(cache.get_or_set, "k", factory))

    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.get_or_set, "k", factory)
        await anyio.sleep(0.05)
        threads = [threading.Thread(target=in_thread) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
    assert factory.calls == 1
    assert results == ["shared"] * 3


async def test_memory_waiters_are_woken_at_once() -> None:
    cache = MemoryCache()
    factory = Factory("v", delay=0.2)
    finished: list[float] = []

    async def wait() -> None:
        await cache.get_or_set("k", factory)
        finished.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(wait)
    assert factory.calls == 1
    assert max(finished) - min(finished) < 0.05  # all at once, not polling one by one
    assert not cache._flights


async def test_memory_a_cancelled_waiter_does_not_disturb_the_others() -> None:
    cache = MemoryCache()
    factory = Factory("v", delay=0.2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.get_or_set, "k", factory)
        await anyio.sleep(0.01)
        with anyio.move_on_after(0.05):
            await cache.get_or_set("k", factory)  # a waiter that gives up
        assert await cache.get_or_set("k", factory) == "v"
    assert factory.calls == 1


@pytest.mark.parametrize("env", ["TRELLIS_TEST_POSTGRES_URL", "TRELLIS_TEST_MYSQL_URL"])
async def test_database_cache_on_postgresql_and_mariadb(env: str) -> None:
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} is not set: no server to test against")
    from trellis.contrib.db import Database
    from trellis.contrib.db.stores import DatabaseCache

    database = Database(url)
    table = f"test_cache_{os.getpid()}_{secrets.token_hex(3)}"
    one, two = DatabaseCache(database, table=table), DatabaseCache(database, table=table)
    await one.create_table()
    try:
        await one.set("k", "v", ttl=60)
        left = await two.ttl("k")
        assert left is not None and 59 < left <= 60
        assert await one.touch("k", None) is True
        assert await two.ttl("k") is None
        assert await one.touch("missing", 5) is False
        with pytest.raises(KeyError):
            await one.ttl("missing")
        factory = Factory({"n": 1}, delay=0.3)
        caches = [one, two] * 10
        results = await gather(20, lambda: caches.pop().get_or_set("g", factory, ttl=60))
        assert factory.calls == 1
        assert results == [{"n": 1}] * 20
        # Only the holder's token releases a lock.
        await one.set(lock_key("x"), "their-token")
        await one._unlock(lock_key("x"), "our-token")
        assert await one.get(lock_key("x")) == "their-token"
    finally:
        await one.drop_table()
        await database.dispose()
