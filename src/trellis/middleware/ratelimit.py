"""A rate limit on every HTTP request of the app, with ``RateLimit-*`` headers on each response."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from trellis.exceptions import ConfigurationError
from trellis.http.request import Request
from trellis.middleware._common import send_text
from trellis.ratelimit import Counter, KeyFunc, RateLimit, RateLimitedError, client_ip
from trellis.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    """Count every HTTP request per client and refuse those over ``rate`` with 429.

    Every response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
    ``RateLimit-Reset`` (unless a route's own limit set them: a 429 of a ``RateLimit``
    dependency); a refused one also ``Retry-After``, with the app's problem+json error
    body. Websockets are not counted. For a tighter limit on some routes, add a
    ``trellis.ratelimit.RateLimit`` dependency to them as well.

    Args:
        app: The ASGI application to wrap.
        rate: ``"1000/hour"``, ``"20/second"`` or ``(requests, seconds)``.
        key: Who a counter belongs to (``client_ip`` by default); ``None`` from it lets the
            request through uncounted.
        cache: Where counters live; by default ``app.state.cache``, else this process.
        exclude: Path prefixes that are not counted (``"/health"``, ``"/static/"``).
        name: Tells the counters from those of other limits (default ``"app"``).
        fail_open: Let requests through (with a warning) when the cache fails.
        clock: The wall-clock time in seconds; tests pass theirs.

    Example:
        ```python
        from trellis import App
        from trellis.middleware import RateLimitMiddleware
        from trellis.testing import TestClient

        app = App()
        app.add_middleware(RateLimitMiddleware, rate="2/hour", exclude=["/health"])


        @app.get("/")
        async def index() -> str:
            return "hello"


        with TestClient(app) as client:
            assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
        ```
    """

    __slots__ = ("_exclude", "app", "limit")

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: str | tuple[int, float],
        key: KeyFunc = client_ip,
        cache: Counter | None = None,
        exclude: Sequence[str] = (),
        name: str = "app",
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.limit = RateLimit(
                rate, key=key, cache=cache, name=name, fail_open=fail_open, clock=clock
            )
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"RateLimitMiddleware: {exc}") from None
        if isinstance(exclude, str):
            raise ConfigurationError(
                f"RateLimitMiddleware: exclude is a list of path prefixes, not {exclude!r}"
            )
        self.app = app
        self._exclude = tuple(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http" or (self._exclude and scope["path"].startswith(self._exclude)):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        usage = await self.limit.hit(request)
        if usage is None:
            await self.app(scope, receive, send)
            return
        if usage.exceeded:
            error = RateLimitedError(usage)
            app = scope.get("app")
            if app is None or not hasattr(app, "_error_response"):  # outside a Trellis app
                headers = [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers
                ]
                await send_text(send, 429, str(error.detail).encode(), headers)
                return
            # The app's own error rendering: problem+json, or the app's 429 handler.
            response = await app._error_response(request, error)
            await response(scope, receive, send)
            return
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in usage.headers()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                # A route's own limit (a refusal by a RateLimit dependency) speaks for itself.
                if not any(key.lower() == b"ratelimit-limit" for key, _ in headers):
                    # A new list: the application may reuse its header list elsewhere.
                    message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
