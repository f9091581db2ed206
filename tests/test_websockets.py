"""``trellis.websockets.WebSocket`` and the websocket test client, driven by raw ASGI apps."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from pydantic import BaseModel

from trellis.exceptions import HTTPError, UnauthorizedError
from trellis.testing.websocket import WebSocketDenied, websocket_connect
from trellis.types import Message, Receive, Scope, Send
from trellis.websockets import (
    DEFAULT_MAX_MESSAGE_SIZE,
    WebSocket,
    WebSocketClose,
    WebSocketDataError,
    WebSocketDisconnect,
    WebSocketState,
    _adapter,
    serve_websocket,
)

Handler = Callable[[WebSocket], Awaitable[None]]


def asgi(handler: Handler, **options: Any) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A raw ASGI app that runs ``handler(websocket)``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await handler(WebSocket(scope, receive, send, **options))

    return app


def served(handler: Handler) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A raw ASGI app that runs ``handler`` the way Trellis runs websocket handlers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        await serve_websocket(websocket, handler, websocket)

    return app


class Item(BaseModel):
    name: str
    qty: int


# -- the handshake ---------------------------------------------------------------------------


def test_accept_with_subprotocol_and_headers() -> None:
    async def handler(ws: WebSocket) -> None:
        assert ws.client_subprotocols == ["json", "chat"]
        await ws.accept("chat", headers={"x-server": "trellis"})
        assert ws.accepted_subprotocol == "chat"
        await ws.send_text("hello")
        await ws.close()

    with websocket_connect(asgi(handler), "/ws", subprotocols=["json", "chat"]) as ws:
        assert ws.accepted_subprotocol == "chat"
        assert ws.extra_headers["x-server"] == "trellis"
        assert ws.receive_text() == "hello"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1000


def test_accept_without_subprotocol() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close()

    with websocket_connect(asgi(handler), "/ws", subprotocols=["chat"]) as ws:
        assert ws.accepted_subprotocol is None
        assert ws.receive()["type"] == "websocket.close"


def test_accepting_a_subprotocol_the_client_did_not_offer_is_refused() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept("graphql-ws")

    with (
        pytest.raises(ValueError, match="was not offered by the client"),
        websocket_connect(asgi(handler), "/ws", subprotocols=["chat"]),
    ):
        pass


def test_accept_twice_raises() -> None:
    errors: list[str] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.accept()
        except RuntimeError as exc:
            errors.append(str(exc))
        await ws.close()

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.receive()
    assert errors == ["websocket.accept() called on a connection already accepted"]


def test_send_before_accept_raises_a_clear_error() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.send_text("too early")

    with (
        pytest.raises(RuntimeError, match=r"call await websocket\.accept\(\) before sending"),
        websocket_connect(asgi(handler), "/ws"),
    ):
        pass


def test_receive_before_accept_raises_a_clear_error() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.receive_text()

    with (
        pytest.raises(RuntimeError, match="before receiving"),
        websocket_connect(asgi(handler), "/ws"),
    ):
        pass


def test_close_before_accept_denies_with_403() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.close(WebSocketClose.POLICY_VIOLATION, "no token")

    with pytest.raises(WebSocketDenied) as info, websocket_connect(asgi(handler), "/ws"):
        pass
    assert info.value.status == 403
    assert info.value.code == 1008
    assert info.value.reason == "no token"


def test_deny_sends_an_http_error_response() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.deny(401, "a token is needed", headers={"WWW-Authenticate": "Bearer"})
        assert ws.application_state is WebSocketState.DISCONNECTED

    with pytest.raises(WebSocketDenied) as info, websocket_connect(asgi(handler), "/ws"):
        pass
    denied = info.value
    assert denied.status == 401
    assert denied.code is None
    assert denied.headers["www-authenticate"] == "Bearer"
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["detail"] == "a token is needed"


@pytest.mark.anyio
async def test_deny_without_the_extension_closes_instead() -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "headers": [], "extensions": {}}
    ws = WebSocket(scope, receive, send)
    await ws.deny(401)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
    with pytest.raises(RuntimeError, match=r"before websocket\.accept"):
        await ws.deny(401)


# -- messages --------------------------------------------------------------------------------


def test_text_bytes_and_json_round_trip() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text((await ws.receive_text()).upper())
        await ws.send_bytes((await ws.receive_bytes())[::-1])
        data = await ws.receive_json()
        await ws.send_json({"got": data, "n": len(data)})
        await ws.send_json([1, 2], binary=True)
        await ws.close()

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_text("hello")
        assert ws.receive_text() == "HELLO"
        ws.send_bytes(b"\x00\x01\x02")
        assert ws.receive_bytes() == b"\x02\x01\x00"
        ws.send_json(["a", "é"])
        assert ws.receive_json() == {"got": ["a", "é"], "n": 2}
        message = ws.receive()
        assert message == {"type": "websocket.send", "bytes": b"[1,2]"}


def test_receive_json_accepts_binary_messages() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(await ws.receive_json())
        await ws.close()

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_json({"a": 1}, binary=True)
        assert ws.receive_json() == {"a": 1}


def test_wrong_frame_type_and_invalid_json_raise_data_errors() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        for receive in (ws.receive_text, ws.receive_bytes, ws.receive_json):
            try:
                await receive()
            except WebSocketDataError as exc:
                await ws.send_text(str(exc))
        await ws.close()

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_bytes(b"x")
        assert ws.receive_text() == "expected a text message, got a binary one"
        ws.send_text("x")
        assert ws.receive_text() == "expected a binary message, got a text one"
        ws.send_text("{nope")
        assert ws.receive_text().startswith("invalid JSON message:")


def test_receive_model_validates_typed_messages() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            try:
                item = await ws.receive_model(Item)
            except WebSocketDataError as exc:
                await ws.send_json({"errors": exc.errors})
            except WebSocketDisconnect:
                return
            else:
                await ws.send_json({"ok": item})

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_json({"name": "pen", "qty": "3"})
        assert ws.receive_json() == {"ok": {"name": "pen", "qty": 3}}
        ws.send_json({"qty": "many"})
        errors = ws.receive_json()["errors"]
        assert {(tuple(e["loc"]), e["type"]) for e in errors} == {
            (("name",), "missing"),
            (("qty",), "int_parsing"),
        }
        ws.send_text("not json")
        assert ws.receive_json()["errors"][0]["type"] == "json_invalid"


def test_receive_model_takes_any_annotation_and_adapters_are_cached() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        numbers = await ws.receive_model(list[int])
        await ws.send_json(sum(numbers))
        await ws.close()

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_text("[1, 2, 3]")
        assert ws.receive_json() == 6
    assert _adapter(list[int]) is _adapter(list[int])


def test_disconnect_raises_websocket_disconnect_with_the_code() -> None:
    seen: list[tuple[int, str]] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))
        # Receiving again keeps saying the same thing; sending is refused.
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_bytes()
        with pytest.raises(WebSocketDisconnect):
            await ws.send_text("anyone?")
        assert ws.client_state is WebSocketState.DISCONNECTED
        await ws.close()  # nothing to do: the client is gone

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.close(4001, "bye")
    assert seen == [(4001, "bye")]


def test_iterators_end_cleanly_on_disconnect() -> None:
    got: list[Any] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            got.append(text)
            if text == "switch":
                break
        async for data in ws.iter_bytes():
            got.append(data)
            if data == b"switch":
                break
        async for obj in ws.iter_json():
            got.append(obj)
            if obj == "switch":
                break
        got.extend([item async for item in ws.iter_model(Item)])
        got.append("done")

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_text("a")
        ws.send_text("switch")
        ws.send_bytes(b"b")
        ws.send_bytes(b"switch")
        ws.send_json({"c": 1})
        ws.send_json("switch")
        ws.send_json({"name": "n", "qty": 1})
    assert got == [
        "a",
        "switch",
        b"b",
        b"switch",
        {"c": 1},
        "switch",
        Item(name="n", qty=1),
        "done",
    ]


def test_the_app_returning_without_closing_drops_the_connection() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")

    with websocket_connect(asgi(handler), "/ws") as ws:
        assert ws.receive_text() == "bye"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == WebSocketClose.ABNORMAL
        assert ws.close_code == 1006


def test_close_is_idempotent_and_sending_afterwards_is_refused() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000, "done")
        await ws.close()
        with pytest.raises(RuntimeError, match="the websocket is closed"):
            await ws.send_text("late")
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_text()
        assert info.value.code == 4000
        assert (await ws.receive())["type"] == "websocket.disconnect"

    with websocket_connect(asgi(handler), "/ws") as ws:
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert (info.value.code, info.value.reason) == (4000, "done")
        assert ws.receive()["code"] == 4000  # stays closed


def test_long_close_reasons_are_cut_to_123_bytes() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(1000, "é" * 100)

    with websocket_connect(asgi(handler), "/ws") as ws:
        reason = ws.receive()["reason"]
    assert reason == "é" * 61
    assert len(reason.encode()) <= 123


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "payload", "too_big"),
    [
        (10, "x" * 10, False),
        (10, "x" * 11, True),
        (7, "é" * 4, True),  # 4 characters, 8 bytes
        (8, "é" * 4, False),
        (10, b"x" * 11, True),
        (None, "x" * (DEFAULT_MAX_MESSAGE_SIZE + 1), False),
    ],
)
def test_messages_over_the_size_limit_close_with_1009(
    limit: int | None, payload: str | bytes, too_big: bool
) -> None:
    seen: list[int] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive()
        except WebSocketDisconnect as exc:
            seen.append(exc.code)
            async for _ in ws.iter_text():  # ends at once: the connection is closed
                pass
            return
        await ws.send_text("ok")
        await ws.close()

    with websocket_connect(asgi(handler, max_message_size=limit), "/ws") as ws:
        if isinstance(payload, str):
            ws.send_text(payload)
        else:
            ws.send_bytes(payload)
        if too_big:
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_text()
            assert info.value.code == 1009
            assert info.value.reason.startswith("message too big")
            assert seen == [1009]
        else:
            assert ws.receive_text() == "ok"


def test_default_limit_is_one_mebibyte_or_the_app_setting() -> None:
    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    class Settings:
        max_websocket_message_size = 5

    class FakeApp:
        settings = Settings()

    scope: dict[str, Any] = {"type": "websocket", "path": "/", "headers": []}
    assert WebSocket(scope, receive, send).max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    scope["app"] = FakeApp()
    assert WebSocket(scope, receive, send).max_message_size == 5
    assert WebSocket(scope, receive, send, max_message_size=9).max_message_size == 9


# -- what the connection says ----------------------------------------------------------------


def test_request_api_headers_query_cookies_url_client_state() -> None:
    async def handler(ws: WebSocket) -> None:
        ws.state.user = "ann"
        await ws.accept()
        await ws.send_json(
            {
                "path": ws.path,
                "url": str(ws.url),
                "scheme": ws.scheme,
                "host": ws.host,
                "query": ws.query.getlist("tag"),
                "token": ws.query_params.get("token"),
                "cookie": ws.cookies.get("session"),
                "header": ws.headers.get("x-token"),
                "client": ws.client,
                "path_params": ws.path_params,
                "user": ws.state.user,
                "lifespan": ws.state.get("db"),
            }
        )
        await ws.close()

    app = asgi(handler)
    with websocket_connect(
        app,
        "/ws/lobby?tag=a&tag=b&token=t1",
        headers={"X-Token": "h1"},
        cookies={"session": "s1"},
        base_url="https://example.org",
        state={"db": "pool"},
    ) as ws:
        info = ws.receive_json()
    assert info == {
        "path": "/ws/lobby",
        "url": "wss://example.org/ws/lobby?tag=a&tag=b&token=t1",
        "scheme": "wss",
        "host": "example.org",
        "query": ["a", "b"],
        "token": "t1",
        "cookie": "s1",
        "header": "h1",
        "client": ["testclient", 50000],
        "path_params": {},
        "user": "ann",
        "lifespan": "pool",
    }


def test_path_params_and_scope_checks() -> None:
    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        pass

    scope = {
        "type": "websocket",
        "path": "/ws/lobby",
        "headers": [],
        "path_params": {"room": "lobby"},
    }
    ws = WebSocket(scope, receive, send)
    assert ws.path_params == {"room": "lobby"}
    assert ws.client is None
    assert ws.client_subprotocols == []
    assert str(ws.url) == "ws://localhost/ws/lobby"
    assert "CONNECTING" in repr(ws)
    with pytest.raises(ValueError, match="needs a 'websocket' scope"):
        WebSocket({"type": "http", "path": "/"}, receive, send)


def test_root_path_and_full_urls() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json([ws.path, ws.scope["root_path"], str(ws.url)])
        await ws.close()

    with websocket_connect(asgi(handler), "/ws", root_path="/api") as ws:
        assert ws.receive_json() == ["/api/ws", "/api", "ws://testserver/api/ws"]
    with websocket_connect(asgi(handler), "ws://other:8000/x") as ws:
        assert ws.receive_json() == ["/x", "", "ws://other:8000/x"]
    with pytest.raises(ValueError, match="start with '/'"):
        websocket_connect(asgi(handler), "ws")
    with pytest.raises(ValueError, match="ws:// or wss://"):
        websocket_connect(asgi(handler), "ftp://host/x")


# -- serve_websocket: what Trellis does around a handler --------------------------------------


def test_serve_closes_with_1000_when_the_handler_returns() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hi")

    with websocket_connect(served(handler), "/ws") as ws:
        assert ws.receive_text() == "hi"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == 1000


def test_serve_refuses_a_handler_that_returns_without_accepting() -> None:
    async def handler(ws: WebSocket) -> None:
        pass

    with pytest.raises(WebSocketDenied) as info, websocket_connect(served(handler), "/ws"):
        pass
    assert info.value.status == 403


def test_serve_turns_an_http_error_before_accept_into_that_status() -> None:
    async def handler(ws: WebSocket) -> None:
        if ws.query.get("token") != "secret":
            raise UnauthorizedError("a valid token is needed")
        await ws.accept()
        await ws.close()

    with pytest.raises(WebSocketDenied) as info, websocket_connect(served(handler), "/ws"):
        pass
    assert info.value.status == 401
    assert info.value.json()["detail"] == "a valid token is needed"
    with websocket_connect(served(handler), "/ws?token=secret") as ws:
        assert ws.receive()["code"] == 1000


@pytest.mark.parametrize(("status", "code"), [(403, 1008), (503, 1011)])
def test_serve_closes_on_an_http_error_after_accept(status: int, code: int) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        raise HTTPError(status, "nope")

    with websocket_connect(served(handler), "/ws") as ws:
        message = ws.receive()
    assert (message["code"], message["reason"]) == (code, "nope")


def test_serve_closes_with_1003_on_unhandled_bad_data() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_json()

    with websocket_connect(served(handler), "/ws") as ws:
        ws.send_text("{bad")
        message = ws.receive()
    assert message["code"] == 1003
    assert message["reason"].startswith("invalid JSON message")


def test_serve_logs_crashes_and_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        raise KeyError("boom")

    with (
        caplog.at_level(logging.ERROR, "trellis.error"),
        websocket_connect(served(handler), "/ws") as ws,
    ):
        message = ws.receive()
    assert (message["code"], message["reason"]) == (1011, "Internal Server Error")
    assert "unhandled error in websocket handler for /ws" in caplog.text
    assert "KeyError" in caplog.text


def test_serve_crash_before_accept_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(ws: WebSocket) -> None:
        raise KeyError("boom")

    with (
        caplog.at_level(logging.ERROR, "trellis.error"),
        pytest.raises(WebSocketDenied) as info,
        websocket_connect(served(handler), "/ws"),
    ):
        pass
    assert info.value.status == 500


def test_serve_ignores_a_client_that_went_away() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.receive_text()

    with websocket_connect(served(handler), "/ws") as ws:
        ws.send_text("x")
        ws.close(1001)


# -- the test client itself ------------------------------------------------------------------


def test_app_exceptions_surface_when_the_session_closes() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise LookupError("the app broke")

    with (
        pytest.raises(LookupError, match="the app broke"),
        websocket_connect(asgi(handler), "/ws") as ws,
    ):
        ws.send_text("go")


def test_app_exceptions_surface_on_receive() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        raise LookupError("the app broke")

    with websocket_connect(asgi(handler), "/ws") as ws, pytest.raises(LookupError):
        ws.receive_text()


def test_app_that_never_answers_times_out() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await receive()  # waits for the client's disconnect

    with (
        pytest.raises(TimeoutError, match="sent nothing"),
        websocket_connect(app, "/ws", timeout=0.2),
    ):
        pass


def test_app_that_ignores_the_disconnect_is_cancelled() -> None:
    import asyncio

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.sleep(30)

    session = websocket_connect(app, "/ws", timeout=0.2)
    session.__enter__()
    with pytest.raises(TimeoutError, match="did not return"):
        session.__exit__(None, None, None)


def test_protocol_mistakes_of_the_app_are_reported() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": b"not str"})

    with websocket_connect(app, "/ws") as ws, pytest.raises(TypeError, match="must be str"):
        ws.receive()


def test_sending_to_a_client_that_closed_raises_websocket_disconnect() -> None:
    import asyncio

    outcome: list[int] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        await asyncio.sleep(0.05)  # the client closes meanwhile; we have not read it yet
        try:
            await ws.send_text("late")
        except WebSocketDisconnect as exc:
            outcome.append(exc.code)

    with websocket_connect(asgi(handler), "/ws") as ws:
        ws.send_text("go")
    assert outcome == [1006]


def test_a_session_must_be_entered() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()

    session = websocket_connect(asgi(handler), "/ws")
    with pytest.raises(RuntimeError, match="with websocket_connect"):
        session.send_text("x")


def test_sessions_can_share_a_running_portal() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(await ws.receive_text())
        await ws.close()

    with start_blocking_portal() as portal:
        for n in range(3):
            with websocket_connect(asgi(handler), "/ws", portal=portal) as ws:
                ws.send_text(str(n))
                assert ws.receive_text() == str(n)


def test_app_sees_disconnect_after_denial_and_the_handshake_headers() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        assert (await receive())["type"] == "websocket.disconnect"

    with pytest.raises(WebSocketDenied), websocket_connect(app, "/ws", subprotocols=["a", "b"]):
        pass
    headers = dict(scopes[0]["headers"])
    assert headers[b"upgrade"] == b"websocket"
    assert headers[b"sec-websocket-protocol"] == b"a, b"
    assert headers[b"host"] == b"testserver"
    assert scopes[0]["subprotocols"] == ["a", "b"]


# -- a real server ---------------------------------------------------------------------------

SERVER_APP = """
    from trellis.websockets import WebSocket, serve_websocket

    async def handler(ws: WebSocket) -> None:
        if ws.query.get("token") != "t":
            await ws.deny(401, "token needed")
            return
        await ws.accept(ws.client_subprotocols[0] if ws.client_subprotocols else None)
        async for text in ws.iter_text():
            await ws.send_json({"echo": text, "path": ws.path})

    async def app(scope, receive, send):
        assert scope["type"] == "websocket"
        ws = WebSocket(scope, receive, send, max_message_size=64)
        await serve_websocket(ws, handler, ws)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "ws_echo_app.py").write_text(textwrap.dedent(SERVER_APP))
    port = _free_port()
    out = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "ws_echo_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
        ],
        cwd=tmp_path,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "uvicorn did not start: " + (tmp_path / "server.log").read_text()
                    ) from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        out.close()


@pytest.mark.server
def test_echo_over_a_real_server(server: str) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    with connect(f"{server}/chat?token=t", subprotocols=["v1"], open_timeout=10) as client:  # type: ignore[list-item]
        assert client.subprotocol == "v1"
        client.send("hello")
        assert client.recv(timeout=10) == '{"echo":"hello","path":"/chat"}'
        client.send("x" * 65)
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009

    with pytest.raises(InvalidStatus) as denied:
        connect(f"{server}/chat", open_timeout=10)
    assert denied.value.response.status_code == 401
    assert b"token needed" in denied.value.response.body
