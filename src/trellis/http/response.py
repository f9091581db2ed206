"""Responses: plain, text, HTML, JSON, redirect and streaming.

A response is an ASGI callable; handlers return one, or a value Trellis turns into one (see
``trellis.http.coerce``). Headers are kept as the raw ASGI byte list so that sending costs no
conversion.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from trellis.datastructures import URL, Headers, MutableHeaders
from trellis.http import _json
from trellis.http.cookies import format_set_cookie
from trellis.types import Receive, Scope, Send

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "StreamingResponse",
]

log = logging.getLogger("trellis.error")

HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | None


def _encode_headers(headers: HeadersInit) -> list[tuple[bytes, bytes]]:
    if not headers:
        return []
    out = MutableHeaders()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        out.append(k, v)  # validates: no CR/LF/NUL
    return out.raw


class Response:
    r"""An HTTP response with a body known in full.

    Args:
        content: The body: ``bytes``, or ``str`` (encoded with ``charset``).
        status_code: The HTTP status.
        headers: Extra headers (a mapping or ``(name, value)`` pairs).
        media_type: The content type; ``charset`` is added for ``text/*`` types.

    Example:
        ```python
        from trellis import App, Response
        from trellis.testing import TestClient

        app = App()


        @app.get("/logo.png")
        async def logo() -> Response:
            return Response(b"\x89PNG...", media_type="image/png")


        with TestClient(app) as client:
            assert client.get("/logo.png").headers["content-type"] == "image/png"
        ```
    """

    media_type: ClassVar[str | None] = None
    charset: ClassVar[str] = "utf-8"

    __slots__ = ("_auto_secure", "background", "body", "raw_headers", "status_code")

    def __init__(
        self,
        content: bytes | str | None = None,
        status_code: int = 200,
        headers: HeadersInit = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = self.render(content)
        self.background: Any = None
        self._auto_secure: list[int] | None = None
        raw = _encode_headers(headers)
        self.raw_headers = raw
        mt = media_type or self.media_type
        names = {k for k, _ in raw} if raw else ()
        if mt is not None and b"content-type" not in names:
            if mt.startswith("text/") and "charset=" not in mt:
                mt = f"{mt}; charset={self.charset}"
            raw.append((b"content-type", mt.encode("latin-1")))
        if b"content-length" not in names and not (status_code < 200 or status_code in (204, 304)):
            raw.append((b"content-length", str(len(self.body)).encode()))

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into body bytes (subclasses change how)."""
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytearray | memoryview):
            return bytes(content)
        # bytes(5) would be five NUL bytes: refuse anything that is not text or bytes.
        raise TypeError(
            f"{type(self).__name__} content must be bytes or str, not {type(content).__name__};"
            " return JSONResponse(...) (or the value itself) for data"
        )

    @property
    def headers(self) -> MutableHeaders:
        """The response headers, writable (``response.headers["x-frame-options"] = "DENY"``)."""
        return MutableHeaders(raw=self.raw_headers)

    def set_cookie(
        self,
        key: str,
        value: str = "",
        *,
        max_age: int | None = None,
        expires: datetime | int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a ``Set-Cookie`` header.

        Defaults are the safe ones: ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and ``Secure``
        whenever the request came over HTTPS (``secure=None``; pass ``True`` or ``False`` to
        decide yourself).

        Raises:
            ValueError: the name or value holds characters a cookie cannot carry (``;``, ``,``,
                CR, LF, spaces ...): encode the value first.
        """
        header = format_set_cookie(
            key,
            value,
            max_age=max_age,
            expires=expires,
            path=path,
            domain=domain,
            secure=bool(secure),
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )
        self.raw_headers.append((b"set-cookie", header.encode("latin-1")))
        if secure is None and not header.endswith("Secure") and "; Secure" not in header:
            if self._auto_secure is None:
                self._auto_secure = []
            self._auto_secure.append(len(self.raw_headers) - 1)

    def delete_cookie(
        self,
        key: str,
        *,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: Literal["lax", "strict", "none"] | None = "lax",
    ) -> None:
        """Expire the cookie ``key`` in the browser (same ``path`` and ``domain`` as when set)."""
        self.set_cookie(
            key,
            "",
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    def _final_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        if self._auto_secure is None or not _is_secure(scope):
            return self.raw_headers
        raw = list(self.raw_headers)
        for i in self._auto_secure:
            raw[i] = (raw[i][0], raw[i][1] + b"; Secure")
        return raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response over ASGI."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self._final_headers(scope),
            }
        )
        await send({"type": "http.response.body", "body": self.body})
        if self.background is not None:
            await self.background()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status_code}>"


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type = "text/plain"
    __slots__ = ()


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type = "text/html"
    __slots__ = ()


class JSONResponse(Response):
    """A JSON response encoded with orjson.

    ``content`` may hold dicts, lists, pydantic models, dataclasses, datetimes, UUIDs, Decimals
    (encoded as strings, so no precision is lost), enums, sets and tuples.
    """

    media_type = "application/json"
    __slots__ = ()

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: HeadersInit = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type)

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as JSON."""
        return _json.dumps(content)


class RedirectResponse(Response):
    """A redirect to ``url``.

    Args:
        url: Where to go (a ``str`` or a ``URL``). Non-ASCII and unsafe characters are
            percent-encoded; a URL with CR, LF or NUL is refused with ``ValueError`` (no
            header injection).
        status_code: 302 by default (the browser follows with GET); 303 after a form POST,
            307/308 to repeat the same method.
        headers: Extra headers.
    """

    __slots__ = ()

    def __init__(self, url: str | URL, status_code: int = 302, headers: HeadersInit = None) -> None:
        url = str(url)
        if any(c in url for c in "\r\n\0"):
            raise ValueError(f"redirect target contains CR, LF or NUL, refused: {url!r}")
        super().__init__(b"", status_code, headers)
        self.raw_headers.append(
            (b"location", quote(url, safe=":/%#?=@[]!$&'()*+,;~").encode("latin-1"))
        )


def _is_secure(scope: Scope) -> bool:
    """Whether the client reached us over HTTPS, directly or through a trusted proxy."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    proxies = getattr(scope.get("app"), "_proxies", None)
    if proxies is None:
        return False
    scheme = proxies.scheme(scope, Headers(raw=scope.get("headers") or []))
    return scheme in ("https", "wss")


_END: Any = object()


def _chunk_bytes(chunk: object, charset: str) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode(charset)
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"StreamingResponse chunks must be bytes or str, got {type(chunk).__name__}")


def _next_locked(it: Iterator[bytes | str], lock: threading.Lock) -> Any:
    # StopIteration cannot cross a Future, so the end is signalled with a sentinel. The lock
    # lets close() wait for a next() still running in a worker thread.
    with lock:
        return next(it, _END)


def _close_locked(close: Callable[[], object], lock: threading.Lock) -> None:
    with lock:
        close()


def _log_close_error(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("closing a StreamingResponse iterator failed", exc_info=future.exception())


class StreamingResponse(Response):
    """A response whose body comes from an iterator, sent as it is produced.

    Args:
        content: An async iterable, or a sync iterable (iterated in the thread pool so it can
            block) of ``bytes`` or ``str`` chunks.
        status_code: The HTTP status.
        headers: Extra headers.
        media_type: The content type.

    The iterator stops (and its ``finally`` runs) when the client disconnects.
    """

    __slots__ = ("content", "executor")

    #: Longest wait, in seconds, for a sync iterator to be closed after the client left.
    close_timeout: ClassVar[float] = 1.0

    def __init__(
        self,
        content: AsyncIterable[bytes | str] | Iterable[bytes | str],
        status_code: int = 200,
        headers: HeadersInit = None,
        media_type: str | None = None,
    ) -> None:
        self.content = content
        self.executor: Executor | None = None
        super().__init__(None, status_code, headers, media_type)
        self.raw_headers[:] = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def _stream(self, scope: Scope, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self._final_headers(scope),
            }
        )
        content = self.content
        # HEAD: no body, but the iterator is still closed (it may hold a file or a cursor).
        head = scope.get("method") == "HEAD"
        if isinstance(content, AsyncIterable):
            await self._send_async(content, send, head)
        else:
            await self._send_sync(content, send, head)
        await send({"type": "http.response.body", "body": b""})

    async def _send_async(
        self, content: AsyncIterable[bytes | str], send: Send, head: bool
    ) -> None:
        charset = self.charset
        it = aiter(content)
        try:
            while not head:
                try:
                    chunk = await anext(it)
                except StopAsyncIteration:
                    break
                data = chunk if type(chunk) is bytes else _chunk_bytes(chunk, charset)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            # An interrupted iteration (a disconnect cancels us at `send`) does not close
            # the iterator: close it here, so its `finally` runs now rather than whenever
            # it is garbage collected.
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_sync(self, content: Iterable[bytes | str], send: Send, head: bool) -> None:
        charset = self.charset
        loop = asyncio.get_running_loop()
        it: Iterator[bytes | str] = iter(content)
        lock = threading.Lock()
        try:
            while not head:
                # A sync iterator may block (files, database cursors): never on the loop.
                item = await loop.run_in_executor(self.executor, _next_locked, it, lock)
                if item is _END:
                    break
                data = item if type(item) is bytes else _chunk_bytes(item, charset)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                # Closed in the pool too (its `finally` may block), after any next() still
                # running there. Waiting for that is bounded: a generator blocked on its next
                # item is closed when it returns, without holding up the end of the response.
                try:
                    closing = loop.run_in_executor(self.executor, _close_locked, close, lock)
                except RuntimeError:  # the pool is shut down: the app is stopping
                    pass
                else:
                    closing.add_done_callback(_log_close_error)
                    # asyncio.wait neither raises the close's error (logged) nor cancels it.
                    await asyncio.wait((closing,), timeout=self.close_timeout)

    async def _wait_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the chunks as they come; stop when the client goes away."""
        stream = asyncio.ensure_future(self._stream(scope, send))
        watch = asyncio.ensure_future(self._wait_disconnect(receive))
        try:
            await asyncio.wait((stream, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stream, watch):
                if not task.done():
                    task.cancel()
            await asyncio.gather(stream, watch, return_exceptions=True)
        if not stream.cancelled() and stream.exception() is not None:
            raise stream.exception()  # type: ignore[misc]
        if self.background is not None:
            await self.background()
