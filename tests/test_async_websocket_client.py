"""``AsyncTestClient.websocket_connect``: websockets from async tests, on the test's own loop."""

from __future__ import annotations

import asyncio
from typing import Annotated

import pytest

from trellis import App, HTTPError
from trellis.channels import Channels
from trellis.handlers.params import Cookie, Depends
from trellis.testing import AsyncTestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.websockets import WebSocket, WebSocketDisconnect

pytestmark = pytest.mark.anyio


def current_user(session: Annotated[str | None, Cookie()] = None) -> str:
    if session != "valid":
        raise HTTPError(401, "Log in first")
    return "ann"


def make_app() -> App:
    app = App(debug=True)
    channels = app.install(Channels())

    @app.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="chat" if websocket.client_subprotocols else None)
        async for text in websocket.iter_text():
            if text == "bye":
                await websocket.close(4000, "see you")
                return
            await websocket.send_text(f"echo: {text}")

    @app.websocket("/bytes")
    async def raw(websocket: WebSocket) -> None:
        await websocket.accept()
        data = await websocket.receive_bytes()
        await websocket.send_bytes(data[::-1])
        await websocket.send_json({"size": len(data)})

    @app.websocket("/me")
    async def me(websocket: WebSocket, user: Annotated[str, Depends(current_user)]) -> None:
        await websocket.accept()
        await websocket.send_json({"user": user})

    @app.websocket("/room")
    async def room(websocket: WebSocket) -> None:
        await websocket.accept()
        await channels.join("room", websocket)
        await websocket.send_text("joined")
        async for text in websocket.iter_text():
            await channels.publish("room", text)

    @app.websocket("/boom")
    async def boom(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise ValueError("the handler broke")

    return app


async def test_text_bytes_json_and_subprotocols() -> None:
    async with AsyncTestClient(make_app()) as client:
        async with client.websocket_connect("/echo", subprotocols=["chat"]) as ws:
            assert ws.accepted_subprotocol == "chat"
            await ws.send_text("hi")
            assert await ws.receive_text() == "echo: hi"
            await ws.send_text("bye")
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
            assert (closed.value.code, ws.close_code, ws.close_reason) == (4000, 4000, "see you")
        async with client.websocket_connect("/bytes") as ws:
            await ws.send_bytes(b"abc")
            assert await ws.receive_bytes() == b"cba"
            assert await ws.receive_json() == {"size": 3}


async def test_the_handshake_sends_the_clients_cookies_and_can_be_refused() -> None:
    async with AsyncTestClient(make_app()) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/me"):
                pass
        assert denied.value.status == 401
        assert denied.value.json()["detail"] == "Log in first"
        client.cookies.set("session", "valid")
        async with client.websocket_connect("/me") as ws:
            assert await ws.receive_json() == {"user": "ann"}


async def test_two_connections_on_one_loop_hear_each_other() -> None:
    # Both sessions and the app share the test's loop: no threads, no portal.
    async with (
        AsyncTestClient(make_app()) as client,
        client.websocket_connect("/room") as ann,
        client.websocket_connect("/room") as bob,
    ):
        assert await ann.receive_text() == await bob.receive_text() == "joined"
        await ann.send_text("hello")
        heard = await asyncio.gather(ann.receive_text(), bob.receive_text())
        assert heard == ["hello", "hello"]


async def test_a_broken_handler_closes_with_1011_and_a_raw_apps_error_comes_out() -> None:
    async with AsyncTestClient(make_app()) as client, client.websocket_connect("/boom") as ws:
        await ws.send_text("go")
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
        assert closed.value.code == 1011  # logged by the app, as under a server

    async def raw(scope: dict[str, object], receive: object, send: object) -> None:
        raise ValueError("the raw app broke")

    async with AsyncTestClient(raw) as client:
        with pytest.raises(ValueError, match="the raw app broke"):
            async with client.websocket_connect("/"):
                pass


async def test_a_silent_app_times_out_instead_of_hanging() -> None:
    async with (
        AsyncTestClient(make_app()) as client,
        client.websocket_connect("/bytes", timeout=0.2) as ws,
    ):
        with pytest.raises(TimeoutError, match=r"sent nothing within 0\.2 seconds"):
            await ws.receive_bytes()  # the handler waits for our bytes first
        await ws.send_bytes(b"x")
        assert await ws.receive_bytes() == b"x"
