"""Brute-force protection for logins: failure counters per account and per client address.

```py
throttle = LoginThrottle(per_account=(5, 900), per_ip=(50, 900))

ticket = await throttle.attempt(request, login)   # ThrottledError (429) when locked
user = await auth.authenticate(db, login, password)
if user is None:
    await throttle.failure(ticket)                # 429 on the last allowed failure
else:
    await throttle.success(ticket)                # the account's counter starts over
```

The counters live in a cache (``app.state.cache``: Redis shared by every process, or a
``MemoryCache`` in this one), in fixed windows aligned on the clock: ``(5, 900)`` allows five
failures per account in each quarter of an hour. A locked login is refused *before* its
password is checked, so an attacker learns nothing from guesses made while locked out.

Anyone can lock an account for the rest of a window by failing to log in as it: that is the
price of a per-account limit (the per-address limit alone does not stop a botnet). Keep the
window short.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trellis.exceptions import HTTPError
from trellis.ratelimit import client_ip

if TYPE_CHECKING:
    from trellis.contrib.cache import CacheBackend
    from trellis.http.connection import HTTPConnection

__all__ = ["LoginThrottle", "ThrottleTicket", "ThrottledError", "client_key", "normalize_login"]


class ThrottledError(HTTPError):
    """429: too many attempts; ``retry_after`` seconds until the window ends.

    Carries the ``Retry-After`` header.
    """

    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        minutes = math.ceil(self.retry_after / 60)
        super().__init__(
            None,
            detail
            or (
                "Too many failed attempts. Try again in"
                f" {minutes} minute{'s' if minutes != 1 else ''}."
            ),
            headers={"Retry-After": str(self.retry_after)},
        )


def normalize_login(identifier: str) -> str:
    """The form of an e-mail address or user name that counters are keyed on.

    Case and Unicode compatibility forms fold together (``ANN@example.com``,
    ``ann@example.com`` and the same letters in full width share a counter), so changing
    the case is not a fresh start.
    """
    return unicodedata.normalize("NFKC", identifier).strip().casefold()


def client_key(conn: HTTPConnection, ipv6_prefix: int = 64) -> str:
    """The client address a per-address counter is keyed on (``trellis.ratelimit.client_ip``).

    An IPv6 client usually holds a whole ``/64`` (it can pick a new address for every
    request), so IPv6 addresses count per network of ``ipv6_prefix`` bits.
    """
    return client_ip(conn, ipv6_prefix)


def _limit(name: str, value: tuple[int, float]) -> tuple[int, float]:
    attempts, window = value
    if attempts < 1 or window <= 0:
        raise ValueError(f"{name} must be (attempts >= 1, window seconds > 0), got {value!r}")
    return int(attempts), float(window)


@dataclass
class _Counter:
    key: str
    limit: int
    window_end: float
    count: int = 0


@dataclass
class ThrottleTicket:
    """One login attempt, as counted by ``LoginThrottle.attempt``: pass it back with the outcome."""

    throttle: LoginThrottle
    cache: CacheBackend
    account: _Counter | None
    ip: _Counter
    settled: bool = field(default=False)


class LoginThrottle:
    """Count failed logins per account and per client address, and refuse when over a limit.

    Args:
        cache: Where the counters live; by default ``app.state.cache`` (install a
            ``RedisCache`` to share them between processes), else a ``MemoryCache`` of this
            throttle.
        per_account: ``(failures, seconds)``: failures allowed for one login name (e-mail or
            user name, whether it exists or not) in each window.
        per_ip: ``(failures, seconds)`` for one client address (an IPv6 ``/64``).
        per_ip_reset: ``(requests, seconds)``: password-reset e-mails one address may ask for.
        prefix: The prefix of the cache keys.
        clock: The wall-clock time in seconds (windows are aligned on it, the same in every
            process); tests pass their own.

    Example:
        ```py
        app.install(Auth(throttle=LoginThrottle(per_account=(10, 600))))
        ```
    """

    def __init__(
        self,
        cache: CacheBackend | None = None,
        per_account: tuple[int, float] = (5, 900),
        per_ip: tuple[int, float] = (50, 900),
        *,
        per_ip_reset: tuple[int, float] = (5, 3600),
        prefix: str = "trellis:auth:throttle",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.per_account = _limit("per_account", per_account)
        self.per_ip = _limit("per_ip", per_ip)
        self.per_ip_reset = _limit("per_ip_reset", per_ip_reset)
        self.prefix = prefix
        self.clock = clock
        self._fallback: CacheBackend | None = None

    def __repr__(self) -> str:
        return f"LoginThrottle(per_account={self.per_account!r}, per_ip={self.per_ip!r})"

    # -- where the counters live -----------------------------------------------------------------

    def cache_for(self, conn: HTTPConnection) -> CacheBackend:
        """The cache holding the counters for this request's app."""
        if self.cache is not None:
            return self.cache
        cache: CacheBackend | None = getattr(conn.app.state, "cache", None)
        if cache is not None:
            return cache
        if self._fallback is None:
            from trellis.contrib.cache import MemoryCache

            self._fallback = MemoryCache()
        return self._fallback

    def _counter(self, kind: str, subject: str, limit: tuple[int, float], now: float) -> _Counter:
        attempts, window = limit
        index = math.floor(now / window)
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return _Counter(f"{self.prefix}:{kind}:{digest}:{index}", attempts, (index + 1) * window)

    async def _count(self, cache: CacheBackend, counter: _Counter, now: float) -> int:
        # The key dies with its window (plus a second for clock skew between processes).
        counter.count = await cache.incr(counter.key, ttl=counter.window_end - now + 1)
        return counter.count

    def _retry_after(self, counters: list[_Counter], now: float) -> int:
        return max(1, math.ceil(max(c.window_end for c in counters) - now))

    # -- logins ------------------------------------------------------------------------------

    async def attempt(self, conn: HTTPConnection, identifier: str) -> ThrottleTicket:
        """Count a login attempt for ``identifier`` from this client, before the password.

        Raises:
            ThrottledError: The account or the address is over its limit; do not check the
                password.
        """
        cache = self.cache_for(conn)
        now = self.clock()
        login = normalize_login(identifier)
        account = self._counter("login:account", login, self.per_account, now) if login else None
        ip = self._counter("login:ip", client_key(conn), self.per_ip, now)
        over = []
        if account is not None and await self._count(cache, account, now) > account.limit:
            over.append(account)
        if await self._count(cache, ip, now) > ip.limit:
            over.append(ip)
        if over:
            raise ThrottledError(self._retry_after(over, now))
        return ThrottleTicket(self, cache, account, ip)

    async def failure(self, ticket: ThrottleTicket) -> None:
        """Record that the attempt failed (wrong password, unknown account).

        Raises:
            ThrottledError: This was the last failure allowed: the account or the address is
                locked until the window ends (answer 429 now rather than one attempt later).
        """
        if ticket.settled:
            return
        ticket.settled = True
        full = [c for c in (ticket.account, ticket.ip) if c is not None and c.count >= c.limit]
        if full:
            raise ThrottledError(self._retry_after(full, self.clock()))

    async def success(self, ticket: ThrottleTicket, *aliases: str | None) -> None:
        """Record that the attempt succeeded: the account's failures are forgotten.

        Args:
            ticket: What ``attempt`` returned.
            *aliases: Other names of the same account (its e-mail address and user name,
                whichever was not typed): their failures are forgotten too.

        The address's counter takes the attempt back, so that many people signing in from
        one address (an office behind NAT) count only their failures.
        """
        if ticket.settled:
            return
        ticket.settled = True
        now = self.clock()
        keys = {ticket.account.key} if ticket.account is not None else set()
        for alias in aliases:
            login = normalize_login(alias) if alias else ""
            if login:
                keys.add(self._counter("login:account", login, self.per_account, now).key)
        for key in keys:
            await ticket.cache.delete(key)
        if now < ticket.ip.window_end:
            await ticket.cache.incr(ticket.ip.key, -1, ttl=ticket.ip.window_end - now + 1)

    async def unlock(self, *identifiers: str | None, conn: HTTPConnection | None = None) -> None:
        """Forget the current window's failures of accounts (an administrator's unlock).

        Args:
            *identifiers: E-mail addresses or user names (``None`` is skipped).
            conn: A request of the app, to find ``app.state.cache`` when the throttle has no
                ``cache`` of its own.
        """
        if conn is not None:
            cache: CacheBackend | None = self.cache_for(conn)
        else:
            cache = self.cache if self.cache is not None else self._fallback
        if cache is None:
            return
        now = self.clock()
        for identifier in identifiers:
            login = normalize_login(identifier) if identifier else ""
            if login:
                counter = self._counter("login:account", login, self.per_account, now)
                await cache.delete(counter.key)

    # -- other requests that mail or cost --------------------------------------------------------

    async def hit(
        self,
        conn: HTTPConnection,
        action: str = "password_reset",
        limit: tuple[int, float] | None = None,
    ) -> None:
        """Count one request for ``action`` from this client address.

        Used for password-reset requests (each sends an e-mail): ``per_ip_reset`` by default.

        Raises:
            ThrottledError: The address made more than ``limit`` such requests this window.
        """
        attempts, window = _limit("limit", limit) if limit is not None else self.per_ip_reset
        cache = self.cache_for(conn)
        now = self.clock()
        counter = self._counter(f"{action}:ip", client_key(conn), (attempts, window), now)
        if await self._count(cache, counter, now) > counter.limit:
            raise ThrottledError(
                self._retry_after([counter], now),
                "Too many requests. Try again later.",
            )
