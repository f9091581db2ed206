"""ETags for any response, and ``304 Not Modified`` for a client that has it already."""

from __future__ import annotations

import hashlib
import re

from trellis.exceptions import ConfigurationError
from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ETagMiddleware", "etag_matches", "make_etag"]

# An entity tag, weak or strong, in an If-None-Match list (RFC 9110 §8.8.3).
_ETAG_RE = re.compile(rb'(?:W/)?"[^"]*"')

# Headers that describe a body; a 304 has none (RFC 9110 §15.4.5). Cache-Control, Vary,
# ETag, Expires, Date, Content-Location and the others stay.
_BODY_HEADERS = frozenset(
    {
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"content-language",
        b"content-range",
        b"content-disposition",
        b"transfer-encoding",
    }
)

_HOLD, _PASS, _DONE = 0, 1, 2


def make_etag(body: bytes, *, weak: bool = False) -> bytes:
    """A strong (or weak) entity tag naming ``body``: 128 bits of its BLAKE2b hash, quoted.

    Example:
        >>> make_etag(b"hello")
        b'"46fb7408d4f285228f4af516ea25851b"'
        >>> make_etag(b"hello", weak=True)
        b'W/"46fb7408d4f285228f4af516ea25851b"'
    """
    tag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
    return b"W/" + tag if weak else tag


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Whether an ``If-None-Match`` value names ``etag``, by weak comparison (RFC 9110 §13.1.2).

    ``*`` matches any tag; a list matches when one of its tags has the same opaque value,
    ``W/`` or not.

    Example:
        >>> etag_matches(b'W/"a", "b"', b'"a"')
        True
        >>> etag_matches(b'"b"', b'"a"')
        False
    """
    if if_none_match.strip() == b"*":
        return True
    own = etag.removeprefix(b"W/")
    return any(tag.removeprefix(b"W/") == own for tag in _ETAG_RE.findall(if_none_match))


class ETagMiddleware:
    """Give ``200`` answers to ``GET`` an ``ETag``, and answer ``304`` when the client has it.

    A response to ``GET`` with status 200 and no ``ETag`` of its own is held until its body
    is complete, then gets ``ETag: "<hash of the body>"``; a client that sends that tag back
    in ``If-None-Match`` gets ``304 Not Modified`` without the body (its ``Cache-Control``,
    ``Vary``, ``ETag``, ``Set-Cookie`` ... kept). A response that brings its own ``ETag``
    (a handler, ``FileResponse``, ``@cached``) is compared as it is, without holding it.

    Left alone: other methods and statuses, ``Cache-Control: no-store``, bodies under
    ``min_size`` or over ``max_size`` bytes, and streamed bodies (sent in several messages:
    ``StreamingResponse``, server-sent events, large files), which go on as they come and
    are never held. ``HEAD`` answers have no body to hash: they keep an ``ETag`` the
    response brought (``@cached`` adds one), and get their 304.

    Put it inside ``GZipMiddleware`` (add it first): the tag then names the uncompressed
    body, and gzip makes it weak.

    Args:
        app: The ASGI application to wrap.
        weak: Send weak tags (``W/"..."``): for bodies that may differ in bytes but not in
            meaning.
        min_size: Bodies smaller than this get no tag (the header would cost more than the
            body).
        max_size: The largest body hashed (hashing costs about 1 ms per MB).

    Raises:
        ConfigurationError: ``min_size`` is negative or ``max_size`` smaller than it.
    """

    __slots__ = ("app", "max_size", "min_size", "weak")

    def __init__(
        self,
        app: ASGIApp,
        *,
        weak: bool = False,
        min_size: int = 0,
        max_size: int = 1024 * 1024,
    ) -> None:
        if min_size < 0:
            raise ConfigurationError(f"ETagMiddleware: min_size must be >= 0, got {min_size}")
        if max_size < min_size:
            raise ConfigurationError(
                f"ETagMiddleware: max_size ({max_size}) must be at least min_size ({min_size})"
            )
        self.app = app
        self.weak = weak
        self.min_size = min_size
        self.max_size = max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"if-none-match":
                if_none_match = value if if_none_match is None else if_none_match + b"," + value
        sender = _ETagSender(self, send, if_none_match, scope["method"] == "HEAD")
        await self.app(scope, receive, sender)
        if sender.state == _HOLD and sender.start is not None:
            await send(sender.start)  # the app ended without a body; do not swallow its start


class _ETagSender:
    """The ``send`` of one response: holds the start until the body shows what it is."""

    __slots__ = ("head", "if_none_match", "options", "send", "start", "state")

    def __init__(
        self, options: ETagMiddleware, send: Send, if_none_match: bytes | None, head: bool
    ) -> None:
        self.options = options
        self.send = send
        self.if_none_match = if_none_match
        self.head = head
        self.state = _HOLD
        self.start: Message | None = None

    async def __call__(self, message: Message) -> None:
        state = self.state
        if state == _PASS:
            await self.send(message)
            return
        if state == _DONE:
            return  # the body of an answer replaced by a 304
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(message)
            return
        start = self.start
        assert start is not None, "http.response.body sent before http.response.start"
        self.state = _PASS
        body: bytes = message.get("body", b"")
        if (
            kind != "http.response.body"  # http.response.pathsend: not ours to read
            or message.get("more_body", False)  # a stream: sent as it comes
            or not self.options.min_size <= len(body) <= self.options.max_size
        ):
            await self.send(start)
            await self.send(message)
            return
        etag = make_etag(body, weak=self.options.weak)
        # A new list: the application may send the same header list with other responses.
        start["headers"] = [*start.get("headers", ()), (b"etag", etag)]
        if self.if_none_match is not None and etag_matches(self.if_none_match, etag):
            await self._not_modified(start)
            return
        await self.send(start)
        await self.send(message)

    async def _start(self, start: Message) -> None:
        if start["status"] != 200:
            await self._pass(start)
            return
        etag: bytes | None = None
        hashable = not self.head  # a HEAD answer has no body to hash
        for key, value in start.get("headers", ()):
            name = key.lower()
            if name == b"etag":
                etag = value
            elif name == b"cache-control" and b"no-store" in value.lower():
                await self._pass(start)
                return
            elif name == b"content-length" and hashable:
                # Known now to be too small or too large: decide without holding anything.
                size = int(value) if value.isdigit() else -1
                if size >= 0 and not self.options.min_size <= size <= self.options.max_size:
                    hashable = False
        if etag is not None:
            # The response names itself: compare now, hold nothing.
            if self.if_none_match is not None and etag_matches(self.if_none_match, etag):
                await self._not_modified(start)
            else:
                await self._pass(start)
        elif hashable:
            self.start = start  # until the body comes
        else:
            await self._pass(start)

    async def _pass(self, start: Message) -> None:
        self.state = _PASS
        await self.send(start)

    async def _not_modified(self, start: Message) -> None:
        self.state = _DONE
        headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() not in _BODY_HEADERS]
        await self.send({"type": "http.response.start", "status": 304, "headers": headers})
        await self.send({"type": "http.response.body", "body": b""})
