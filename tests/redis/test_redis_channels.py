"""RedisChannels against a real Redis: two ``Channels`` stand for two processes."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from trellis import App, Request
from trellis.channels import Channels
from trellis.contrib.redis import RedisChannels, RedisUnavailableError
from trellis.exceptions import ConfigurationError
from trellis.testing import LifespanError, TestClient
from trellis.websockets import WebSocket

pytestmark = pytest.mark.anyio


async def test_a_subscriber_in_one_process_gets_what_another_publishes(
    redis_url: str, prefix: str
) -> None:
    one = Channels(RedisChannels(redis_url, prefix=prefix))
    two = Channels(RedisChannels(redis_url, prefix=prefix))
    try:
        async with one.subscribe("room") as sub, one.subscribe("other") as other:
            await two.publish("room", {"text": "hi"})
            await two.publish("room", "plain text")
            await two.publish("room", b"\x00\xffbinary")
            await one.publish("room", "from one")  # the publisher's own process hears it too
            assert await sub.get(timeout=5) == '{"text":"hi"}'
            assert await sub.get(timeout=5) == "plain text"
            assert await sub.get(timeout=5) == b"\x00\xffbinary"
            assert await sub.get(timeout=5) == "from one"
            with pytest.raises(TimeoutError):
                await other.get(timeout=0.05)  # groups are separate
    finally:
        await one.close()
        await two.close()


async def test_one_redis_subscription_per_group_and_process(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    backend = RedisChannels(redis_url, prefix=prefix)
    channels = Channels(backend)
    try:
        async with channels.subscribe("g") as a, channels.subscribe("g") as b:
            assert await raw.pubsub_numsub(prefix + "g") == [((prefix + "g").encode(), 1)]
            assert await raw.publish(prefix + "g", b"tnews") == 1  # one connection, fanned out
            assert await a.get(timeout=5) == await b.get(timeout=5) == "news"
        with anyio.fail_after(5):
            while (await raw.pubsub_numsub(prefix + "g"))[0][1] != 0:
                await anyio.sleep(0.01)  # the last one out leaves the Redis channel
    finally:
        await channels.close()


async def test_prefixes_keep_applications_apart(redis_url: str, prefix: str) -> None:
    one = Channels(RedisChannels(redis_url, prefix=prefix + "a:"))
    two = Channels(RedisChannels(redis_url, prefix=prefix + "b:"))
    try:
        async with one.subscribe("g") as sub:
            await two.publish("g", "elsewhere")
            await one.publish("g", "here")
            assert await sub.get(timeout=5) == "here"
    finally:
        await one.close()
        await two.close()


async def test_a_lost_connection_cuts_listeners_off_and_the_next_subscription_reconnects(
    redis_url: str, prefix: str, raw: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisChannels(redis_url, prefix=prefix)
    channels = Channels(backend)
    try:
        async with channels.subscribe("g") as sub:
            assert backend._pubsub is not None
            connection: Any = backend._pubsub.connection  # the subscriber connection's socket
            _, port = connection._writer.get_extra_info("sockname")[:2]
            clients = await raw.client_list()
            mine = [c["id"] for c in clients if c["addr"].endswith(f":{port}")]
            assert len(mine) == 1
            with caplog.at_level(logging.WARNING, "trellis.channels"):
                await raw.client_kill_filter(_id=mine[0])  # as when Redis restarts
                with anyio.fail_after(5):
                    async for _ in sub:
                        pass  # the subscription ends: its listener must catch up
            assert "lost the subscriber connection to Redis" in caplog.text
        caplog.clear()
        async with channels.subscribe("g") as again:
            await channels.publish("g", "back")
            assert await again.get(timeout=5) == "back"
    finally:
        await channels.close()


async def test_publish_and_subscribe_fail_clearly_when_redis_is_down(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisChannels(f"redis://127.0.0.1:{closed_port}/0", connect_timeout=1)
    channels = Channels(backend)
    with pytest.raises(RedisUnavailableError, match="cannot publish to channel group 'g'"):
        await channels.publish("g", "x")
    with (
        caplog.at_level(logging.WARNING, "trellis.channels"),
        pytest.raises(RedisUnavailableError, match="cannot connect to Redis"),
    ):
        async with channels.subscribe("g"):
            pass
    assert "next attempt in 0.5 s" in caplog.text
    # Until then, attempts fail at once without touching the network.
    with pytest.raises(RedisUnavailableError, match="the next attempt to reconnect is in"):
        await backend.subscribe("g")
    backend._retry_at = 0.0
    with pytest.raises(RedisUnavailableError, match="cannot connect"):
        await backend.subscribe("g")
    assert backend._delay == 2.0  # doubled twice
    await channels.close()
    assert backend._delay == 0.5


def test_the_app_does_not_start_when_redis_is_down(closed_port: int) -> None:
    app = App(debug=True)
    app.install(Channels(RedisChannels(f"redis://127.0.0.1:{closed_port}/0", connect_timeout=1)))
    with pytest.raises(LifespanError, match="cannot connect to Redis"), TestClient(app):
        pass


def test_it_is_a_backend_not_a_plugin() -> None:
    app = App(debug=True)
    with pytest.raises(ConfigurationError, match=r"Channels\(RedisChannels\(url\)\)"):
        app.install(RedisChannels("redis://localhost:6379/0"))


def test_clients_that_decode_responses_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisChannels(Redis.from_url("redis://localhost:6379/0", decode_responses=True))


def chat_app(redis_url: str, prefix: str) -> App:
    app = App(debug=True)
    channels = app.install(Channels(RedisChannels(redis_url, prefix=prefix)))

    @app.websocket("/ws/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await channels.join(room, websocket)
        await websocket.send_text("joined")
        async for text in websocket.iter_text():
            await channels.publish(room, {"room": room, "text": text})

    @app.post("/rooms/{room}")
    async def announce(request: Request, room: str) -> dict[str, bool]:
        await channels.publish(room, {"room": room, "text": (await request.body()).decode()})
        return {"ok": True}

    return app


def test_two_apps_a_websocket_on_one_gets_what_the_other_publishes(
    redis_url: str, prefix: str
) -> None:
    with (
        TestClient(chat_app(redis_url, prefix)) as one,
        TestClient(chat_app(redis_url, prefix)) as two,
        one.websocket_connect("/ws/lobby") as ann,
        two.websocket_connect("/ws/lobby") as bob,
    ):
        assert ann.receive_text() == bob.receive_text() == "joined"
        assert two.post("/rooms/lobby", content=b"from app two").json() == {"ok": True}
        assert ann.receive_json() == {"room": "lobby", "text": "from app two"}
        assert bob.receive_json() == {"room": "lobby", "text": "from app two"}
        ann.send_text("hi bob")  # and back, websocket to websocket across the apps
        assert bob.receive_json() == {"room": "lobby", "text": "hi bob"}
        assert ann.receive_json() == {"room": "lobby", "text": "hi bob"}
