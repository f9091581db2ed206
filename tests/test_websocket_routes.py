"""Websocket routes: typed parameters, dependencies and auth on the handshake, the test client."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel

from trellis import App, HTTPError, Router
from trellis.exceptions import ConfigurationError
from trellis.handlers.params import Cookie, Depends
from trellis.testing import TestClient
from trellis.testing.websocket import WebSocketDenied
from trellis.websockets import WebSocket


class Message(BaseModel):
    text: str


def current_user(session: Annotated[str | None, Cookie()] = None) -> str:
    if session != "valid":
        raise HTTPError(401, "Log in first")
    return "ann"


def make_app() -> App:
    app = App(debug=True)

    @app.websocket("/ws/{room}")
    async def chat(
        websocket: WebSocket,
        room: str,
        user: Annotated[str, Depends(current_user)],
        echo: int = 1,
    ) -> None:
        await websocket.accept()
        async for message in websocket.iter_model(Message):
            for _ in range(echo):
                await websocket.send_json({"room": room, "user": user, "text": message.text})

    @app.get("/ws/{room}/info")
    async def info(room: str) -> dict[str, str]:
        return {"room": room}

    return app


def test_typed_websocket_handler_with_auth_dependency() -> None:
    with TestClient(make_app()) as client:
        client.cookies.set("session", "valid")
        with client.websocket_connect("/ws/lobby?echo=2") as ws:
            ws.send_json({"text": "hi"})
            assert ws.receive_json() == {"room": "lobby", "user": "ann", "text": "hi"}
            assert ws.receive_json() == {"room": "lobby", "user": "ann", "text": "hi"}


def test_failed_auth_refuses_the_handshake_with_its_status() -> None:
    with (
        TestClient(make_app()) as client,
        pytest.raises(WebSocketDenied) as info,
        client.websocket_connect("/ws/lobby"),
    ):
        pass
    assert info.value.status == 401


def test_invalid_query_value_refuses_the_handshake_with_422() -> None:
    with TestClient(make_app()) as client:
        client.cookies.set("session", "valid")
        with pytest.raises(WebSocketDenied) as info, client.websocket_connect("/ws/x?echo=many"):
            pass
    assert info.value.status == 422


def test_unknown_websocket_path_is_refused_and_http_routes_still_work() -> None:
    with TestClient(make_app()) as client:
        with pytest.raises(WebSocketDenied) as info, client.websocket_connect("/nowhere"):
            pass
        assert info.value.status == 404
        assert client.get("/ws/r/info").json() == {"room": "r"}
        assert client.get("/ws/r").status_code == 404  # websocket-only path over plain HTTP


def test_sync_websocket_handler_or_body_parameter_fails_at_start_up() -> None:
    app = App(debug=True)

    @app.websocket("/ws")
    def sync_handler(websocket: WebSocket) -> None:
        return None

    with pytest.raises(ConfigurationError, match="async"):
        app.build()

    other = App(debug=True)
    router = Router()

    @router.websocket("/ws")
    async def with_body(websocket: WebSocket, message: Message) -> None:
        return None

    other.include(router)
    with pytest.raises(ConfigurationError, match="'message'"):
        other.build()
