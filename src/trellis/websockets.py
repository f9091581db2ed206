"""WebSocket connections: accept, typed messages, close codes and size limits.

A ``WebSocket`` wraps an ASGI ``websocket`` scope with its ``receive`` and ``send``. It reads the
connection the way ``Request`` reads a request (headers, query, cookies, URL and client parsed
on first use) and adds the message API: ``accept``, ``receive_text/bytes/json/model``,
``send_text/bytes/json``, ``close`` and iterators that end when the client goes away.

Example:
    ```py
    async def app(scope, receive, send):
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo: {text}")
    ```
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from trellis.datastructures import _check_header
from trellis.http import _json
from trellis.http.connection import HTTPConnection
from trellis.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from trellis.http.response import Response

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "WebSocket",
    "WebSocketClose",
    "WebSocketDataError",
    "WebSocketDisconnect",
    "WebSocketState",
    "serve_websocket",
]

T = TypeVar("T")

#: Largest message ``receive`` accepts by default: 1 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

log = logging.getLogger("trellis.error")


class WebSocketClose(enum.IntEnum):
    """Close codes (RFC 6455, section 7.4.1) a server sends or a handler sees."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # reported when the client closed without a code; never sent
    ABNORMAL = 1006  # reported when the connection dropped without a close frame; never sent
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class WebSocketState(enum.Enum):
    """Where one side of the connection stands."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


class WebSocketDisconnect(Exception):
    """The connection is closed: the client went away, or the server closed it.

    Raised by the ``receive_*`` methods (and by ``send_*`` once the client is gone). The
    ``iter_*`` methods catch it and simply end.

    Args:
        code: The close code (``WebSocketClose``); 1005 when the client gave none.
        reason: The close reason the client (or the server) gave, possibly empty.
    """

    def __init__(self, code: int = WebSocketClose.NORMAL, reason: str = "") -> None:
        self.code = int(code)
        self.reason = reason
        super().__init__(self.code, reason)

    def __str__(self) -> str:
        text = f"websocket closed with code {self.code}"
        return f"{text}: {self.reason}" if self.reason else text


class WebSocketDataError(ValueError):
    """A message is not what the handler asked for: wrong frame type, bad JSON, invalid model.

    The connection stays open: the handler may answer with an error message and go on. Left
    unhandled, ``serve_websocket`` closes the connection with 1003 (unsupported data).

    Attributes:
        errors: For a message that failed model validation, every failing field as
            ``{"loc": [...], "msg": ..., "type": ...}`` (as for request bodies); else empty.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []


class _Unset:
    __slots__ = ()


_UNSET: Any = _Unset()
_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(model: Any) -> TypeAdapter[Any]:
    # PERF: building a TypeAdapter costs far more than validating; build one per type.
    try:
        return _ADAPTERS[model]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: build it each time
        from pydantic import TypeAdapter

        return TypeAdapter(model)
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(model)
    _ADAPTERS[model] = adapter
    return adapter


def _reason(reason: str) -> str:
    # A close frame holds at most 123 bytes of UTF-8 reason; cut on a character boundary.
    data = reason.encode("utf-8")
    if len(data) <= 123:
        return reason
    return data[:123].decode("utf-8", "ignore")


class WebSocket(HTTPConnection):
    """A WebSocket connection.

    Handlers get it by declaring a parameter annotated ``WebSocket``; a raw ASGI app builds
    one with ``WebSocket(scope, receive, send)``.

    The connection goes CONNECTING -> CONNECTED -> DISCONNECTED on each side:
    ``client_state`` follows what the client did, ``application_state`` what the app did.

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI receive callable.
        send: The ASGI send callable.
        max_message_size: Largest message accepted, in bytes (UTF-8 bytes for text); a bigger
            one closes the connection with 1009. ``None`` for no limit. By default the app's
            ``max_websocket_message_size`` setting when there is one, else 1 MiB.

    Attributes:
        scope: The ASGI scope.
        path_params: Values taken from the path, already converted.
        accepted_subprotocol: The subprotocol passed to ``accept`` (``None`` for none).
        client_state: The client's side of the connection (``WebSocketState``).
        application_state: The application's side of the connection.
    """

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_on_disconnect",
        "_receive",
        "_send",
        "accepted_subprotocol",
        "application_state",
        "client_state",
        "max_message_size",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        max_message_size: int | None = _UNSET,
    ) -> None:
        if scope["type"] != "websocket":
            raise ValueError(f"WebSocket needs a 'websocket' scope, got {scope['type']!r}")
        super().__init__(scope)
        self._receive = receive
        self._send = send
        if max_message_size is _UNSET:
            settings = getattr(scope.get("app"), "settings", None)
            limit = getattr(settings, "max_websocket_message_size", DEFAULT_MAX_MESSAGE_SIZE)
            max_message_size = limit if limit is None or isinstance(limit, int) else None
        self.max_message_size: int | None = max_message_size
        self.client_state = _CONNECTING
        self.application_state = _CONNECTING
        self.accepted_subprotocol: str | None = None
        self._close_code: int = WebSocketClose.NO_STATUS
        self._close_reason = ""
        self._on_disconnect: list[Callable[[WebSocket], None]] | None = None

    @property
    def client_subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols") or ())

    @property
    def is_connected(self) -> bool:
        """Whether the connection is accepted and neither side has closed it."""
        return self.application_state is _CONNECTED and self.client_state is _CONNECTED

    def __repr__(self) -> str:
        return (
            f"<WebSocket {self.scope.get('path')!r} client={self.client_state.name}"
            f" app={self.application_state.name}>"
        )

    # -- the handshake ---------------------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Accept the connection.

        Args:
            subprotocol: The subprotocol to speak; it must be one the client offered
                (``client_subprotocols``).
            headers: Extra headers for the handshake response.

        Raises:
            RuntimeError: the connection was already accepted or closed.
            ValueError: ``subprotocol`` is not one the client offered, or a header is invalid.
            WebSocketDisconnect: the client went away before the handshake finished.
        """
        if self.application_state is not _CONNECTING:
            what = "accepted" if self.application_state is _CONNECTED else "closed"
            raise RuntimeError(f"websocket.accept() called on a connection already {what}")
        if subprotocol is not None and subprotocol not in self.client_subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client (it offered"
                f" {self.client_subprotocols!r}); pick one of websocket.client_subprotocols"
            )
        raw: list[tuple[bytes, bytes]] = []
        if headers is not None:
            items = headers.items() if isinstance(headers, Mapping) else headers
            raw = [_check_header(k, v) for k, v in items]
        if self.client_state is _CONNECTING:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(self._close_code, self._close_reason)
            if message["type"] != "websocket.connect":
                raise RuntimeError(f"expected 'websocket.connect', got {message['type']!r}")
        await self.send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": raw})
        self.accepted_subprotocol = subprotocol

    async def deny(
        self,
        status: int = 403,
        detail: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse the connection with an HTTP error instead of accepting it.

        The client gets ``status`` with a problem+json body when the server supports the ASGI
        denial response extension (uvicorn does); otherwise the server answers 403.

        Args:
            status: The HTTP status (4xx or 5xx), for example 401 or 403.
            detail: A human-readable explanation for the client.
            headers: Extra response headers (``WWW-Authenticate``...).

        Raises:
            RuntimeError: the connection was already accepted or closed.
        """
        from trellis.exceptions import HTTPError
        from trellis.http.errors import error_response

        response = error_response(HTTPError(status, detail, headers), html_page=False)
        await self.send_denial_response(response)

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the connection with ``response`` (the ASGI denial response extension).

        Without the extension in the scope the connection is closed before accept instead:
        the server answers 403 and the response is dropped.

        Raises:
            RuntimeError: the connection was already accepted or closed.
        """
        if self.application_state is not _CONNECTING:
            raise RuntimeError("a denial response can only be sent before websocket.accept()")
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            await self.close(WebSocketClose.POLICY_VIOLATION)
            return

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "http.response.body"):
                message = {**message, "type": "websocket." + kind}
            await self.send(message)

        await response(self.scope, self._receive, send)

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> Message:
        """Return the next raw ASGI message (``websocket.connect``/``receive``/``disconnect``).

        Once the connection is closed, every call returns a ``websocket.disconnect`` message.

        Raises:
            WebSocketDisconnect: the message is larger than ``max_message_size``; the
                connection was closed with 1009 first.
        """
        if self.client_state is _DISCONNECTED or self.application_state is _DISCONNECTED:
            return {
                "type": "websocket.disconnect",
                "code": self._close_code,
                "reason": self._close_reason,
            }
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            limit = self.max_message_size
            if limit is not None and self._too_big(message, limit):
                reason = f"message too big (the limit is {limit} bytes)"
                await self.close(WebSocketClose.MESSAGE_TOO_BIG, reason)
                raise WebSocketDisconnect(WebSocketClose.MESSAGE_TOO_BIG, reason)
        elif kind == "websocket.connect":
            if self.client_state is not _CONNECTING:
                raise RuntimeError("the server sent 'websocket.connect' twice")
            self.client_state = _CONNECTED
        elif kind == "websocket.disconnect":
            self._close_code = int(message.get("code", WebSocketClose.NO_STATUS))
            self._close_reason = message.get("reason") or ""
            self.client_state = _DISCONNECTED
            self._disconnected()
        return message

    @staticmethod
    def _too_big(message: Message, limit: int) -> bool:
        data = message.get("bytes")
        if data is not None:
            return len(data) > limit
        text: str = message.get("text") or ""
        if len(text) > limit:
            return True
        # PERF: a character is at most 4 UTF-8 bytes; encode only when that could pass the limit.
        return len(text) * 4 > limit and len(text.encode("utf-8")) > limit

    async def _receive_data(self) -> Message:
        if self.application_state is _CONNECTING:
            raise RuntimeError("call await websocket.accept() before receiving messages")
        message = await self.receive()
        kind = message["type"]
        if kind == "websocket.receive":
            return message
        if kind == "websocket.disconnect":
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        raise RuntimeError(f"unexpected ASGI message {kind!r} on an open websocket")

    async def receive_text(self) -> str:
        """Wait for the next message and return it as text.

        Raises:
            WebSocketDisconnect: the connection closed.
            WebSocketDataError: the message is binary.
        """
        message = await self._receive_data()
        text = message.get("text")
        if text is None:
            raise WebSocketDataError("expected a text message, got a binary one")
        return str(text)

    async def receive_bytes(self) -> bytes:
        """Wait for the next message and return it as bytes.

        Raises:
            WebSocketDisconnect: the connection closed.
            WebSocketDataError: the message is text.
        """
        message = await self._receive_data()
        data = message.get("bytes")
        if data is None:
            raise WebSocketDataError("expected a binary message, got a text one")
        return bytes(data)

    async def _receive_raw(self) -> str | bytes:
        message = await self._receive_data()
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        return data if data is not None else ""

    async def receive_json(self) -> Any:
        """Wait for the next message (text or binary) and decode it as JSON.

        Raises:
            WebSocketDisconnect: the connection closed.
            WebSocketDataError: the message is not valid JSON (the connection stays open).
        """
        data = await self._receive_raw()
        try:
            return _json.loads(data)
        except ValueError as exc:
            raise WebSocketDataError(f"invalid JSON message: {exc}") from None

    async def receive_model(self, model: type[T]) -> T:
        """Wait for the next message and validate it as JSON into ``model``.

        ``model`` is anything pydantic validates: a ``BaseModel``, a dataclass, a
        ``TypedDict``, ``list[Item]``, a union of message types with a discriminator...

        Raises:
            WebSocketDisconnect: the connection closed.
            WebSocketDataError: the message is not valid JSON or does not validate; its
                ``errors`` list every failing field (the connection stays open).
        """
        from pydantic import ValidationError

        data = await self._receive_raw()
        try:
            return _adapter(model).validate_json(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False)
            ]
            raise WebSocketDataError(
                f"message does not validate as {getattr(model, '__name__', model)}:"
                f" {len(errors)} error(s)",
                errors,
            ) from None

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the connection closes; then simply stop."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the connection closes; then simply stop."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        """Yield JSON messages until the connection closes; then simply stop.

        Raises:
            WebSocketDataError: a message is not valid JSON.
        """
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    async def iter_model(self, model: type[T]) -> AsyncIterator[T]:
        """Yield messages validated into ``model`` until the connection closes.

        Raises:
            WebSocketDataError: a message does not validate.
        """
        try:
            while True:
                yield await self.receive_model(model)
        except WebSocketDisconnect:
            pass

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send a raw ASGI message, keeping the state machine honest.

        Raises:
            RuntimeError: the message does not fit the state (a message before ``accept``,
                anything after ``close``).
            WebSocketDisconnect: the client is gone.
        """
        kind = message["type"]
        state = self.application_state
        if state is _CONNECTING:
            if kind == "websocket.accept":
                await self._send_checked(message)
                self.application_state = _CONNECTED
                return
            if kind == "websocket.close":
                self.application_state = _DISCONNECTED
                self._close_code = int(message.get("code", WebSocketClose.NORMAL))
                self._close_reason = message.get("reason") or ""
                self._disconnected()
                await self._send(message)
                return
            if kind == "websocket.http.response.start":
                # The denial response: its body messages follow.
                self.application_state = _DISCONNECTED
                self._close_code = WebSocketClose.POLICY_VIOLATION
                self._disconnected()
                await self._send(message)
                return
            raise RuntimeError(
                f"call await websocket.accept() before sending messages (tried {kind!r})"
            )
        if state is _DISCONNECTED:
            if kind == "websocket.http.response.body":
                await self._send(message)
                return
            raise RuntimeError(f"the websocket is closed: cannot send {kind!r}")
        if self.client_state is _DISCONNECTED:
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        if kind == "websocket.send":
            await self._send_checked(message)
        elif kind == "websocket.close":
            self.application_state = _DISCONNECTED
            self._close_code = int(message.get("code", WebSocketClose.NORMAL))
            self._close_reason = message.get("reason") or ""
            self._disconnected()
            await self._send(message)
        elif kind == "websocket.accept":
            raise RuntimeError("websocket.accept() called on a connection already accepted")
        else:
            raise RuntimeError(f"cannot send {kind!r} on an open websocket")

    async def _send_checked(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError as exc:
            # ASGI servers raise an OSError (uvicorn: ClientDisconnected) once the peer is gone.
            self.client_state = _DISCONNECTED
            self._close_code = WebSocketClose.ABNORMAL
            self._disconnected()
            raise WebSocketDisconnect(WebSocketClose.ABNORMAL, "the client is gone") from exc

    async def send_text(self, data: str) -> None:
        """Send a text message.

        Raises:
            RuntimeError: the connection is not accepted yet, or already closed.
            WebSocketDisconnect: the client is gone.
        """
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message.

        Raises:
            RuntimeError: the connection is not accepted yet, or already closed.
            WebSocketDisconnect: the client is gone.
        """
        await self.send({"type": "websocket.send", "bytes": bytes(data)})

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send ``data`` encoded as JSON (orjson, as ``JSONResponse``), as a text message.

        Args:
            data: Anything a JSON response accepts: dicts, lists, pydantic models,
                dataclasses, datetimes...
            binary: Send a binary message (UTF-8 JSON bytes) instead of a text one.

        Raises:
            RuntimeError: the connection is not accepted yet, or already closed.
            WebSocketDisconnect: the client is gone.
        """
        encoded = _json.dumps(data)
        if binary:
            await self.send({"type": "websocket.send", "bytes": encoded})
        else:
            await self.send({"type": "websocket.send", "text": encoded.decode("utf-8")})

    async def close(self, code: int = WebSocketClose.NORMAL, reason: str = "") -> None:
        """Close the connection; before ``accept`` this refuses it (the server answers 403).

        Closing twice, or after the client went away, does nothing.

        Args:
            code: The close code (``WebSocketClose``).
            reason: A short reason for the client (cut to 123 UTF-8 bytes).
        """
        if self.application_state is _DISCONNECTED:
            return
        if self.client_state is _DISCONNECTED:
            self.application_state = _DISCONNECTED
            return
        await self.send({"type": "websocket.close", "code": int(code), "reason": _reason(reason)})

    # -- closing hooks (used by trellis.channels) --------------------------------------------

    def _add_disconnect_callback(self, callback: Callable[[WebSocket], None]) -> None:
        if self.client_state is _DISCONNECTED or self.application_state is _DISCONNECTED:
            callback(self)
            return
        if self._on_disconnect is None:
            self._on_disconnect = []
        self._on_disconnect.append(callback)

    def _remove_disconnect_callback(self, callback: Callable[[WebSocket], None]) -> None:
        if self._on_disconnect and callback in self._on_disconnect:
            self._on_disconnect.remove(callback)

    def _disconnected(self) -> None:
        callbacks, self._on_disconnect = self._on_disconnect, None
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception:  # a callback must not break the connection's own code
                log.exception("websocket disconnect callback %r failed", callback)


async def serve_websocket(
    websocket: WebSocket,
    handler: Callable[..., Awaitable[Any]],
    /,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Run ``handler(*args, **kwargs)`` for ``websocket`` and end the connection properly.

    What Trellis does around every websocket handler:

    - the handler returns: the connection is closed with 1000 if still open (refused with 403
      if never accepted);
    - ``WebSocketDisconnect`` escapes: nothing more to do (the client went away);
    - ``WebSocketDataError`` escapes: closed with 1003 (unsupported data);
    - ``HTTPError`` before ``accept`` (a failed authentication dependency): the client gets that
      HTTP status; after ``accept``: closed with 1008 (4xx) or 1011 (5xx);
    - any other exception: logged on ``trellis.error`` and closed with 1011 (500 before
      ``accept``); in debug mode the close reason names the exception.
    """
    from trellis.exceptions import HTTPError

    try:
        await handler(*args, **kwargs)
    except WebSocketDisconnect:
        pass
    except WebSocketDataError as exc:
        await _end(websocket, WebSocketClose.UNSUPPORTED_DATA, str(exc), 400)
    except HTTPError as exc:
        if websocket.application_state is _CONNECTING:
            from trellis.http.errors import error_response

            await _quietly(websocket.send_denial_response(error_response(exc, html_page=False)))
        else:
            code = WebSocketClose.POLICY_VIOLATION if exc.status < 500 else 1011
            await _quietly(websocket.close(code, exc.detail or exc.title))
    except Exception as exc:
        log.error(
            "unhandled error in websocket handler for %s",
            websocket.scope.get("path"),
            exc_info=exc,
        )
        debug = bool(getattr(websocket.scope.get("app"), "debug", False))
        reason = f"{type(exc).__name__}: {exc}" if debug else "Internal Server Error"
        await _end(websocket, WebSocketClose.INTERNAL_ERROR, reason, 500)
    else:
        await _quietly(websocket.close())


async def _end(websocket: WebSocket, code: int, reason: str, status: int) -> None:
    if websocket.application_state is _CONNECTING:
        await _quietly(websocket.deny(status, reason if status < 500 else None))
    else:
        await _quietly(websocket.close(code, reason))


async def _quietly(closing: Awaitable[None]) -> None:
    # The client may be gone already; ending the connection is best effort.
    try:
        await closing
    except (WebSocketDisconnect, OSError, RuntimeError):
        pass
