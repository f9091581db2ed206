"""One suite, every cache backend: MemoryCache, RedisCache and DatabaseCache behave the same.

Time is real here (Redis keeps its own clock): the expiry tests use short ttls and sleep.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from trellis.contrib.cache import CacheBackend

UNICODE = 'héllo wörld ✓ 日本語 🎉 \u0000 "quoted" \\ back'
TTL = 0.25
PAST_TTL = 0.35

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "value",
    [
        {"text": UNICODE, "nested": {"list": [1, 2.5, None, True, "x"]}},
        [UNICODE, {"a": []}],
        UNICODE,
        "",
        "41",
        3.25,
        0,
        -17,
        2**63 - 1,
        -(2**63),
        2**63,
        True,
        False,
        None,
        {},
        [],
    ],
    ids=repr,
)
async def test_json_round_trip(cache: CacheBackend, value: Any) -> None:
    await cache.set("k", value)
    result = await cache.get("k", default="missing")
    assert result == value
    assert type(result) is type(value)


async def test_it_is_a_cache_backend(cache: CacheBackend) -> None:
    assert isinstance(cache, CacheBackend)


async def test_missing_key_gives_the_default(cache: CacheBackend) -> None:
    assert await cache.get("nope") is None
    assert await cache.get("nope", 42) == 42


async def test_values_are_json_copies(cache: CacheBackend) -> None:
    await cache.set("t", (1, "two"))
    assert await cache.get("t") == [1, "two"]
    original = {"items": [1, 2]}
    await cache.set("d", original)
    original["items"].append(3)  # changing what was stored does not change the cache
    returned = await cache.get("d")
    assert returned == {"items": [1, 2]}
    returned["items"].append(4)  # nor does changing what came back
    assert await cache.get("d") == {"items": [1, 2]}


@pytest.mark.parametrize("value", [object(), {1: "non-string key"}, {"when": {1, 2}}], ids=repr)
async def test_values_json_cannot_hold_are_refused(cache: CacheBackend, value: Any) -> None:
    with pytest.raises(TypeError, match="JSON values and cannot store"):
        await cache.set("bad", value)
    with pytest.raises(TypeError, match="JSON values and cannot store"):
        await cache.set_many({"good": 1, "bad": value})
    with pytest.raises(TypeError, match="JSON values and cannot store"):
        await cache.add("bad", value)
    assert await cache.get_many(["bad", "good"]) == {}


async def test_keys_are_exact_strings(cache: CacheBackend) -> None:
    keys = ["key", "Key", "KEY", "key ", "kéy", "ключ", "🔑", "a*b?[c]\\"]
    await cache.set_many({key: index for index, key in enumerate(keys)})
    assert await cache.get_many(keys) == {key: index for index, key in enumerate(keys)}
    assert await cache.get("key ") == 3
    with pytest.raises(TypeError, match="keys are strings"):
        await cache.get(b"bytes")  # type: ignore[arg-type]


async def test_large_values(cache: CacheBackend) -> None:
    big = {"blob": UNICODE * 20_000, "numbers": list(range(20_000))}
    await cache.set("big", big)
    assert await cache.get("big") == big


async def test_set_overwrites_value_and_expiry(cache: CacheBackend) -> None:
    await cache.set("k", "first", ttl=TTL)
    await cache.set("k", 7)  # an integer now, and no expiry
    await anyio.sleep(PAST_TTL)
    assert await cache.get("k") == 7
    await cache.set("k", {"x": 1}, ttl=TTL)
    assert await cache.get("k") == {"x": 1}
    await anyio.sleep(PAST_TTL)
    assert await cache.get("k", "gone") == "gone"


async def test_ttl_expiry(cache: CacheBackend) -> None:
    await cache.set("k", "v", ttl=TTL)
    await cache.set_many({"a": 1, "b": 2}, ttl=TTL)
    await cache.set("kept", "v", ttl=60)
    assert await cache.get_many(["k", "a", "b", "kept"]) == {"k": "v", "a": 1, "b": 2, "kept": "v"}
    await anyio.sleep(PAST_TTL)
    assert await cache.get("k", "gone") == "gone"
    assert await cache.get_many(["k", "a", "b", "kept"]) == {"kept": "v"}
    assert await cache.delete("k") is False  # expired: was not there


@pytest.mark.parametrize("ttl", [0, -5])
async def test_a_ttl_of_zero_or_less_expires_at_once(cache: CacheBackend, ttl: float) -> None:
    await cache.set("old", "there")
    await cache.set("old", "replaced", ttl=ttl)
    assert await cache.get("old") is None
    await cache.set_many({"a": 1, "b": 2}, ttl=ttl)
    assert await cache.get_many(["a", "b"]) == {}
    assert await cache.add("new", 1, ttl=ttl) is True  # stored, and gone at once
    assert await cache.get("new") is None
    assert await cache.incr("counter", 5, ttl=ttl) == 5
    assert await cache.get("counter") is None


async def test_add_only_when_missing_or_expired(cache: CacheBackend) -> None:
    assert await cache.add("k", "first", ttl=TTL) is True
    assert await cache.add("k", "second", ttl=TTL) is False
    assert await cache.get("k") == "first"
    assert await cache.add("k", "third", ttl=0) is False  # present: nothing happens
    assert await cache.get("k") == "first"
    await anyio.sleep(PAST_TTL)
    assert await cache.add("k", "fourth") is True
    assert await cache.get("k") == "fourth"
    assert await cache.add("k", "fifth") is False  # no expiry: still there


async def test_concurrent_add_has_one_winner(cache: CacheBackend) -> None:
    results: list[bool] = []

    async def add(n: int) -> None:
        results.append(await cache.add("lock", n, ttl=30))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(add, n)
    assert len(results) == 20
    assert results.count(True) == 1
    assert isinstance(await cache.get("lock"), int)


async def test_incr(cache: CacheBackend) -> None:
    assert await cache.incr("n") == 1
    assert await cache.incr("n") == 2
    assert await cache.incr("n", 10) == 12
    assert await cache.incr("n", -20) == -8
    assert await cache.get("n") == -8
    await cache.set("m", 41)
    assert await cache.incr("m") == 42
    assert await cache.get("m") == 42


@pytest.mark.parametrize("value", ["41", 4.5, True, None, [1], {"n": 1}, 2**63], ids=repr)
async def test_incr_refuses_values_that_are_not_integers(cache: CacheBackend, value: Any) -> None:
    await cache.set("k", value, ttl=100)
    with pytest.raises(TypeError, match="holds a value that is not an integer"):
        await cache.incr("k")
    assert await cache.get("k", "missing") == value  # untouched


async def test_incr_ttl_is_set_when_the_counter_starts(cache: CacheBackend) -> None:
    assert await cache.incr("hits", ttl=0.5) == 1
    await anyio.sleep(0.3)
    assert await cache.incr("hits", ttl=0.5) == 2  # the window does not slide
    await anyio.sleep(0.3)
    assert await cache.get("hits") is None
    assert await cache.incr("hits", ttl=60) == 1  # a new window
    await cache.set("text", "not a number", ttl=TTL)
    await anyio.sleep(PAST_TTL)
    assert await cache.incr("text", 3) == 3  # expired: counts as missing


async def test_incr_keeps_the_expiry_of_an_existing_key(cache: CacheBackend) -> None:
    await cache.set("forever", 1)
    assert await cache.incr("forever", ttl=TTL) == 2  # exists: the ttl is not applied
    await anyio.sleep(PAST_TTL)
    assert await cache.get("forever") == 2


async def test_concurrent_incr_loses_no_update(cache: CacheBackend) -> None:
    async def bump() -> None:
        await cache.incr("counter")

    for expected in (50, 100):  # a missing key, then an existing one
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(bump)
        assert await cache.get("counter") == expected


async def test_get_many_and_set_many(cache: CacheBackend) -> None:
    assert await cache.get_many([]) == {}
    await cache.set_many({})
    await cache.set_many({"a": 1, "b": {"x": UNICODE}, "c": None})
    assert await cache.get_many(iter(["a", "b", "c", "missing", "a"])) == {
        "a": 1,
        "b": {"x": UNICODE},
        "c": None,
    }


async def test_delete(cache: CacheBackend) -> None:
    await cache.set("k", "v")
    assert await cache.delete("k") is True
    assert await cache.delete("k") is False
    assert await cache.get("k") is None


async def test_clear(cache: CacheBackend) -> None:
    await cache.set_many({"a": 1, "b": 2})
    await cache.incr("n")
    await cache.clear()
    assert await cache.get_many(["a", "b", "n"]) == {}
    await cache.clear()  # empty: nothing happens


# -- ttl and touch ------------------------------------------------------------------------------


async def test_ttl_says_how_long_is_left(cache: CacheBackend) -> None:
    await cache.set("k", "v", ttl=60)
    left = await cache.ttl("k")
    assert left is not None and 59 < left <= 60
    await cache.set("forever", "v")
    assert await cache.ttl("forever") is None
    await cache.incr("counter", ttl=30)
    left = await cache.ttl("counter")
    assert left is not None and 29 < left <= 30


async def test_ttl_of_a_missing_or_expired_key_raises_key_error(cache: CacheBackend) -> None:
    with pytest.raises(KeyError, match="nope"):
        await cache.ttl("nope")
    await cache.set("k", "v", ttl=TTL)
    await anyio.sleep(PAST_TTL)
    with pytest.raises(KeyError):
        await cache.ttl("k")


async def test_touch_gives_a_new_expiry_and_keeps_the_value(cache: CacheBackend) -> None:
    await cache.set("k", {"v": 1}, ttl=TTL)
    assert await cache.touch("k", 60) is True
    await anyio.sleep(PAST_TTL)
    assert await cache.get("k") == {"v": 1}
    left = await cache.ttl("k")
    assert left is not None and 59 < left <= 60
    assert await cache.touch("k", None) is True  # no expiry any more
    assert await cache.ttl("k") is None
    assert await cache.touch("k", TTL) is True
    await anyio.sleep(PAST_TTL)
    assert await cache.get("k") is None


async def test_touch_a_missing_key_or_with_no_time_left(cache: CacheBackend) -> None:
    assert await cache.touch("nope", 60) is False
    assert await cache.touch("nope", None) is False
    assert await cache.get("nope") is None
    await cache.set("k", 5)
    assert await cache.touch("k", 0) is True  # expired at once
    assert await cache.get("k") is None
    assert await cache.touch("k", 60) is False
    await cache.incr("n", ttl=60)
    assert await cache.touch("n", None) is True
    assert await cache.incr("n") == 2  # still a counter
