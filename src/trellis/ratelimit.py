"""Rate limits: at most N requests per window, per client address, user or key of yours.

```py
from trellis.ratelimit import RateLimit

@app.post("/search", dependencies=[RateLimit("10/minute")])
async def search(...): ...

app.add_middleware(RateLimitMiddleware, rate="1000/hour")   # every request of the app
```

Counters live in a cache: the one given, else ``app.state.cache`` (a ``RedisCache`` is shared
by every process, so the limit holds across workers and machines), else a counter of this
process. Windows are fixed and aligned on the clock (``"10/minute"`` allows ten requests in
each calendar minute), the same in every process; a counter key dies with its window.

A refused request gets 429 with ``Retry-After`` and the ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` headers (IETF draft
``draft-ietf-httpapi-ratelimit-headers``); the middleware puts those on every response.
"""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
import logging
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trellis.exceptions import ConfigurationError, HTTPError
from trellis.http.request import Request

if TYPE_CHECKING:
    from trellis.http.connection import HTTPConnection

__all__ = [
    "Counter",
    "RateLimit",
    "RateLimitedError",
    "Usage",
    "client_ip",
    "parse_rate",
    "user_or_ip",
]

log = logging.getLogger("trellis.ratelimit")

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?\s*", re.IGNORECASE)


def parse_rate(rate: str | tuple[int, float]) -> tuple[int, float]:
    """``(requests, window seconds)`` of a rate: ``"100/minute"``, ``"5/10s"``, ``(100, 60)``.

    Units: ``second``, ``minute``, ``hour``, ``day`` (also ``s``, ``m``/``min``, ``h``, ``d``,
    plurals), optionally with a count (``"20/5minutes"``).

    Raises:
        ConfigurationError: not a rate, or a limit below one or a window of no time.
    """
    if isinstance(rate, tuple):
        limit, window = rate
    else:
        match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
        unit = _UNITS.get(match.group(3).lower()) if match else None
        if match is None or unit is None:
            raise ConfigurationError(
                f"not a rate: {rate!r}; write '<requests>/<unit>' such as '100/minute' or"
                " '5/10s' (units: second, minute, hour, day)"
            )
        limit, window = int(match.group(1)), int(match.group(2) or 1) * unit
    if not isinstance(limit, int) or limit < 1 or not window > 0:
        raise ConfigurationError(f"a rate allows at least 1 request in more than 0 s, got {rate!r}")
    return limit, float(window)


def client_ip(conn: HTTPConnection, ipv6_prefix: int = 64) -> str:
    """The client address a per-address counter is keyed on.

    ``conn.client``, so behind a trusted proxy (``App(trusted_proxies=...)``) the address from
    ``X-Forwarded-For``. An IPv6 client usually holds a whole ``/64`` (it can pick a new
    address for every request), so IPv6 addresses count per network of ``ipv6_prefix`` bits;
    an IPv4 address mapped into IPv6 counts as itself.
    """
    client = conn.client
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def user_or_ip(conn: HTTPConnection) -> str:
    """Key on the signed-in user (``request.state.user``, its ``id``), else the address.

    The auth battery sets ``request.state.user`` when its dependency runs: list that
    dependency before the limit.
    """
    user = getattr(conn.state, "user", None)
    if user is None:
        return "ip:" + client_ip(conn)
    return f"user:{getattr(user, 'id', user)}"


class Counter(Protocol):
    """Where counts live: any cache with ``incr`` (``MemoryCache``, ``RedisCache`` ...)."""

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Add ``delta`` to the integer under ``key`` (missing counts as 0); the new value."""
        ...


class _LocalCounter:
    """Counts in this process, when the app has no cache: windows end by themselves."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._sweep_at = 0.0

    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        now = time.monotonic()
        if now >= self._sweep_at:  # forget ended windows now and then, not per request
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._sweep_at = now + 60
        count, expires = self._counts.get(key, (0, math.inf))
        if expires <= now:
            count, expires = 0, math.inf
        if count == 0 and ttl is not None:
            expires = now + ttl
        count += delta
        self._counts[key] = (count, expires)
        return count


@dataclass(frozen=True, slots=True)
class Usage:
    """Where a client stands in the current window.

    Attributes:
        limit: Requests allowed per window.
        count: Requests counted this window, this one included.
        reset: Seconds until the window ends (at least 1).
    """

    limit: int
    count: int
    reset: int

    @property
    def exceeded(self) -> bool:
        """Whether this request is over the limit (and refused)."""
        return self.count > self.limit

    @property
    def remaining(self) -> int:
        """Requests left this window."""
        return max(0, self.limit - self.count)

    def headers(self) -> list[tuple[str, str]]:
        """The ``RateLimit-*`` headers (and ``Retry-After`` when exceeded)."""
        headers = [
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(self.remaining)),
            ("RateLimit-Reset", str(self.reset)),
        ]
        if self.exceeded:
            headers.append(("Retry-After", str(self.reset)))
        return headers


class RateLimitedError(HTTPError):
    """429: over a rate limit; carries ``Retry-After`` and the ``RateLimit-*`` headers."""

    status = 429

    def __init__(self, usage: Usage, detail: str | None = None) -> None:
        self.usage = usage
        seconds = usage.reset
        super().__init__(
            None,
            detail
            or f"Too many requests. Try again in {seconds} second{'s' if seconds != 1 else ''}.",
            headers=usage.headers(),
        )


KeyFunc = Callable[["HTTPConnection"], "str | Awaitable[str | None] | None"]


class RateLimit:
    """At most ``rate`` requests per window for each key; a dependency of routes and routers.

    ``dependencies=[RateLimit("10/minute")]`` refuses the eleventh request of a client in a
    minute with 429. Every route (and router) that lists the same object shares its budget;
    separate objects count separately, in every process alike.

    Args:
        rate: ``"100/minute"``, ``"5/10s"``, ``"1000/day"`` or ``(requests, seconds)``.
        key: Who a counter belongs to: ``client_ip`` (the default), ``user_or_ip`` or a
            function of yours taking the request (sync or async); ``None`` from it lets the
            request through uncounted (staff, health checks).
        cache: Where the counters live; by default ``app.state.cache``, else a counter of
            this process.
        name: Tells this limit's counters from others'. By default the place the object was
            made (``module:line``), the same in every process running the same code.
        prefix: The prefix of the cache keys.
        fail_open: When the cache fails (Redis is down), let requests through with a
            warning in the log instead of failing them.
        clock: The wall-clock time in seconds (windows are aligned on it); tests pass theirs.

    Example:
        ```py
        @app.post("/login", dependencies=[RateLimit("5/minute")])
        async def login(...): ...
        ```
    """

    #: The 429 response, added to the OpenAPI operation of every route using the limit.
    openapi_responses: dict[int, dict[str, Any]] = {
        429: {"description": "Too many requests: wait for Retry-After seconds"}
    }

    def __init__(
        self,
        rate: str | tuple[int, float],
        *,
        key: KeyFunc = client_ip,
        cache: Counter | None = None,
        name: str | None = None,
        prefix: str = "trellis:ratelimit",
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate = rate
        self.limit, self.window = parse_rate(rate)
        if not callable(key):
            raise TypeError(f"key is a function of the request, not {type(key).__name__}")
        self.key = key
        self.cache = cache
        if name is None:
            caller = sys._getframe(1)
            name = f"{caller.f_globals.get('__name__', '?')}:{caller.f_lineno}"
        self.name = name
        self.prefix = prefix
        self.fail_open = fail_open
        self.clock = clock
        self._local: _LocalCounter | None = None

    def __repr__(self) -> str:
        return f"RateLimit({self.rate!r}, name={self.name!r})"

    def counter_for(self, conn: HTTPConnection) -> Counter:
        """The cache counting for this request's app."""
        if self.cache is not None:
            return self.cache
        app = conn.scope.get("app")
        cache: Counter | None = getattr(getattr(app, "state", None), "cache", None)
        if cache is not None:
            return cache
        if self._local is None:
            self._local = _LocalCounter()
        return self._local

    async def hit(self, conn: HTTPConnection) -> Usage | None:
        """Count one request; where its client stands (``None``: not counted).

        Raises:
            Exception: What the cache raised, unless ``fail_open``.
        """
        subject = self.key(conn)
        if inspect.isawaitable(subject):
            subject = await subject
        if subject is None:
            return None
        now = self.clock()
        index = math.floor(now / self.window)
        end = (index + 1) * self.window
        digest = hashlib.sha256(
            f"{self.name}\x00{subject}".encode("utf-8", "surrogatepass")
        ).hexdigest()[:32]
        key = f"{self.prefix}:{digest}:{self.window:g}:{index}"
        try:
            # The key dies with its window (plus a second for clock skew between processes).
            count = await self.counter_for(conn).incr(key, ttl=end - now + 1)
        except Exception as exc:
            if not self.fail_open:
                raise  # a Redis outage becomes a 503 through the Redis battery's handler
            log.warning(
                "rate limit %s: the cache failed (%s: %s); letting the request through",
                self.name,
                type(exc).__name__,
                exc,
            )
            return None
        return Usage(self.limit, count, max(1, math.ceil(end - now)))

    async def __call__(self, request: Request) -> None:
        """Count ``request``; as a dependency, refuse it when over the limit.

        Raises:
            RateLimitedError: over the limit (429).
        """
        usage = await self.hit(request)
        if usage is not None and usage.exceeded:
            raise RateLimitedError(usage)
