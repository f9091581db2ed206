"""Session middleware: load the session, save it and set its cookie when the response starts.

The application builds this layer itself when the ``sessions`` setting is on (the default),
fused with the security headers into one wrapper of ``send``; ``SessionMiddleware`` is the same
layer on its own, for an ASGI app that is not a Trellis ``App`` or for a part of one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from trellis.sessions import (
    CONFIG_KEY,
    LOAD_ERROR_KEY,
    SCOPE_KEY,
    Session,
    SessionBackend,
    SessionConfig,
)
from trellis.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["SessionMiddleware"]

log = logging.getLogger("trellis.error")

Header = tuple[bytes, bytes]

_VARY_COOKIE = (b"vary", b"Cookie")

# Responses a browser renders as a page, where framing, opener, referrer and content policies
# apply; on data (JSON, images, files) they would be bytes on the wire for nothing.
_DOCUMENT_TYPES = (
    b"text/html",
    b"application/xhtml+xml",
    b"image/svg+xml",
    b"text/xml",
    b"application/xml",
)


async def _drop(message: Message) -> None:
    """Swallow what the application still sends after its response was replaced."""


class _Layer:
    """Sessions and fixed response headers in one wrapper of ``send``.

    Per request it costs one closure: the session is opened only when the handler touches it
    (or, with a session store, preloaded when the request carries the cookie), and the headers
    are added to the response start.

    Args:
        app: The ASGI application to wrap.
        sessions: How sessions are kept; ``None`` for no sessions.
        headers: Headers added to every HTTP response that does not set them.
        https_headers: The same plus HTTPS-only ones (``Strict-Transport-Security``).
        document_headers: Headers added, on top, to documents only (HTML, XHTML, SVG, XML
            responses): the ones a browser applies to a page (framing, opener, referrer,
            content policy) and ignores on data.
        owner: The Trellis application, for proxy-aware schemes and error pages.
        expose_config: Put ``sessions`` in the scope (a standalone middleware must; the app's
            own layer need not, the app holds it).
    """

    __slots__ = ("app", "expose", "fixed", "has_https", "names", "owner", "sessions")

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: SessionConfig | None,
        headers: Sequence[Header] = (),
        https_headers: Sequence[Header] | None = None,
        document_headers: Sequence[Header] = (),
        owner: App | None = None,
        expose_config: bool = False,
    ) -> None:
        self.app = app
        self.sessions = sessions
        plain = tuple(headers)
        secure = tuple(https_headers) if https_headers is not None else plain
        document = tuple(document_headers)
        # PERF: the four header sets a response can get, indexed by (document, https).
        self.fixed: tuple[tuple[Header, ...], ...] = (
            plain,
            secure,
            (*plain, *document),
            (*secure, *document),
        )
        self.has_https = secure != plain
        self.names = frozenset(k for k, _ in (*secure, *document))
        self.owner = owner
        self.expose = expose_config

    def must_load(self, scope: Scope) -> bool:
        """Whether sessions live in a store and the request may carry the session cookie."""
        sessions = self.sessions
        return (
            sessions is not None and sessions.store is not None and sessions.may_carry_cookie(scope)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            send = self.wrap(scope, send)
            if self.must_load(scope):
                await self.load(scope)
        elif kind == "websocket" and self.sessions is not None:
            if self.expose:
                scope[CONFIG_KEY] = self.sessions
            if self.must_load(scope):
                await self.load(scope)
        await self.app(scope, receive, send)

    async def load(self, scope: Scope) -> None:
        """Preload the server-side session; the request goes on when the store fails.

        The store's error is kept in the scope and raised where the session is touched, so
        a request that needs its session fails (through the app's error handling: 503 for
        an outage the store's battery maps, else 500) and one that does not is served.
        """
        assert self.sessions is not None
        try:
            await self.sessions.preload(scope)
        except Exception as exc:
            scope[LOAD_ERROR_KEY] = exc
            log.warning(
                "the session could not be loaded (%s: %s); the request goes on without it",
                type(exc).__name__,
                exc,
            )

    def wrap(self, scope: Scope, send: Send) -> Send:
        """Return ``send`` wrapped: the session is saved and the headers added at the start."""
        if self.expose and self.sessions is not None:
            scope[CONFIG_KEY] = self.sessions
        layer = self

        # PERF: a plain function returning send's awaitable, not a coroutine of its own: a
        # body message costs one call, the response start a few header checks. Only a
        # request that used its session gets the coroutine that saves it.
        def send_with_defaults(message: Message) -> Awaitable[None]:
            if message["type"] != "http.response.start":
                return send(message)
            session: Session | None = scope.get(SCOPE_KEY)
            if session is not None and not session._saved and layer.sessions is not None:

                async def start_with_session() -> None:
                    nonlocal send
                    assert session is not None and layer.sessions is not None
                    try:
                        cookie = await layer.sessions.commit(session, scope)
                    except Exception as exc:
                        scope.pop(SCOPE_KEY, None)
                        original, send = send, _drop
                        await layer._fail(scope, _no_receive, original, exc)
                        return
                    if not session._readonly:
                        headers = _with_vary_cookie(message.get("headers") or ())
                        if cookie is not None:
                            headers.append((b"set-cookie", cookie))
                        message["headers"] = headers
                    await send(layer._add_fixed(scope, message))

                return start_with_session()
            headers = message.get("headers") or ()
            fixed = layer._fixed_for(scope, headers)
            if fixed:
                # A new list: a Response may send its own header list every time.
                message["headers"] = [*headers, *fixed]
            return send(message)

        return send_with_defaults

    def _add_fixed(self, scope: Scope, message: Message) -> Message:
        headers = message.get("headers") or ()
        fixed = self._fixed_for(scope, headers)
        if fixed:
            message["headers"] = [*headers, *fixed]
        return message

    def _fixed_for(self, scope: Scope, headers: Any) -> tuple[Header, ...]:
        """The fixed headers a response with ``headers`` gets (its own values win)."""
        document: bool | None = False
        clash = False
        names = self.names
        # Response header names are lower-case in ASGI; a mounted app that breaks the rule
        # only loses the "its own value wins" check, not a header.
        for key, value in headers:
            if key == b"content-type":
                # PERF: a response class sends the same few values; decided once each.
                document = _DOCUMENT_CACHE.get(value)
                if document is None:
                    document = _is_document(value)
            elif key in names:
                clash = True
        fixed = self.fixed[2 * bool(document) + (self.has_https and _is_https(scope))]
        if clash:
            present = {k for k, _ in headers}
            return tuple(h for h in fixed if h[0] not in present)
        return fixed

    async def _fail(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        from trellis.http.request import Request

        owner = self.owner if self.owner is not None else scope.get("app")
        error_response = getattr(owner, "_error_response", None)
        if error_response is not None:
            response = await error_response(Request(scope, receive), exc)
        else:
            from trellis.http.errors import server_error_response

            log.error("the session could not be saved", exc_info=exc)
            response = server_error_response(exc, html_page=False, request_id="-", debug=False)
        await response(scope, receive, self._headers_only(scope, send))

    def _headers_only(self, scope: Scope, send: Send) -> Send:
        if not any(self.fixed):
            return send

        async def send_error(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self._add_fixed(scope, message)
            await send(message)

        return send_error


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


_DOCUMENT_CACHE: dict[bytes, bool] = {}


def _is_document(content_type: bytes) -> bool:
    """Whether a response of ``content_type`` is a page (remembered for the next response)."""
    document = content_type.lower().startswith(_DOCUMENT_TYPES)
    if len(_DOCUMENT_CACHE) < 256:  # bounded: a charset or boundary may vary per response
        _DOCUMENT_CACHE[content_type] = document
    return document


def _with_vary_cookie(headers: Any) -> list[Header]:
    """``headers`` with ``Cookie`` added to ``Vary``: the answer depends on the session."""
    out = list(headers)
    for i, (key, value) in enumerate(out):
        if key.lower() == b"vary":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if b"cookie" not in tokens and b"*" not in tokens:
                out[i] = (key, value + b", Cookie" if value.strip() else b"Cookie")
            return out
    out.append(_VARY_COOKIE)
    return out


def _is_https(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    if getattr(scope.get("app"), "_proxies", None) is None:
        return False
    from trellis.http.connection import HTTPConnection

    return HTTPConnection(scope).scheme == "https"


class SessionMiddleware(_Layer):
    """Sessions for any ASGI application: ``HTTPConnection(scope).session`` works inside it.

    A Trellis ``App`` has sessions already (the ``sessions`` setting); use this to give them
    to another ASGI app, or to run one part of an app with other session settings.

    Args:
        app: The ASGI application to wrap.
        secret_key: Signs the cookie; at least 32 random characters in production.
        cookie_name: The cookie's name.
        max_age: Idle lifetime in seconds (two weeks by default).
        sliding: Renew the lifetime while the session is used.
        secure: ``Secure`` cookie: ``True``, ``False``, or ``None`` for HTTPS requests only.
        samesite: The cookie's ``SameSite``: ``"lax"``, ``"strict"`` or ``"none"``.
        domain: The cookie's ``Domain`` (``None``: this host only).
        store: A ``SessionBackend`` to keep the data on the server; the cookie then holds
            only a random id.

    Raises:
        ConfigurationError: A cookie setting is invalid, or ``store`` is not a session store.
    """

    __slots__ = ()

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        cookie_name: str = "session",
        max_age: int = 14 * 24 * 3600,
        sliding: bool = True,
        secure: bool | None = None,
        samesite: Literal["lax", "strict", "none"] = "lax",
        domain: str | None = None,
        store: SessionBackend | None = None,
    ) -> None:
        config = SessionConfig(
            secret_key,
            cookie_name=cookie_name,
            max_age=max_age,
            sliding=sliding,
            secure=secure,
            samesite=samesite,
            domain=domain,
            store=store,
        )
        super().__init__(app, sessions=config, expose_config=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (a session opened by an outer layer is replaced)."""
        if scope["type"] in ("http", "websocket"):
            scope.pop(SCOPE_KEY, None)
        await super().__call__(scope, receive, send)
