"""Cross-Origin Resource Sharing (CORS): answer preflights and label cross-origin responses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from trellis.exceptions import ConfigurationError
from trellis.middleware._common import add_vary, send_text
from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSMiddleware"]

# Request headers a browser may send cross-origin without asking first; always allowed.
_SAFELISTED_HEADERS = frozenset(
    {b"accept", b"accept-language", b"content-language", b"content-type"}
)

_ALLOW_ORIGIN = b"access-control-allow-origin"
_ALLOW_CREDENTIALS = b"access-control-allow-credentials"
_ALLOW_METHODS = b"access-control-allow-methods"
_ALLOW_HEADERS = b"access-control-allow-headers"
_EXPOSE_HEADERS = b"access-control-expose-headers"
_MAX_AGE = b"access-control-max-age"

# Headers this middleware owns on a response: any the application set are replaced, because
# two Access-Control-Allow-Origin values make the browser refuse the response.
_OWNED = frozenset({_ALLOW_ORIGIN, _ALLOW_CREDENTIALS, _EXPOSE_HEADERS})

_ORIGIN_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")


class CORSMiddleware:
    """Let browsers on other origins call this application, within the limits given.

    A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is answered
    here, without reaching the application: 200 with the allowed methods, headers and max age, or
    400 naming what was refused. Other requests with an allowed ``Origin`` get
    ``Access-Control-Allow-Origin`` (and the credentials and expose headers) on their response;
    requests with a disallowed origin pass through without them, so the browser blocks the read.

    The origin is echoed (with ``Vary: Origin``) unless every origin is allowed without
    credentials, where ``*`` is sent. With ``allow_credentials=True`` and ``"*"`` the origin is
    echoed too, since browsers refuse ``*`` on credentialed requests; the opaque origin ``"null"``
    is then only allowed when listed explicitly. When the answer depends on the origin, every HTTP
    response carries ``Vary: Origin`` (even for requests without ``Origin``) so that shared caches
    never serve one origin's response to another. Websockets are not covered by CORS and pass
    through: check ``Origin`` in the websocket handler.

    Args:
        app: The ASGI application to wrap.
        allow_origins: Origins allowed, as ``scheme://host[:port]``, or ``"*"`` for any.
        allow_origin_regex: A regular expression; origins matching it in full are allowed too.
        allow_methods: Methods allowed on cross-origin requests, or ``"*"`` for any.
        allow_headers: Request headers allowed, or ``"*"`` for any. The CORS-safelisted
            ``Accept``, ``Accept-Language``, ``Content-Language`` and ``Content-Type`` are always
            allowed.
        allow_credentials: Allow cookies and HTTP authentication on cross-origin requests.
        expose_headers: Response headers that the browser lets scripts read.
        max_age: Seconds a browser may cache a preflight answer.

    Raises:
        ConfigurationError: An origin is not of the form ``scheme://host[:port]``, a list was
            given as a single string, or ``max_age`` is negative.
    """

    __slots__ = (
        "_allow_all_headers",
        "_allow_all_methods",
        "_allow_any_origin",
        "_allow_null",
        "_headers",
        "_methods",
        "_origin_regex",
        "_origins",
        "_preflight_headers",
        "_simple_headers",
        "_star",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Iterable[str] = (),
        allow_origin_regex: str | None = None,
        allow_methods: Iterable[str] = ("GET", "HEAD", "POST"),
        allow_headers: Iterable[str] = (),
        allow_credentials: bool = False,
        expose_headers: Iterable[str] = (),
        max_age: int = 600,
    ) -> None:
        self.app = app
        origins = [o.strip().lower() for o in _as_list("allow_origins", allow_origins)]
        for origin in origins:
            if origin not in ("*", "null") and not _ORIGIN_RE.fullmatch(origin):
                raise ConfigurationError(
                    f"CORSMiddleware: allow_origins entry {origin!r} is not an origin; write "
                    "'scheme://host[:port]' with no path or trailing slash, e.g. "
                    "'https://example.com', or '*' for any origin"
                )
        if max_age < 0:
            raise ConfigurationError(f"CORSMiddleware: max_age must be >= 0, got {max_age}")
        methods = [m.strip().upper() for m in _as_list("allow_methods", allow_methods)]
        headers = [h.strip().lower() for h in _as_list("allow_headers", allow_headers)]
        expose = [h.strip() for h in _as_list("expose_headers", expose_headers)]

        self._allow_any_origin = "*" in origins
        self._origins = frozenset(o.encode("latin-1") for o in origins if o != "*")
        self._origin_regex = (
            re.compile(allow_origin_regex).fullmatch if allow_origin_regex else None
        )
        # "*" is only a valid answer without credentials; otherwise the origin is echoed.
        self._star = self._allow_any_origin and not allow_credentials
        # A credentialed "*" must not hand sandboxed iframes and file:// pages ("null") the
        # user's cookies; "null" has to be listed by name for that.
        self._allow_null = b"null" in self._origins or self._star
        self._allow_all_methods = "*" in methods
        self._methods = frozenset(m.encode("latin-1") for m in methods if m != "*")
        self._allow_all_headers = "*" in headers
        self._headers = _SAFELISTED_HEADERS | {h.encode("latin-1") for h in headers if h != "*"}

        # PERF: every header value is encoded once here; a request only picks lists.
        simple: list[tuple[bytes, bytes]] = []
        preflight: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            simple.append((_ALLOW_CREDENTIALS, b"true"))
            preflight.append((_ALLOW_CREDENTIALS, b"true"))
        if expose:
            simple.append((_EXPOSE_HEADERS, ", ".join(expose).encode("latin-1")))
        if not self._allow_all_methods:
            preflight.append((_ALLOW_METHODS, ", ".join(sorted(set(methods))).encode("latin-1")))
        if not self._allow_all_headers:
            preflight.append((_ALLOW_HEADERS, b", ".join(sorted(self._headers))))
        preflight.append((_MAX_AGE, str(max_age).encode("latin-1")))
        self._simple_headers = tuple(simple)
        self._preflight_headers = tuple(preflight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
                break
        if origin is None:
            if self._star:
                await self.app(scope, receive, send)
            else:
                await self.app(scope, receive, self._vary_only(send))
            return
        if scope["method"] == "OPTIONS":
            request_method: bytes | None = None
            request_headers: list[bytes] = []
            for key, value in scope["headers"]:
                if key == b"access-control-request-method":
                    request_method = value
                elif key == b"access-control-request-headers":
                    request_headers.append(value)
            if request_method is not None:
                await self._preflight(origin, request_method, request_headers, send)
                return
        if self._origin_allowed(origin):
            await self.app(scope, receive, self._labelled(send, origin))
        else:
            # Only reachable when the answer depends on the origin (with "*" all are allowed).
            await self.app(scope, receive, self._vary_only(send))

    def _origin_allowed(self, origin: bytes) -> bool:
        if origin == b"null":
            return self._allow_null
        if self._allow_any_origin or origin.lower() in self._origins:
            return True
        regex = self._origin_regex
        return regex is not None and regex(origin.decode("latin-1")) is not None

    async def _preflight(
        self, origin: bytes, method: bytes, request_headers: list[bytes], send: Send
    ) -> None:
        requested = [
            name
            for value in request_headers
            for part in value.split(b",")
            if (name := part.strip().lower())
        ]
        refused = []
        if not self._origin_allowed(origin):
            refused.append("origin")
        if not self._allow_all_methods and method not in self._methods:
            refused.append("method")
        if not self._allow_all_headers and any(h not in self._headers for h in requested):
            refused.append("headers")
        if refused:
            await send_text(send, 400, f"Disallowed CORS {', '.join(refused)}".encode("latin-1"))
            return

        headers = [(_ALLOW_ORIGIN, b"*" if self._star else origin)]
        if not self._star:
            headers.append((b"vary", b"Origin"))
        headers.extend(self._preflight_headers)
        # "*" in Allow-Methods/Allow-Headers is literal on credentialed requests, so "allow
        # anything" is answered by naming exactly what was asked for.
        if self._allow_all_methods:
            headers.append((_ALLOW_METHODS, method))
        if self._allow_all_headers and requested:
            headers.append((_ALLOW_HEADERS, b", ".join(requested)))
        await send_text(send, 200, b"OK", headers)

    def _labelled(self, send: Send, origin: bytes) -> Send:
        star = self._star
        extra = self._simple_headers

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A new list: the application may reuse its header list for other responses.
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _OWNED]
                headers.append((_ALLOW_ORIGIN, b"*" if star else origin))
                headers.extend(extra)
                if not star:
                    add_vary(headers, b"Origin")
                message["headers"] = headers
            await send(message)

        return send_with_cors

    @staticmethod
    def _vary_only(send: Send) -> Send:
        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                add_vary(headers, b"Origin")
                message["headers"] = headers
            await send(message)

        return send_with_vary


def _as_list(name: str, value: Iterable[str]) -> list[str]:
    # A bare string is iterable too; "https://a.com" would become a list of characters.
    if isinstance(value, str):
        raise ConfigurationError(
            f"CORSMiddleware: {name} takes a list of strings, got the string {value!r}; "
            f"write {name}=[{value!r}]"
        )
    return list(value)
