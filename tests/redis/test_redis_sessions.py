"""RedisSessionStore against a real Redis: load, save, expiry, several processes, the app."""

from __future__ import annotations

import anyio
import orjson
import pytest
from redis.asyncio import Redis

from trellis import App
from trellis.contrib.redis import RedisSessionStore, RedisUnavailableError
from trellis.exceptions import ConfigurationError
from trellis.sessions import SessionBackend

UNICODE = 'héllo wörld ✓ 日本語 🎉 \u0000 "quoted" \\ back'

pytestmark = pytest.mark.anyio


async def test_save_load_delete(redis_url: str, prefix: str, raw: Redis) -> None:
    async with RedisSessionStore(redis_url, prefix=prefix) as store:
        assert isinstance(store, SessionBackend)
        data = {"user_id": 7, "flash": [UNICODE], "csrf": "t0k3n", "cart": {"sku-1": 2}}
        assert await store.load("s1") is None
        await store.save("s1", data, ttl=3600)
        assert await store.load("s1") == data
        assert await raw.get(prefix + "s1") == orjson.dumps(data)
        assert await store.load("S1") is None  # ids are exact
        await store.save("s1", {"user_id": 8}, ttl=3600)
        assert await store.load("s1") == {"user_id": 8}
        await store.delete("s1")
        assert await store.load("s1") is None
        await store.delete("s1")  # unknown: nothing happens


async def test_sessions_expire(redis_url: str, prefix: str, raw: Redis) -> None:
    async with RedisSessionStore(redis_url, prefix=prefix) as store:
        await store.save("short", {"n": 1}, ttl=0.5)
        await store.save("long", {"n": 2}, ttl=3600)
        assert 0 < await raw.pttl(prefix + "short") <= 500
        await anyio.sleep(0.3)
        await store.save("renewed", {"n": 3}, ttl=0.5)
        await anyio.sleep(0.3)
        assert await store.load("short") is None
        assert await store.load("renewed") == {"n": 3}
        assert await store.load("long") == {"n": 2}
        await store.save("long", {"n": 2}, ttl=60)  # a save sets the expiry again
        assert 59_000 < await raw.pttl(prefix + "long") <= 60_000
        await store.save("long", {"n": 2}, ttl=0)  # zero: gone at once
        assert await store.load("long") is None


async def test_two_stores_are_two_processes(redis_url: str, prefix: str) -> None:
    async with (
        RedisSessionStore(redis_url, prefix=prefix) as first,
        RedisSessionStore(redis_url, prefix=prefix) as second,
    ):
        await first.save("abc", {"user_id": 1}, ttl=60)
        assert await second.load("abc") == {"user_id": 1}
        await second.save("abc", {"user_id": 1, "theme": "dark"}, ttl=60)
        assert await first.load("abc") == {"user_id": 1, "theme": "dark"}
        await first.delete("abc")
        assert await second.load("abc") is None


async def test_data_rules(redis_url: str, prefix: str, raw: Redis) -> None:
    async with RedisSessionStore(redis_url, prefix=prefix) as store:
        with pytest.raises(TypeError, match="session data is a dict, not list"):
            await store.save("s", ["not", "a", "dict"], ttl=60)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="sessions keep JSON values and cannot store dict"):
            await store.save("s", {"when": object()}, ttl=60)
        with pytest.raises(TypeError, match="keys are strings"):
            await store.load(None)  # type: ignore[arg-type]
        assert await store.load("s") is None
        await raw.set(prefix + "odd", b"[1, 2]")  # written by something else: not a session
        assert await store.load("odd") is None
        big = {"blob": UNICODE * 20_000}
        await store.save("big", big, ttl=60)
        assert await store.load("big") == big


async def test_unreachable_redis_is_a_clear_error(closed_port: int) -> None:
    store = RedisSessionStore(f"redis://:hunter2@127.0.0.1:{closed_port}", connect_timeout=2)
    assert await store.ping() is False
    with pytest.raises(RedisUnavailableError, match=r"redis://:\*\*\*@127.0.0.1") as info:
        await store.connect()
    assert "hunter2" not in str(info.value)


async def test_one_client_for_cache_and_sessions(redis_url: str, prefix: str) -> None:
    from trellis.contrib.redis import RedisCache

    client = Redis.from_url(redis_url)
    try:
        cache = RedisCache(client, prefix=prefix + "cache:")
        store = RedisSessionStore(client, prefix=prefix + "session:")
        async with cache, store:
            await cache.set("k", 1)
            await store.save("k", {"v": 2}, ttl=60)
            assert (await cache.get("k"), await store.load("k")) == (1, {"v": 2})
            await cache.clear()
            assert await store.load("k") == {"v": 2}  # clear() stays in its prefix
        assert await client.ping() is True  # neither closed it
    finally:
        await client.aclose()


def test_install_sets_app_state_session_store() -> None:
    app = App()
    store = app.install(RedisSessionStore("redis://localhost:6379/0"))
    assert app.state.session_store is store
    assert store.prefix == "trellis:session:"
    assert repr(store) == "<RedisSessionStore redis://localhost:6379/0 prefix='trellis:session:'>"
    with pytest.raises(ConfigurationError, match=r"already has app.state.session_store"):
        app.install(RedisSessionStore("redis://localhost:6379/0"))


# -- in an application ---------------------------------------------------------------------------


def session_app(redis_url: str, prefix: str, **settings: object) -> App:
    """An app whose sessions live in Redis: each instance stands for one worker process."""
    from trellis import Request

    app = App(debug=True, secret_key="k" * 40, **settings)  # type: ignore[arg-type]
    app.install(RedisSessionStore(redis_url, prefix=prefix))

    @app.get("/login/{name}")
    async def login(name: str, request: Request) -> dict[str, str]:
        request.session["user"] = name
        request.session.rotate()
        return {"user": name}

    @app.get("/me")
    async def me(request: Request) -> dict[str, object]:
        return {"user": request.session.get("user")}

    @app.get("/logout")
    async def logout(request: Request) -> dict[str, bool]:
        request.session.invalidate()
        return {"out": True}

    return app


def test_an_app_keeps_its_sessions_in_redis(redis_url: str, prefix: str) -> None:
    from redis.client import Redis as SyncRedis

    from trellis.testing import TestClient

    with (
        SyncRedis.from_url(redis_url) as raw,
        TestClient(session_app(redis_url, prefix)) as worker1,
        TestClient(session_app(redis_url, prefix)) as worker2,
    ):
        assert worker1.get("/me").json() == {"user": None}
        response = worker1.get("/login/alice")
        assert response.status_code == 200
        session_id = response.cookies["session"]
        assert "alice" not in session_id  # the cookie holds only an id
        stored = raw.get(prefix + session_id)
        assert stored is not None and b"alice" in stored
        assert 1_209_500_000 < raw.pttl(prefix + session_id) <= 1_209_600_000  # session_max_age
        assert worker1.get("/me").json() == {"user": "alice"}

        # Another process with the same cookie sees the same session.
        cookie = {"cookie": f"session={session_id}"}
        assert worker2.get("/me", headers=cookie).json() == {"user": "alice"}

        # Rotating on a new login deletes the old record.
        new_id = worker2.get("/login/bob", headers=cookie).cookies["session"]
        assert new_id != session_id
        assert raw.get(prefix + session_id) is None
        assert worker2.get("/me").json() == {"user": "bob"}

        # Logging out deletes the record and expires the cookie.
        response = worker2.get("/logout")
        assert raw.get(prefix + new_id) is None
        assert "session=" in response.headers["set-cookie"]
        assert worker2.get("/me").json() == {"user": None}
        worker1.cookies.clear()  # a stolen, logged-out id is worth nothing
        assert worker1.get("/me", headers={"cookie": f"session={new_id}"}).json() == {"user": None}


def test_an_app_without_redis_does_not_start(closed_port: int) -> None:
    from trellis.testing import LifespanError, TestClient

    app = session_app(f"redis://:pw@127.0.0.1:{closed_port}/0", "x:")
    with (
        pytest.raises(LifespanError, match=r"cannot connect to Redis at redis://:\*\*\*@"),
        TestClient(app),
    ):
        pass  # pragma: no cover
