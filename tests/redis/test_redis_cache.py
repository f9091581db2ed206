"""RedisCache against a real Redis: what it writes, prefixes, processes, connecting, the app.

The behaviour every cache shares is tested in tests/cache/test_backends.py (RedisCache
included); here is what is particular to Redis.
"""

from __future__ import annotations

import anyio
import orjson
import pytest
from redis.asyncio import Redis

from trellis import App
from trellis.contrib.cache import CacheBackend
from trellis.contrib.redis import RedisCache, RedisUnavailableError
from trellis.contrib.redis._client import redact
from trellis.exceptions import ConfigurationError
from trellis.testing import LifespanError, TestClient

pytestmark = pytest.mark.anyio


# -- what is written ------------------------------------------------------------------------------


async def test_values_are_json_under_the_prefix(redis_url: str, prefix: str, raw: Redis) -> None:
    async with RedisCache(redis_url, prefix=prefix) as cache:
        await cache.set("user:1", {"name": "Zoë", "tags": ("a", "b")})
        await cache.set("n", 41)
        assert await raw.get(prefix + "user:1") == orjson.dumps({"name": "Zoë", "tags": ["a", "b"]})
        assert await raw.get(prefix + "n") == b"41"
        assert await raw.get("user:1") is None  # nothing outside the prefix
        assert await cache.incr("n") == 42
        assert await raw.get(prefix + "n") == b"42"


async def test_ttls_are_redis_expiries(redis_url: str, prefix: str, raw: Redis) -> None:
    async with RedisCache(redis_url, prefix=prefix) as cache:
        await cache.set("a", 1, ttl=60)
        await cache.set_many({"b": 1, "c": 2}, ttl=30.5)
        await cache.add("d", 1, ttl=0.0001)  # rounded up to a millisecond, never PX 0
        await cache.set("forever", 1)
        assert 59_000 < await raw.pttl(prefix + "a") <= 60_000
        assert 29_000 < await raw.pttl(prefix + "b") <= 30_500
        assert 29_000 < await raw.pttl(prefix + "c") <= 30_500
        assert await raw.pttl(prefix + "forever") == -1
        assert await cache.incr("hits", ttl=10) == 1
        assert 9_000 < await raw.pttl(prefix + "hits") <= 10_000
        assert await cache.incr("forever", ttl=10) == 2
        assert await raw.pttl(prefix + "forever") == -1  # an existing key keeps no expiry


async def test_incr_rules(redis_url: str, prefix: str) -> None:
    async with RedisCache(redis_url, prefix=prefix) as cache:
        await cache.set("big", 2**63 - 1)
        with pytest.raises(OverflowError, match="would overflow 64 bits"):
            await cache.incr("big")
        assert await cache.get("big") == 2**63 - 1
        with pytest.raises(TypeError, match="delta must be an integer"):
            await cache.incr("n", 1.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="keys are strings"):
            await cache.incr(b"n")  # type: ignore[arg-type]


# -- prefixes -------------------------------------------------------------------------------------


async def test_clear_removes_only_its_prefix(redis_url: str, prefix: str, raw: Redis) -> None:
    # Glob characters in a prefix are matched literally: "x*" must not clear "xy".
    starry = RedisCache(redis_url, prefix=prefix + "x*:")
    neighbour = RedisCache(redis_url, prefix=prefix + "xy:")
    async with starry, neighbour:
        await starry.set_many({f"k{n}": n for n in range(1_200)})  # several SCAN batches
        await neighbour.set("k1", "kept")
        await raw.set(prefix + "outside", b"kept")
        await starry.clear()
        assert await starry.get_many([f"k{n}" for n in range(1_200)]) == {}
        assert await neighbour.get("k1") == "kept"
        assert await raw.get(prefix + "outside") == b"kept"
        names = [name async for name in raw.scan_iter(match=prefix + "*")]
        assert sorted(names) == [(prefix + "outside").encode(), (prefix + "xy:k1").encode()]


async def test_two_prefixes_are_two_caches(redis_url: str, prefix: str) -> None:
    async with (
        RedisCache(redis_url, prefix=prefix + "one:") as one,
        RedisCache(redis_url, prefix=prefix + "two:") as two,
    ):
        await one.set("k", 1)
        assert await two.get("k") is None
        assert await two.add("k", 2) is True
        assert (await one.get("k"), await two.get("k")) == (1, 2)


# -- several processes ----------------------------------------------------------------------------


async def test_two_instances_share_the_data(redis_url: str, prefix: str) -> None:
    # Two caches with their own connections: two worker processes.
    async with (
        RedisCache(redis_url, prefix=prefix) as first,
        RedisCache(redis_url, prefix=prefix) as second,
    ):
        await first.set("k", {"from": "first"}, ttl=60)
        assert await second.get("k") == {"from": "first"}
        assert await second.delete("k") is True
        assert await first.get("k") is None

        results: list[bool] = []

        async def add(cache: RedisCache, n: int) -> None:
            results.append(await cache.add("lock", n, ttl=30))

        async def bump(cache: RedisCache) -> None:
            await cache.incr("counter", ttl=60)

        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(add, first if n % 2 else second, n)
                tg.start_soon(bump, first if n % 2 else second)
        assert results.count(True) == 1
        assert await first.get("counter") == 40


# -- connecting -----------------------------------------------------------------------------------


async def test_standalone_connect_ping_close_and_again(redis_url: str, prefix: str) -> None:
    cache = RedisCache(redis_url, prefix=prefix)
    await cache.connect()
    assert await cache.ping() is True
    await cache.set("k", 1)
    await cache.close()
    assert await cache.get("k") == 1  # used again: connects again
    await cache.close()


async def test_unreachable_redis_is_a_clear_error(closed_port: int) -> None:
    url = f"redis://:s3cret-pass@127.0.0.1:{closed_port}/0"
    cache = RedisCache(url, connect_timeout=2)
    assert await cache.ping() is False
    with pytest.raises(RedisUnavailableError) as info:
        await cache.connect()
    message = str(info.value)
    assert message.startswith(f"cannot connect to Redis at redis://:***@127.0.0.1:{closed_port}/0")
    assert "s3cret" not in message
    with pytest.raises(RedisUnavailableError, match="cannot connect to Redis"):
        async with cache:
            pass  # pragma: no cover
    await cache.close()


def test_the_app_does_not_start_without_redis(closed_port: int) -> None:
    app = App(debug=True)
    app.install(RedisCache(f"redis://user:s3cret@127.0.0.1:{closed_port}/2", connect_timeout=2))
    with pytest.raises(LifespanError) as info, TestClient(app):
        pass  # pragma: no cover
    message = str(info.value)
    assert "RedisUnavailableError: cannot connect to Redis at redis://user:***@127.0.0.1" in message
    assert "s3cret" not in message


async def test_a_client_of_yours_stays_open(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        cache = RedisCache(client, prefix=prefix)
        assert cache.client is client
        async with cache:
            await cache.set("k", "v")
        assert await client.get(prefix + "k") == b'"v"'  # close() left it open
        assert repr(cache).startswith("<RedisCache redis://")
    finally:
        await client.aclose()


def test_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"invalid Redis URL 'http://:\*\*\*@host/0'"):
        RedisCache("http://:pw@host/0")
    with pytest.raises(TypeError, match="give a Redis URL"):
        RedisCache(6379)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options \\(max_connections\\) go with a URL"):
        RedisCache(Redis(), max_connections=3)
    with pytest.raises(TypeError, match="the prefix is a string"):
        RedisCache("redis://localhost", prefix=b"x:")  # type: ignore[arg-type]
    assert RedisCache("redis://localhost", prefix=None).prefix == "trellis:cache:"


def test_options_reach_the_client() -> None:
    cache = RedisCache(
        "redis://localhost:6390/3", connect_timeout=1.5, timeout=None, max_connections=7
    )
    pool = cache.client.connection_pool
    assert pool.connection_kwargs["socket_connect_timeout"] == 1.5
    assert pool.connection_kwargs["socket_timeout"] is None
    assert pool.connection_kwargs["db"] == 3
    assert pool.max_connections == 7
    assert repr(cache) == "<RedisCache redis://localhost:6390/3 prefix='trellis:cache:'>"
    assert RedisCache("redis://h").prefix == "trellis:cache:"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("rediss://user:p%40ss@host/1", "rediss://user:***@host/1"),
        ("redis://user@host", "redis://user@host"),
        ("redis://host/0?password=pw&db=2", "redis://host/0?password=***&db=2"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


# -- the plugin -----------------------------------------------------------------------------------


def test_the_plugin_connects_serves_and_closes(redis_url: str, prefix: str) -> None:
    cache = RedisCache(redis_url, prefix=prefix)
    closed: list[bool] = []
    real_close = cache.close

    async def close() -> None:
        closed.append(True)
        await real_close()

    cache.close = close  # type: ignore[method-assign]
    app = App(debug=True)
    assert app.install(cache) is cache
    assert app.state.cache is cache
    assert isinstance(cache, CacheBackend)

    @app.post("/hits")
    async def hits() -> dict[str, int]:
        return {"hits": await app.state.cache.incr("hits", ttl=60)}

    for expected in ([1, 2], [3]):  # the app starts twice: the counter is in Redis
        with TestClient(app) as client:
            assert [client.post("/hits").json()["hits"] for _ in expected] == expected
    assert closed == [True, True]


def test_one_cache_per_app() -> None:
    app = App()
    app.install(RedisCache("redis://localhost:6379/0"))
    with pytest.raises(ConfigurationError, match=r"already has app.state.cache \(<RedisCache"):
        app.install(RedisCache("redis://localhost:6379/0", prefix="other:"))
