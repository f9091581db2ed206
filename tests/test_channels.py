"""``trellis.channels``: broadcast groups for websockets and subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from trellis import App
from trellis.channels import Channels, InMemoryBackend, Subscription
from trellis.testing import TestClient
from trellis.testing.websocket import websocket_connect
from trellis.types import Message, Receive, Scope, Send
from trellis.websockets import WebSocket, WebSocketDisconnect, WebSocketState


def chat_app(channels: Channels) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Raw ASGI chat: ``/ws/<room>`` joins the room; text is published, commands start with /."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        room = scope["path"].rsplit("/", 1)[-1]
        await ws.accept()
        await channels.join(room, ws)
        await ws.send_text("joined")
        async for text in ws.iter_text():
            if text == "/leave":
                await channels.leave(room, ws)
                await ws.send_text("left")
            elif text == "/ping":
                await ws.send_text("pong")
            elif text == "/json":
                await channels.publish(room, {"from": "server", "n": 1})
            elif text == "/bytes":
                await channels.publish(room, b"\x00\x01")
            else:
                await channels.publish(room, text)

    return app


class FakeSocket:
    """An accepted ``WebSocket`` over in-memory receive/send, for the delivery edge cases."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        scope = {"type": "websocket", "path": "/ws", "headers": []}
        self.ws = WebSocket(scope, self.incoming.get, self.send)

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            if self.fail is not None:
                raise self.fail
            await self.gate.wait()
        self.sent.append(message)

    def texts(self) -> list[Any]:
        return [m.get("text", m.get("bytes")) for m in self.sent if m["type"] == "websocket.send"]


async def accepted() -> FakeSocket:
    fake = FakeSocket()
    await fake.ws.accept()
    return fake


async def settle() -> None:
    """Let the pump and sender tasks run."""
    for _ in range(10):
        await asyncio.sleep(0)


# -- two clients through the test client -----------------------------------------------------


def test_join_publish_leave_with_two_clients() -> None:
    channels = Channels()
    app = chat_app(channels)
    with (
        start_blocking_portal() as portal,
        websocket_connect(app, "/ws/lobby", portal=portal) as ann,
        websocket_connect(app, "/ws/lobby", portal=portal) as bob,
    ):
        assert ann.receive_text() == "joined"
        assert bob.receive_text() == "joined"
        assert channels.count("lobby") == 2
        ann.send_text("hi all")
        assert ann.receive_text() == "hi all"
        assert bob.receive_text() == "hi all"

        ann.send_text("/json")
        assert ann.receive_json() == bob.receive_json() == {"from": "server", "n": 1}
        bob.send_text("/bytes")
        assert ann.receive_bytes() == bob.receive_bytes() == b"\x00\x01"

        bob.send_text("/leave")
        assert bob.receive_text() == "left"
        assert channels.count("lobby") == 1
        ann.send_text("bob is gone")
        assert ann.receive_text() == "bob is gone"
        bob.send_text("/ping")
        assert bob.receive_text() == "pong"  # not "bob is gone"
        portal.call(channels.close)


def test_a_disconnected_client_leaves_its_groups_by_itself() -> None:
    channels = Channels()
    app = chat_app(channels)
    with start_blocking_portal() as portal:
        with websocket_connect(app, "/ws/room", portal=portal) as ws:
            assert ws.receive_text() == "joined"
            assert channels.count("room") == 1
        assert channels.count("room") == 0

        async def released() -> bool:
            await settle()
            return "room" not in channels._groups

        assert portal.call(released)


def test_rooms_are_separate() -> None:
    channels = Channels()
    app = chat_app(channels)
    with (
        start_blocking_portal() as portal,
        websocket_connect(app, "/ws/a", portal=portal) as one,
        websocket_connect(app, "/ws/b", portal=portal) as two,
    ):
        one.receive_text()
        two.receive_text()
        one.send_text("to a")
        assert one.receive_text() == "to a"
        two.send_text("/ping")
        assert two.receive_text() == "pong"
        portal.call(channels.close)


# -- websockets in groups, in detail --------------------------------------------------------


@pytest.mark.anyio
async def test_join_twice_and_leave_unknown_do_nothing() -> None:
    channels = Channels()
    fake = await accepted()
    await channels.join("g", fake.ws)
    await channels.join("g", fake.ws)
    await channels.join("h", fake.ws)
    assert channels.count("g") == 1
    assert channels.groups(fake.ws) == {"g", "h"}
    await channels.leave("nope", fake.ws)
    await channels.publish("g", "one")
    await settle()
    assert fake.texts() == ["one"]
    await channels.leave_all(fake.ws)
    assert channels.groups(fake.ws) == frozenset()
    assert channels.count("g") == channels.count("h") == 0
    await channels.publish("g", "two")
    await settle()
    assert fake.texts() == ["one"]
    await channels.leave("g", fake.ws)
    await channels.close()


@pytest.mark.anyio
async def test_join_needs_an_accepted_open_websocket() -> None:
    channels = Channels()
    fake = FakeSocket()
    with pytest.raises(RuntimeError, match="accept"):
        await channels.join("g", fake.ws)
    await fake.ws.accept()
    fake.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    with pytest.raises(WebSocketDisconnect):
        await fake.ws.receive_text()
    with pytest.raises(RuntimeError, match="gone away"):
        await channels.join("g", fake.ws)


@pytest.mark.anyio
async def test_a_failing_send_removes_the_member() -> None:
    channels = Channels()
    good, bad = await accepted(), await accepted()
    await channels.join("g", good.ws)
    await channels.join("g", bad.ws)
    bad.fail = ConnectionResetError("gone")  # what a server raises once the peer is gone
    await channels.publish("g", "hello")  # never raises for a broken member
    await settle()
    assert good.texts() == ["hello"]
    assert channels.count("g") == 1
    assert bad.ws.client_state is WebSocketState.DISCONNECTED
    await channels.close()


@pytest.mark.anyio
async def test_a_slow_websocket_is_closed_with_1013() -> None:
    channels = Channels(max_queue=2)
    fast, slow = await accepted(), await accepted()
    slow.gate.clear()  # its client reads nothing: every send blocks
    await channels.join("g", fast.ws)
    await channels.join("g", slow.ws)
    for n in range(5):
        await channels.publish("g", str(n))
        await settle()
    assert fast.texts() == ["0", "1", "2", "3", "4"]
    closes = [m for m in slow.sent if m["type"] == "websocket.close"]
    assert [c["code"] for c in closes] == [1013]
    assert channels.count("g") == 1
    assert slow.ws.application_state is WebSocketState.DISCONNECTED
    await channels.close()


@pytest.mark.anyio
async def test_publish_encodes_messages() -> None:
    channels = Channels()
    fake = await accepted()
    await channels.join("g", fake.ws)
    await channels.publish("g", "text")
    await channels.publish("g", b"raw")
    await channels.publish("g", bytearray(b"ba"))
    await channels.publish("g", {"a": [1, 2]})
    await channels.publish("g", 3)
    await settle()
    assert fake.texts() == ["text", b"raw", b"ba", '{"a":[1,2]}', "3"]
    with pytest.raises(ValueError, match="non-empty str"):
        await channels.publish("", "x")
    await channels.close()


# -- subscriptions -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_subscribe_iterates_messages() -> None:
    channels = Channels()
    got: list[str | bytes] = []
    async with channels.subscribe("news") as sub:
        assert channels.count("news") == 1
        await channels.publish("news", {"title": "hi"})
        await channels.publish("news", "plain")
        async for message in sub:
            got.append(message)
            if len(got) == 2:
                break
    assert got == ['{"title":"hi"}', "plain"]
    assert channels.count("news") == 0
    assert "news" not in channels._groups
    await channels.close()


@pytest.mark.anyio
async def test_subscription_get_times_out_and_ends() -> None:
    channels = Channels()
    async with channels.subscribe("g") as sub:
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.01)
    with pytest.raises(StopAsyncIteration):
        await sub.get(timeout=1)
    await channels.close()


@pytest.mark.anyio
async def test_a_slow_subscriber_is_cut_off_after_max_queue() -> None:
    channels = Channels(max_queue=2)
    async with channels.subscribe("g") as slow, channels.subscribe("g") as fast:
        fast_got: list[str | bytes] = []
        for n in range(5):
            await channels.publish("g", str(n))
            await settle()
            fast_got.append(await fast.get(timeout=1))
        assert fast_got == ["0", "1", "2", "3", "4"]
        got = [message async for message in slow]  # what it kept, then the end
        assert got == ["0", "1"]
        assert slow.overflowed
        assert not fast.overflowed
        assert channels.count("g") == 1
    await channels.close()


@pytest.mark.anyio
async def test_channels_sharing_a_backend_reach_each_other() -> None:
    backend = InMemoryBackend()
    one, two = Channels(backend), Channels(backend)  # as if in two processes
    async with two.subscribe("g") as sub:
        await one.publish("g", "across")
        assert await sub.get(timeout=1) == "across"
    await one.close()
    await two.close()


class FailingBackend(InMemoryBackend):
    async def subscribe(self, group: str) -> AsyncIterator[str | bytes]:
        async def broken() -> AsyncIterator[str | bytes]:
            yield "first"
            raise ConnectionError("redis went away")

        return broken()

    async def unsubscribe(self, group: str, stream: AsyncIterator[str | bytes]) -> None:
        pass


@pytest.mark.anyio
async def test_a_failing_backend_ends_listeners(caplog: pytest.LogCaptureFixture) -> None:
    channels = Channels(FailingBackend())
    fake = await accepted()
    await channels.join("g", fake.ws)
    async with channels.subscribe("g") as sub:
        got = [message async for message in sub]
    await settle()
    assert got == ["first"]
    assert "the backend failed while listening to 'g'" in caplog.text
    assert [m["code"] for m in fake.sent if m["type"] == "websocket.close"] == [1011]
    await channels.close()


@pytest.mark.anyio
async def test_close_ends_everything_and_channels_can_be_used_again() -> None:
    channels = Channels()
    fake = await accepted()
    await channels.join("g", fake.ws)
    sub = channels.subscribe("g")
    await sub.__aenter__()
    await channels.close()
    assert channels.count("g") == 0
    assert channels.groups(fake.ws) == frozenset()
    assert [m async for m in sub] == []
    await sub.__aexit__(None, None, None)
    assert fake.ws.is_connected  # the websocket itself stays open
    async with channels.subscribe("g") as again:
        await channels.publish("g", "back")
        assert await again.get(timeout=1) == "back"
    await channels.close()


def test_max_queue_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Channels(max_queue=0)


# -- as a plugin ---------------------------------------------------------------------------


class SpyBackend(InMemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


def test_setup_stores_channels_on_the_app_and_closes_on_shutdown() -> None:
    backend = SpyBackend()
    app = App(debug=True)
    channels = app.install(Channels(backend))
    assert app.state.channels is channels

    @app.get("/count")
    async def count() -> dict[str, int]:
        return {"n": channels.count("g")}

    with TestClient(app) as client:
        assert client.get("/count").json() == {"n": 0}
        assert backend.closed == 0
    assert backend.closed == 1


def test_subscription_type_is_exported() -> None:
    assert Channels().subscribe("g").__class__ is Subscription
