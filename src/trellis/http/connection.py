"""The read-only view of a connection that ``Request`` and ``WebSocket`` share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.datastructures import URL, Headers, QueryParams, State
from trellis.http.cookies import parse_cookie_header
from trellis.sessions import SCOPE_KEY, open_session
from trellis.types import Scope

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.sessions import Session

__all__ = ["HTTPConnection"]


class HTTPConnection:
    """The read-only view of an ASGI ``http`` or ``websocket`` connection.

    ``Request`` and ``WebSocket`` are both connections: code that only reads headers, query,
    cookies, the URL or the client (an authentication dependency, say) can take either.
    Everything is parsed on first use and kept.

    Args:
        scope: The ASGI scope.
    """

    __slots__ = ("_cookies", "_headers", "_query", "_state", "_url", "path_params", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.path_params: dict[str, Any] = scope.get("path_params") or {}
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._url: URL | None = None
        self._state: State | None = None

    @property
    def path(self) -> str:
        """The decoded path, as the server passed it (mount prefix included)."""
        return str(self.scope["path"])

    @property
    def app(self) -> App:
        """The Trellis application serving this connection."""
        return self.scope["app"]  # type: ignore[no-any-return]

    @property
    def headers(self) -> Headers:
        """Case-insensitive, multi-valued headers (of the handshake, for a websocket)."""
        if self._headers is None:
            self._headers = Headers(raw=self.scope["headers"])
        return self._headers

    @property
    def query(self) -> QueryParams:
        """The query string as a multi-dict (``request.query.getlist("tag")``)."""
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    query_params = query

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies by name (a malformed ``Cookie`` header never raises)."""
        # HTTP/2 servers may pass one Cookie header per cookie (RFC 9113, 8.2.3).
        if self._cookies is None:
            header = "; ".join(self.headers.getlist("cookie"))
            self._cookies = parse_cookie_header(header) if header else {}
        return self._cookies

    @property
    def session(self) -> Session:
        """The visitor's session: a dict-like mapping of JSON values (see ``trellis.sessions``).

        Opened on first use; changes are saved when the response starts. Read-only on a
        websocket.

        Raises:
            ConfigurationError: sessions are turned off (the ``sessions`` setting).
        """
        session: Session | None = self.scope.get(SCOPE_KEY)
        return session if session is not None else open_session(self)

    @property
    def state(self) -> State:
        """Per-connection attributes for your code and middleware (``request.state.user``)."""
        if self._state is None:
            self._state = State._wrap(self.scope.setdefault("state", {}))
        return self._state

    @property
    def client(self) -> tuple[str, int] | None:
        """``(host, port)`` of the client; from ``X-Forwarded-For`` only via a trusted proxy."""
        proxies = getattr(self.scope.get("app"), "_proxies", None)
        if proxies is not None:
            return proxies.client(self.scope, self.headers)  # type: ignore[no-any-return]
        client = self.scope.get("client")
        return (client[0], client[1]) if client else None

    @property
    def scheme(self) -> str:
        """``http``/``https`` or ``ws``/``wss``; ``X-Forwarded-Proto`` only from a trusted proxy."""
        proxies = getattr(self.scope.get("app"), "_proxies", None)
        if proxies is not None:
            return proxies.scheme(self.scope, self.headers)  # type: ignore[no-any-return]
        default = "ws" if self.scope.get("type") == "websocket" else "http"
        return str(self.scope.get("scheme", default))

    @property
    def host(self) -> str:
        """The host the client asked for (``X-Forwarded-Host`` only from a trusted proxy)."""
        proxies = getattr(self.scope.get("app"), "_proxies", None)
        if proxies is not None:
            return proxies.host(self.scope, self.headers)  # type: ignore[no-any-return]
        host: str = self.headers.get("host") or "localhost"
        return host

    @property
    def url(self) -> URL:
        """The full URL the client asked for."""
        if self._url is None:
            scope = self.scope
            if getattr(scope.get("app"), "_proxies", None):
                self._url = URL.from_scope({**scope, "scheme": self.scheme}, host=self.host)
            elif "scheme" not in scope:  # optional in ASGI
                self._url = URL.from_scope({**scope, "scheme": self.scheme})
            else:
                self._url = URL.from_scope(scope)
        return self._url

    def url_for(self, name: str, /, **params: Any) -> str:
        """Return the path of the route ``name`` (see ``App.url_for``), root path included."""
        path = self.app.url_for(name, **params)
        root: str = self.scope.get("root_path", "")
        return root.rstrip("/") + path if root else path
