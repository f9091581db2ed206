"""Gzip response compression for clients that accept it."""

from __future__ import annotations

import zlib

from trellis.exceptions import ConfigurationError
from trellis.middleware._common import add_vary
from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["GZipMiddleware"]

# Statuses whose body is absent or must not change shape: informational, 204 No Content,
# 205 Reset Content, 206 Partial Content (a byte range of the unencoded body), 304 Not Modified.
_SKIP_STATUS = frozenset({204, 205, 206, 304})

# Media types sent as they are: server-sent events must reach the client event by event (a
# compressor holds bytes back), and the others are compressed formats already, so gzip would
# only burn CPU. SVG is text and is compressed.
_SKIP_TYPES = (
    b"text/event-stream",
    b"image/",
    b"video/",
    b"audio/",
    b"font/woff",
    b"application/zip",
    b"application/gzip",
    b"application/x-gzip",
    b"application/zstd",
    b"application/x-7z-compressed",
    b"application/x-rar-compressed",
)
_SVG = b"image/svg+xml"

# Distinct Accept-Encoding values remembered; browsers send a handful, so this bounds memory
# against clients that send a new value each time.
_CACHE_SIZE = 256

_GZIP_WBITS = 31  # zlib's wbits for a gzip header and trailer

_HOLD, _PASS, _STREAM = 0, 1, 2


class GZipMiddleware:
    """Compress response bodies with gzip when the client accepts it and it pays off.

    A response is compressed when the request's ``Accept-Encoding`` allows ``gzip`` (a
    ``q=0`` refuses it) and the response has no ``Content-Encoding`` of its own, a body of at
    least ``minimum_size`` bytes, no ``Cache-Control: no-transform``, a status that carries a
    full body (not 204, 205, 206 or 304) and a media type worth compressing (not
    ``text/event-stream``, and not images, audio, video, fonts or archives, which are compressed
    already; SVG is compressed). ``HEAD`` requests are left alone.

    A response sent in one body message is compressed in one go and gets the new
    ``Content-Length``; it is sent as it was if gzip would not make it smaller. A streamed
    response (``more_body=True``) is compressed as it goes, each chunk flushed so the client gets
    it without waiting for the next, and loses its ``Content-Length``. Compressed responses get
    ``Content-Encoding: gzip``, ``Vary: Accept-Encoding`` and a weak ``ETag`` (a strong one names
    the unencoded bytes).

    Args:
        app: The ASGI application to wrap.
        minimum_size: Bodies smaller than this many bytes are sent as they are.
        compresslevel: Gzip level from 1 (fastest) to 9 (smallest); 6 is a good balance.

    Raises:
        ConfigurationError: ``minimum_size`` is negative or ``compresslevel`` is not 1 to 9.
    """

    __slots__ = ("_accepts", "app", "compresslevel", "minimum_size")

    def __init__(self, app: ASGIApp, *, minimum_size: int = 500, compresslevel: int = 6) -> None:
        if minimum_size < 0:
            raise ConfigurationError(
                f"GZipMiddleware: minimum_size must be >= 0, got {minimum_size}"
            )
        if not 1 <= compresslevel <= 9:
            raise ConfigurationError(
                f"GZipMiddleware: compresslevel must be from 1 to 9, got {compresslevel}"
            )
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel
        self._accepts: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        accept: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"accept-encoding":
                accept = value if accept is None else accept + b"," + value
        if accept is None:
            await self.app(scope, receive, send)
            return
        # PERF: parsing Accept-Encoding costs more than the lookup; remember the verdict.
        ok = self._accepts.get(accept)
        if ok is None:
            ok = accepts_gzip(accept)
            if len(self._accepts) < _CACHE_SIZE:
                self._accepts[accept] = ok
        if not ok:
            await self.app(scope, receive, send)
            return
        sender = _GZipSender(send, self.minimum_size, self.compresslevel)
        await self.app(scope, receive, sender)
        if sender.state == _HOLD and sender.start is not None:
            await send(sender.start)  # the app ended without a body; do not swallow its start


class _GZipSender:
    """The ``send`` of one response: holds the start until the first body shows its size."""

    __slots__ = ("compressor", "level", "minimum_size", "send", "start", "state")

    def __init__(self, send: Send, minimum_size: int, level: int) -> None:
        self.send = send
        self.minimum_size = minimum_size
        self.level = level
        self.state = _HOLD
        self.start: Message | None = None
        self.compressor: zlib._Compress | None = None

    async def __call__(self, message: Message) -> None:
        if self.state == _PASS:
            await self.send(message)
            return
        kind = message["type"]
        if self.state == _STREAM:
            if kind != "http.response.body":
                await self.send(message)  # trailers and other extensions
                return
            await self._stream(message)
            return
        if kind == "http.response.start":
            if self._compressible(message):
                self.start = message  # wait for the body to decide
            else:
                self.state = _PASS
                await self.send(message)
            return
        start = self.start
        assert start is not None, "http.response.body sent before http.response.start"
        if kind != "http.response.body":
            # e.g. http.response.pathsend: the body is not ours to compress.
            self.state = _PASS
            await self.send(start)
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            self.state = _STREAM
            self.compressor = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
            start["headers"] = _encoded_headers(start, None)
            await self.send(start)
            await self._stream(message)
            return
        self.state = _PASS
        if len(body) >= self.minimum_size:
            compressed = zlib.compress(body, self.level, _GZIP_WBITS)
            if len(compressed) < len(body):
                start["headers"] = _encoded_headers(start, len(compressed))
                await self.send(start)
                await self.send({"type": "http.response.body", "body": compressed})
                return
        await self.send(start)
        await self.send(message)

    def _compressible(self, start: Message) -> bool:
        status: int = start["status"]
        if status < 200 or status in _SKIP_STATUS:
            return False
        for key, value in start.get("headers", ()):
            name = key.lower()
            if name == b"content-encoding":
                return False
            if name == b"content-type":
                media = value.lower()
                if media.startswith(_SKIP_TYPES) and not media.startswith(_SVG):
                    return False
            elif name == b"cache-control":
                if b"no-transform" in value.lower():
                    return False
            elif name == b"content-length":
                # Known to be small: decide now, without holding the start back.
                try:
                    if int(value) < self.minimum_size:
                        return False
                except ValueError:
                    pass
        return True

    async def _stream(self, message: Message) -> None:
        compressor = self.compressor
        assert compressor is not None
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            if not body:
                return  # nothing to flush; an empty sync flush would still cost bytes
            # Z_SYNC_FLUSH ends each chunk on a byte boundary, so the client can decode it now:
            # streamed responses keep their timing at a few bytes per chunk.
            data = compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
        else:
            self.state = _PASS
            data = compressor.compress(body) + compressor.flush()
            await self.send({"type": "http.response.body", "body": data})


def _encoded_headers(start: Message, length: int | None) -> list[tuple[bytes, bytes]]:
    """Headers of ``start`` rewritten for a gzip body of ``length`` bytes (``None``: streamed)."""
    # A new list: the application may reuse its header list for other responses.
    headers: list[tuple[bytes, bytes]] = []
    for key, value in start.get("headers", ()):
        name = key.lower()
        if name == b"content-length":
            continue
        if name == b"etag" and value.startswith(b'"'):
            # A strong ETag promises these exact bytes; the gzip body is other bytes.
            headers.append((key, b"W/" + value))
        else:
            headers.append((key, value))
    headers.append((b"content-encoding", b"gzip"))
    if length is not None:
        headers.append((b"content-length", str(length).encode("latin-1")))
    add_vary(headers, b"Accept-Encoding")
    return headers


def accepts_gzip(accept_encoding: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*`` with q above 0).

    Args:
        accept_encoding: The raw header value, e.g. ``b"gzip, deflate, br"``.

    Returns:
        ``True`` when a gzip body is acceptable.
    """
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(b","):
        coding, _, params = item.partition(b";")
        coding = coding.strip().lower()
        if coding not in (b"gzip", b"x-gzip", b"*"):
            continue
        q = 1.0
        for param in params.split(b";"):
            name, _, value = param.partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0  # a malformed weight: do not guess in favour of gzip
        if coding == b"*":
            star_q = q
        else:
            gzip_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0
