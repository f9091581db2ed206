"""A WebSocket test client: talk to an ASGI app in-process, from synchronous test code.

The app runs on an event loop in a background thread (an anyio blocking portal: the one of a
``TestClient`` block, or one started for the session). The session speaks the ASGI websocket
protocol honestly: it refuses messages out of order, as a server would.

Example:
    ```py
    from trellis.testing.websocket import websocket_connect

    def test_echo() -> None:
        with websocket_connect(app, "/ws", subprotocols=["chat"]) as ws:
            assert ws.accepted_subprotocol == "chat"
            ws.send_text("hi")
            assert ws.receive_text() == "echo: hi"
    ```
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import os
import queue
from collections.abc import Iterable, Mapping, Sequence
from http.cookies import SimpleCookie
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from trellis.datastructures import Headers
from trellis.http import _json
from trellis.types import ASGIApp, Message
from trellis.websockets import WebSocketClose, WebSocketDataError, WebSocketDisconnect

__all__ = [
    "AsyncWebSocketTestSession",
    "WebSocketDenied",
    "WebSocketTestSession",
    "websocket_connect",
]

HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | None


class WebSocketDenied(Exception):
    """The app refused the connection instead of accepting it.

    Attributes:
        status: The HTTP status the client got: 403 when the app closed before accepting,
            else the status of the app's denial response (401, 403, 429...).
        code: The close code the app passed to ``close()`` (``None`` for a denial response).
        reason: The close reason the app gave, if any.
        headers: The denial response headers (empty when the app just closed).
        body: The denial response body (empty when the app just closed).
    """

    def __init__(
        self,
        status: int,
        *,
        code: int | None = None,
        reason: str = "",
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        detail = f"close code {code}" if code is not None else f"{len(body)} byte body"
        super().__init__(f"the app refused the websocket with {status} ({detail})")

    def json(self) -> Any:
        """The denial response body decoded as JSON (a problem document from ``deny``)."""
        return _json.loads(self.body)


class _Done:
    """Put on the queue from the app when the app returns or raises."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc


class _Protocol:
    """The ASGI websocket protocol as a server sees it: which messages the app may send now."""

    __slots__ = ("accepted", "app_closed", "client_closed", "denying", "scope")

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.scope = scope
        self.accepted = False
        self.app_closed = False
        self.client_closed = False
        self.denying = False

    def check(self, message: Message) -> None:
        """Refuse a message the app may not send now, as a server would; note what it does."""
        kind = message["type"]
        if not (self.accepted or self.app_closed or self.denying):
            if kind == "websocket.accept":
                subprotocol = message.get("subprotocol")
                offered = self.scope.get("subprotocols") or []
                if subprotocol is not None and subprotocol not in offered:
                    raise RuntimeError(
                        f"the app accepted subprotocol {subprotocol!r}, which the client did not"
                        f" offer ({offered!r})"
                    )
                self.accepted = True
            elif kind == "websocket.close":
                self.app_closed = True
            elif kind == "websocket.http.response.start":
                if "websocket.http.response" not in self.scope.get("extensions", {}):
                    raise RuntimeError("the server did not offer the denial response extension")
                self.denying = True
            else:
                raise RuntimeError(
                    "expected 'websocket.accept', 'websocket.close' or"
                    f" 'websocket.http.response.start' first, got {kind!r}"
                )
        elif self.denying:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"expected 'websocket.http.response.body', got {kind!r}")
        elif self.app_closed:
            raise RuntimeError(f"the app sent {kind!r} after 'websocket.close'")
        elif self.client_closed:
            # As uvicorn does (ClientDisconnected is an OSError): the peer is gone.
            raise ConnectionResetError(f"the client closed the websocket; cannot send {kind!r}")
        elif kind == "websocket.send":
            text, data = message.get("text"), message.get("bytes")
            if (text is None) == (data is None):
                raise RuntimeError("'websocket.send' needs exactly one of 'text' and 'bytes'")
            if text is not None and not isinstance(text, str):
                raise TypeError(f"'websocket.send' text must be str, not {type(text).__name__}")
            if data is not None and not isinstance(data, bytes | bytearray):
                raise TypeError(f"'websocket.send' bytes must be bytes, not {type(data).__name__}")
        elif kind == "websocket.close":
            self.app_closed = True
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an open websocket")


def _accept_headers(message: Message) -> Headers:
    return Headers(raw=[(bytes(k), bytes(v)) for k, v in message.get("headers") or []])


def _refused_by_close(message: Message) -> WebSocketDenied:
    return WebSocketDenied(
        403, code=int(message.get("code", 1000)), reason=message.get("reason") or ""
    )


def _refused_by_response(start: Message, body: bytes) -> WebSocketDenied:
    return WebSocketDenied(int(start["status"]), headers=_accept_headers(start), body=body)


def _dropped() -> Message:
    """What the client sees when the app returns without closing: the connection drops."""
    return {
        "type": "websocket.close",
        "code": WebSocketClose.ABNORMAL,
        "reason": "the app returned without closing the websocket",
    }


def _text_of(message: Message) -> str:
    text = message.get("text")
    if text is None:
        raise WebSocketDataError("expected a text message, got a binary one")
    return str(text)


def _bytes_of(message: Message) -> bytes:
    data = message.get("bytes")
    if data is None:
        raise WebSocketDataError("expected a binary message, got a text one")
    return bytes(data)


def _json_of(message: Message) -> Any:
    data = message.get("text")
    return _json.loads(data if data is not None else message["bytes"])


def _json_message(data: Any, binary: bool) -> Message:
    encoded = _json.dumps(data)
    if binary:
        return {"type": "websocket.receive", "bytes": encoded}
    return {"type": "websocket.receive", "text": encoded.decode("utf-8")}


class _AppSide(abc.ABC):
    """The server's side of one connection: runs the app, checks and passes on what it sends.

    A session sets ``app``, ``scope``, ``_to_app`` (what the client sends, on the app's loop)
    and ``_deliver`` (how the app's messages reach the test).
    """

    app: ASGIApp
    scope: dict[str, Any]
    _to_app: asyncio.Queue[Message] | None
    _protocol: _Protocol
    _disconnect: Message | None

    @abc.abstractmethod
    def _deliver(self, item: Message | _Done) -> None:
        """Pass a message of the app (or the end of its call) on to the test side."""

    async def _run(self) -> None:
        try:
            await self.app(self.scope, self._app_receive, self._app_send)
        except WebSocketDisconnect:
            self._deliver(_Done(None))
        except Exception as exc:
            self._deliver(_Done(exc))
        except BaseException:
            self._deliver(_Done(None))
            raise
        else:
            self._deliver(_Done(None))

    async def _app_receive(self) -> Message:
        if self._disconnect is not None:
            return dict(self._disconnect)
        assert self._to_app is not None
        message = await self._to_app.get()
        if message["type"] == "websocket.disconnect":
            self._disconnect = message
        return message

    async def _app_send(self, message: Message) -> None:
        self._protocol.check(message)
        self._deliver(message)


class WebSocketTestSession(_AppSide):
    """One websocket connection to an app; use it as a context manager.

    ``__enter__`` connects (and raises ``WebSocketDenied`` if the app refuses); ``__exit__``
    closes with 1000 when still open, waits for the app to return and re-raises what it
    raised. A ``WebSocketDisconnect`` escaping the app is not an error: it is how the app
    learns the client left.

    Args:
        app: The ASGI application.
        scope: The ASGI ``websocket`` scope (``websocket_connect`` builds it).
        portal: An anyio ``BlockingPortal`` running the app's loop; ``None`` starts one for the
            session.
        timeout: The longest, in seconds, any one wait for the app may take; then
            ``TimeoutError``.

    Attributes:
        accepted_subprotocol: The subprotocol the app accepted (``None`` for none).
        extra_headers: The headers the app added to its handshake response.
        close_code: The code the app closed with, once it did (else ``None``).
        close_reason: The reason the app closed with.
    """

    __test__ = False

    def __init__(
        self, app: ASGIApp, scope: dict[str, Any], *, portal: Any = None, timeout: float = 10.0
    ) -> None:
        self.app = app
        self.scope = scope
        self.timeout = timeout
        self.accepted_subprotocol: str | None = None
        self.extra_headers = Headers()
        self.close_code: int | None = None
        self.close_reason = ""
        self._portal: Any = portal
        self._portal_cm: Any = None
        self._to_app: asyncio.Queue[Message] | None = None
        self._from_app: queue.Queue[Message | _Done] = queue.Queue()
        self._future: Any = None
        self._app_exc: BaseException | None = None
        self._done = False
        self._protocol = _Protocol(scope)
        self._disconnect: Message | None = None

    # -- connecting --------------------------------------------------------------------------

    def __enter__(self) -> WebSocketTestSession:
        if self._future is not None:
            raise RuntimeError("this websocket session was already entered")
        if self._portal is None:
            from anyio.from_thread import start_blocking_portal

            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
        try:
            self._to_app = asyncio.Queue()
            self._future = self._portal.start_task_soon(self._run)
            self._put({"type": "websocket.connect"})
            self._handshake()
        except BaseException:
            self._protocol.client_closed = True
            with contextlib.suppress(BaseException):
                self._put({"type": "websocket.disconnect", "code": WebSocketClose.ABNORMAL})
            with contextlib.suppress(BaseException):
                self._wait_for_app()
            self._stop_portal()
            raise
        return self

    def _handshake(self) -> None:
        message = self._next()
        if message is None:
            self._raise_app_error()
            raise RuntimeError("the app returned without accepting or refusing the websocket")
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = _accept_headers(message)
            return
        if kind == "websocket.close":
            raise _refused_by_close(message)
        # websocket.http.response.start: the body follows.
        body = b""
        while True:
            part = self._next()
            if part is None:
                self._raise_app_error()
                break
            body += bytes(part.get("body", b""))
            if not part.get("more_body", False):
                break
        raise _refused_by_response(message, body)

    # -- the app side (runs on the portal's loop) -------------------------------------------

    def _deliver(self, item: Message | _Done) -> None:
        self._from_app.put(item)

    # -- the test side ------------------------------------------------------------------------

    def _put(self, message: Message) -> None:
        assert self._to_app is not None
        self._portal.call(self._to_app.put_nowait, message)

    def _next(self) -> Message | None:
        """The next message from the app, or ``None`` once the app has returned."""
        if self._done:
            return None
        try:
            item = self._from_app.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"the app sent nothing within {self.timeout} seconds") from None
        if isinstance(item, _Done):
            self._done = True
            self._app_exc = item.exc
            return None
        return item

    def _raise_app_error(self) -> None:
        exc, self._app_exc = self._app_exc, None
        if exc is not None:
            raise exc

    def _check_open(self) -> None:
        if self._future is None:
            raise RuntimeError(
                "the websocket is not connected: use `with websocket_connect(...) as ws:`"
            )
        if self._protocol.client_closed:
            raise RuntimeError("the websocket session is closed")

    def receive(self) -> Message:
        """Return the next raw ASGI message the app sent (``websocket.send`` or ``close``).

        When the app returns without closing, the connection drops: a ``websocket.close``
        with 1006 is returned.

        Raises:
            Exception: whatever the app raised.
            TimeoutError: the app sent nothing within ``timeout`` seconds.
        """
        if self.close_code is not None:
            return {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        message = self._next()
        if message is None:
            self._raise_app_error()
            message = _dropped()
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", WebSocketClose.NORMAL))
            self.close_reason = message.get("reason") or ""
        return message

    def _receive_data(self) -> Message:
        message = self.receive()
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(self.close_code or 1000, self.close_reason)
        return message

    def receive_text(self) -> str:
        """Return the next message, which must be text.

        Raises:
            WebSocketDisconnect: the app closed the connection (``code``, ``reason``).
            WebSocketDataError: the message is binary.
        """
        return _text_of(self._receive_data())

    def receive_bytes(self) -> bytes:
        """Return the next message, which must be binary.

        Raises:
            WebSocketDisconnect: the app closed the connection.
            WebSocketDataError: the message is text.
        """
        return _bytes_of(self._receive_data())

    def receive_json(self) -> Any:
        """Return the next message (text or binary) decoded as JSON.

        Raises:
            WebSocketDisconnect: the app closed the connection.
        """
        return _json_of(self._receive_data())

    def send(self, message: Message) -> None:
        """Send a raw ASGI message to the app (``websocket.receive`` or ``disconnect``)."""
        self._check_open()
        if message["type"] == "websocket.disconnect":
            self._protocol.client_closed = True
        self._put(message)

    def send_text(self, data: str) -> None:
        """Send a text message."""
        self.send({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        self.send({"type": "websocket.receive", "bytes": bytes(data)})

    def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send ``data`` as JSON, in a text message (a binary one with ``binary=True``)."""
        self.send(_json_message(data, binary))

    def close(self, code: int = WebSocketClose.NORMAL, reason: str = "") -> None:
        """Close the connection and wait for the app to return; re-raise what it raised.

        Raises:
            Exception: whatever the app raised.
            TimeoutError: the app did not return within ``timeout`` seconds (it was cancelled).
        """
        if self._future is None:
            return
        if not self._protocol.client_closed:
            self._protocol.client_closed = True
            self._put({"type": "websocket.disconnect", "code": int(code), "reason": reason})
        try:
            self._wait_for_app()
        finally:
            self._stop_portal()
        self._raise_app_error()

    def _wait_for_app(self) -> None:
        import concurrent.futures

        future = self._future
        try:
            future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the app did not return within {self.timeout} seconds of the client closing"
                " the websocket; it was cancelled"
            ) from None
        except concurrent.futures.CancelledError:
            pass
        # The outcome of the app, when the test did not read it.
        while not self._done:
            try:
                item = self._from_app.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Done):
                self._done = True
                self._app_exc = item.exc

    def _stop_portal(self) -> None:
        cm, self._portal_cm = self._portal_cm, None
        if cm is not None:
            self._portal = None
            cm.__exit__(None, None, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        # The test failed already: close, but do not hide its exception behind the app's.
        with contextlib.suppress(Exception):
            self.close()


class AsyncWebSocketTestSession(_AppSide):
    """One websocket connection to an app, from async test code: ``async with ... as ws:``.

    The app runs as a task on the test's own event loop (an ``AsyncTestClient``'s), so the
    test may await other things between messages (a database query, another connection).
    The same protocol checks and errors as ``WebSocketTestSession``; every method that waits
    is a coroutine.

    Args:
        app: The ASGI application.
        scope: The ASGI ``websocket`` scope (``websocket_connect`` builds it).
        timeout: The longest, in seconds, any one wait for the app may take; then
            ``TimeoutError``.

    Attributes:
        accepted_subprotocol: The subprotocol the app accepted (``None`` for none).
        extra_headers: The headers the app added to its handshake response.
        close_code: The code the app closed with, once it did (else ``None``).
        close_reason: The reason the app closed with.
    """

    __test__ = False

    def __init__(self, app: ASGIApp, scope: dict[str, Any], *, timeout: float = 10.0) -> None:
        self.app = app
        self.scope = scope
        self.timeout = timeout
        self.accepted_subprotocol: str | None = None
        self.extra_headers = Headers()
        self.close_code: int | None = None
        self.close_reason = ""
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()  # what the client sends
        self._to_app = self._inbox
        self._from_app: asyncio.Queue[Message | _Done] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._app_exc: BaseException | None = None
        self._done = False
        self._protocol = _Protocol(scope)
        self._disconnect: Message | None = None

    async def __aenter__(self) -> AsyncWebSocketTestSession:
        if self._task is not None:
            raise RuntimeError("this websocket session was already entered")
        self._task = asyncio.ensure_future(self._run())
        await self._inbox.put({"type": "websocket.connect"})
        try:
            await self._handshake()
        except BaseException:
            self._protocol.client_closed = True
            await self._inbox.put({"type": "websocket.disconnect", "code": WebSocketClose.ABNORMAL})
            with contextlib.suppress(BaseException):
                await self._wait_for_app()
            raise
        return self

    async def _handshake(self) -> None:
        message = await self._next()
        if message is None:
            self._raise_app_error()
            raise RuntimeError("the app returned without accepting or refusing the websocket")
        if message["type"] == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = _accept_headers(message)
            return
        if message["type"] == "websocket.close":
            raise _refused_by_close(message)
        body = b""
        while (part := await self._next()) is not None:
            body += bytes(part.get("body", b""))
            if not part.get("more_body", False):
                break
        else:
            self._raise_app_error()
        raise _refused_by_response(message, body)

    # -- the app side ---------------------------------------------------------------------------

    def _deliver(self, item: Message | _Done) -> None:
        self._from_app.put_nowait(item)

    # -- the test side --------------------------------------------------------------------------

    async def _next(self) -> Message | None:
        """The next message from the app, or ``None`` once the app has returned."""
        if self._done:
            return None
        try:
            item = await asyncio.wait_for(self._from_app.get(), self.timeout)
        except TimeoutError:
            raise TimeoutError(f"the app sent nothing within {self.timeout} seconds") from None
        if isinstance(item, _Done):
            self._done = True
            self._app_exc = item.exc
            return None
        return item

    def _raise_app_error(self) -> None:
        exc, self._app_exc = self._app_exc, None
        if exc is not None:
            raise exc

    async def receive(self) -> Message:
        """The next raw ASGI message the app sent (see ``WebSocketTestSession.receive``)."""
        if self.close_code is not None:
            return {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        message = await self._next()
        if message is None:
            self._raise_app_error()
            message = _dropped()
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code", WebSocketClose.NORMAL))
            self.close_reason = message.get("reason") or ""
        return message

    async def _receive_data(self) -> Message:
        message = await self.receive()
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(self.close_code or 1000, self.close_reason)
        return message

    async def receive_text(self) -> str:
        """The next message, which must be text (``WebSocketDisconnect`` once closed)."""
        return _text_of(await self._receive_data())

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary (``WebSocketDisconnect`` once closed)."""
        return _bytes_of(await self._receive_data())

    async def receive_json(self) -> Any:
        """The next message (text or binary) decoded as JSON."""
        return _json_of(await self._receive_data())

    async def send(self, message: Message) -> None:
        """Send a raw ASGI message to the app (``websocket.receive`` or ``disconnect``)."""
        if self._task is None:
            raise RuntimeError(
                "the websocket is not connected: use `async with client.websocket_connect(...)`"
            )
        if self._protocol.client_closed:
            raise RuntimeError("the websocket session is closed")
        if message["type"] == "websocket.disconnect":
            self._protocol.client_closed = True
        await self._inbox.put(message)

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self.send({"type": "websocket.receive", "bytes": bytes(data)})

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send ``data`` as JSON, in a text message (a binary one with ``binary=True``)."""
        await self.send(_json_message(data, binary))

    async def close(self, code: int = WebSocketClose.NORMAL, reason: str = "") -> None:
        """Close the connection and wait for the app to return; re-raise what it raised."""
        if self._task is None:
            return
        if not self._protocol.client_closed:
            self._protocol.client_closed = True
            await self._inbox.put({"type": "websocket.disconnect", "code": code, "reason": reason})
        await self._wait_for_app()
        self._raise_app_error()

    async def _wait_for_app(self) -> None:
        assert self._task is not None
        done, _ = await asyncio.wait([self._task], timeout=self.timeout)
        if not done:
            self._task.cancel()
            await asyncio.wait([self._task])
            raise TimeoutError(
                f"the app did not return within {self.timeout} seconds of the client closing"
                " the websocket; it was cancelled"
            )
        while not self._done and not self._from_app.empty():
            item = self._from_app.get_nowait()
            if isinstance(item, _Done):
                self._done = True
                self._app_exc = item.exc

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
            return
        # The test failed already: close, but do not hide its exception behind the app's.
        with contextlib.suppress(Exception):
            await self.close()


def _url(path: str, base_url: str) -> str:
    """The URL of ``path`` (a path with its query string, or a full ``ws://`` URL)."""
    if "://" in path:
        return path
    if not path.startswith("/"):
        raise ValueError(f"the path must start with '/', got {path!r}")
    return base_url.rstrip("/") + path


def _build_scope(
    url: str,
    *,
    subprotocols: Sequence[str] | None,
    headers: HeadersInit,
    cookies: Mapping[str, str] | None,
    root_path: str,
    client: tuple[str, int],
    state: Mapping[str, Any] | None,
) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"a websocket URL is ws:// or wss://, got {url!r}")
    host = parts.hostname or "testserver"
    port = parts.port or (443 if scheme == "wss" else 80)
    raw_path = (root_path + (parts.path or "/")).encode("utf-8")
    raw: list[tuple[bytes, bytes]] = [
        (b"host", parts.netloc.encode("latin-1")),
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", base64.b64encode(os.urandom(16))),
        (b"user-agent", b"trellis-testclient"),
    ]
    if subprotocols:
        raw.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
    if headers is not None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]
        names = {k for k, _ in extra}
        raw = [(k, v) for k, v in raw if k not in names] + extra
    if cookies:
        jar: SimpleCookie = SimpleCookie()
        for name, value in cookies.items():
            jar[name] = value
        header = "; ".join(morsel.OutputString() for morsel in jar.values())
        raw.append((b"cookie", header.encode("latin-1")))
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": client,
        "root_path": root_path,
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": parts.query.encode("latin-1"),
        "headers": raw,
        "subprotocols": list(subprotocols or ()),
        "state": dict(state or {}),
        "extensions": {"websocket.http.response": {}},
    }


def websocket_connect(
    app: ASGIApp,
    path: str,
    *,
    subprotocols: Sequence[str] | None = None,
    headers: HeadersInit = None,
    cookies: Mapping[str, str] | None = None,
    base_url: str = "ws://testserver",
    root_path: str = "",
    client: tuple[str, int] = ("testclient", 50000),
    state: Mapping[str, Any] | None = None,
    portal: Any = None,
    timeout: float = 10.0,
) -> WebSocketTestSession:
    """Prepare a websocket connection to ``app``; it connects in ``with ... as ws:``.

    Args:
        app: The ASGI application.
        path: The path, with a query string if any (``"/ws/lobby?token=t"``), or a full
            ``ws://``/``wss://`` URL.
        subprotocols: The subprotocols to offer, in order of preference.
        headers: Extra handshake headers (they replace the defaults of the same name).
        cookies: Cookies to send with the handshake.
        base_url: Scheme and host the connection claims; ``http``/``https`` become ``ws``/``wss``.
        root_path: The ASGI ``root_path`` (as if mounted under a prefix).
        client: The client ``(host, port)``.
        state: The lifespan state to copy into the scope.
        portal: A running anyio ``BlockingPortal`` (a ``TestClient``'s); ``None`` starts one for
            the session.
        timeout: The longest any one wait for the app may take, in seconds.

    Returns:
        The session; entering it connects.
    """
    scope = _build_scope(
        _url(path, base_url),
        subprotocols=subprotocols,
        headers=headers,
        cookies=cookies,
        root_path=root_path,
        client=client,
        state=state,
    )
    return WebSocketTestSession(app, scope, portal=portal, timeout=timeout)
