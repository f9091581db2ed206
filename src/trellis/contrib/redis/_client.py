"""What the Redis stores share: the client, connecting, closing, installing on an app."""

from __future__ import annotations

import logging
import math
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trellis.contrib.cache._values import check_key
from trellis.exceptions import ConfigurationError, HTTPError, TrellisError

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.request import Request
    from trellis.http.response import Response

__all__ = ["RedisUnavailableError", "redact"]

log = logging.getLogger("trellis.redis")

_SECRET_PARAMS = frozenset({"password"})

#: What a client is told when Redis is unreachable: nothing about Redis itself.
UNAVAILABLE_DETAIL = "A service this application depends on is unavailable."
#: Seconds a client is asked to wait before trying again.
RETRY_AFTER = 5


class RedisUnavailableError(TrellisError):
    """Redis could not be reached (at start-up, or by ``connect()``)."""


def redact(url: str) -> str:
    """``url`` without its password (in the user part or the query), to show in messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostinfo}" if colon else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(name, "***" if name in _SECRET_PARAMS else value) for name, value in pairs],
            safe="*/",
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _retry() -> Retry:
    """One immediate retry on a connection error, none on a timeout.

    A pooled connection that Redis closed (it restarted) fails its next command: the retry
    reconnects, so the first requests after an outage do not fail. A timeout is not retried:
    it would double the wait of a request on a Redis that no longer answers.
    """
    return Retry(NoBackoff(), 1, (RedisConnectionError,))


def milliseconds(ttl: float) -> int:
    """A positive ``ttl`` in whole milliseconds, rounded up (Redis refuses ``PX 0``)."""
    return max(1, math.ceil(ttl * 1000))


def _describe(client: Redis) -> str:
    """Where a client given to a store connects (for messages and ``repr``)."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


class RedisStore:
    """The base of ``RedisCache`` and ``RedisSessionStore``: a client, its life, a prefix.

    Args:
        url_or_client: A URL (``redis://[:password@]host:6379/0``, ``rediss://`` for TLS,
            ``unix:///path.sock``) or a ``redis.asyncio.Redis`` client of yours. A client
            you pass stays yours: ``close()`` leaves it open.
        prefix: Put before every key, so that several stores share one Redis database
            (``None``: the store's ``default_prefix``).
        connect_timeout: Seconds to wait for a connection to Redis.
        timeout: Seconds to wait for an answer to a command (``None``: forever).
        options: More options of ``redis.asyncio.Redis.from_url`` (``max_connections``,
            TLS settings, ``retry`` ...), with a URL only. By default a command that meets a
            closed connection is retried once on a new one (Redis restarted), a timeout is
            not retried.
    """

    #: Where ``install`` puts the store: ``app.state.<state_name>``.
    state_name: ClassVar[str] = ""
    #: The prefix of the store's keys when none is given.
    default_prefix: ClassVar[str] = ""

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        prefix: str | None = None,
        connect_timeout: float = 5.0,
        timeout: float | None = 5.0,
        **options: Any,
    ) -> None:
        if isinstance(url_or_client, str):
            self.url = redact(url_or_client)
            try:
                self.client: Redis = Redis.from_url(
                    url_or_client,
                    socket_connect_timeout=connect_timeout,
                    socket_timeout=timeout,
                    **{"retry": _retry(), **options},
                )
            except ValueError as exc:
                raise ConfigurationError(f"invalid Redis URL {self.url!r}: {exc}") from None
            self._owns_client = True
        elif isinstance(url_or_client, Redis):
            if options:
                raise TypeError(
                    f"options ({', '.join(sorted(options))}) go with a URL; configure the"
                    " client you pass yourself"
                )
            self.client = url_or_client
            self.url = _describe(url_or_client)
            self._owns_client = False
        else:
            raise TypeError(
                "give a Redis URL (redis://host:6379/0) or a redis.asyncio.Redis client,"
                f" not {type(url_or_client).__name__}"
            )
        if prefix is None:
            prefix = self.default_prefix
        elif not isinstance(prefix, str):
            raise TypeError(f"the prefix is a string, not {type(prefix).__name__}")
        self.prefix = prefix

    def _key(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    # -- life ---------------------------------------------------------------------------------

    def setup(self, app: App) -> None:
        """Install on ``app``: ``app.state.<name>``, connect at start-up, close at shut-down.

        Also makes Redis outages 503 answers: a Redis connection error or timeout that reaches
        the application (from a handler, the session layer, a rate limit, a cache call) gets
        ``503`` with ``Retry-After``, and the reason goes to the ``trellis.redis`` log.

        Raises:
            ConfigurationError: the application has another store of this kind already.
        """
        name = self.state_name
        existing = getattr(app.state, name, None)
        if existing is not None and existing is not self:
            raise ConfigurationError(f"the application already has app.state.{name} ({existing!r})")
        setattr(app.state, name, self)
        app.on_startup(self.connect)
        app.on_shutdown(self.close)
        install_outage_handler(app, self.client)

    async def connect(self) -> None:
        """Reach Redis now (the app calls this at start-up): fail early, not at a request.

        Raises:
            RedisUnavailableError: Redis does not answer; the message names the server
                (password hidden) and gives the reason.
        """
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise RedisUnavailableError(
                f"cannot connect to Redis at {self.url}: {exc or type(exc).__name__}"
                " (is the server running, and is the URL right?)"
            ) from exc

    async def ping(self) -> bool:
        """Whether Redis answers now (for a readiness check); never raises when it is down."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Close the connections (the app calls this at shut-down).

        A client you passed in stays open. The store can be used again afterwards: it
        connects again when needed.
        """
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} prefix={self.prefix!r}>"


# -- outages -------------------------------------------------------------------------------------


class _OutageHandler:
    """The exception handler for Redis outages: 503 to the client, the reason to the log."""

    __slots__ = ("secrets",)

    def __init__(self) -> None:
        # Passwords of the installed clients, hidden from logged messages.
        self.secrets: set[str] = set()

    def __call__(self, request: Request, exc: Exception) -> Response:
        from trellis.http.errors import error_response, wants_html

        reason = str(exc) or type(exc).__name__
        for secret in self.secrets:
            reason = reason.replace(secret, "***")
        log.error(
            "Redis is unavailable: %s %s answered 503 (%s: %s)",
            request.method,
            request.path,
            type(exc).__name__,
            reason,
        )
        error = HTTPError(503, UNAVAILABLE_DETAIL, {"Retry-After": str(RETRY_AFTER)})
        return error_response(
            error, html_page=wants_html(request.headers.get("accept")), instance=request.path
        )


#: What the outage handler answers for.
_OUTAGES: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisUnavailableError,
)


def install_outage_handler(app: App, client: Redis) -> None:
    """Answer Redis connection errors and timeouts with 503 in ``app`` (once per app).

    An exception handler the application registered for one of them first stays.
    """
    handlers: dict[Any, Any] = getattr(app, "_exception_handlers", {})
    handler = next((h for h in handlers.values() if isinstance(h, _OutageHandler)), None)
    if handler is None:
        handler = _OutageHandler()
        for exc_type in _OUTAGES:
            if exc_type not in handlers:  # the application's own wins
                app.exception_handler(exc_type)(handler)
    password = client.connection_pool.connection_kwargs.get("password")
    if password:
        handler.secrets.add(str(password))
