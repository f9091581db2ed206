"""LoginThrottle: failure counters per account and per address, in any CacheBackend.

Runs on a MemoryCache and, when ``TRELLIS_TEST_REDIS_URL`` is set, on a real Redis server
(the counters processes share). The login pages and API are tested through HTTP in
``test_flows_pages.py`` and ``test_flows_api.py``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trellis import App, Request
from trellis.contrib.auth.throttle import (
    LoginThrottle,
    ThrottledError,
    client_key,
    normalize_login,
)
from trellis.contrib.cache import CacheBackend, MemoryCache

REDIS_ENV = "TRELLIS_TEST_REDIS_URL"
START = 1_700_000_100.0  # a fixed time; windows are aligned on multiples of their length


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    from trellis.contrib.redis import RedisCache

    prefix = f"trellis-test:{os.getpid()}:{secrets.token_hex(4)}:"
    async with RedisCache(url, prefix=prefix) as redis_cache:
        try:
            yield redis_cache
        finally:
            await redis_cache.clear()


def _conn(host: str = "203.0.113.5", app: App | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/login",
        "headers": [],
        "client": (host, 50000),
    }
    if app is not None:
        scope["app"] = app
    return Request(scope)


def _window_start(window: float) -> float:
    return (START // window) * window


async def _fail(throttle: LoginThrottle, conn: Request, login: str) -> None:
    ticket = await throttle.attempt(conn, login)
    await throttle.failure(ticket)


@pytest.mark.anyio
async def test_the_nth_failure_locks_the_account(cache: CacheBackend) -> None:
    clock = Clock(START)
    throttle = LoginThrottle(cache, per_account=(5, 900), per_ip=(50, 900), clock=clock)
    conn = _conn()
    for _ in range(4):
        await _fail(throttle, conn, "ann@example.com")
    with pytest.raises(ThrottledError) as locked:
        await _fail(throttle, conn, "ann@example.com")  # the 5th failure
    window_end = _window_start(900) + 900
    assert locked.value.status == 429
    assert locked.value.retry_after == int(window_end - START)
    assert ("Retry-After", str(int(window_end - START))) in locked.value.headers
    assert "Try again in" in (locked.value.detail or "")
    # while locked, an attempt is refused before any password is looked at
    clock.now += 60
    with pytest.raises(ThrottledError) as again:
        await throttle.attempt(conn, "ann@example.com")
    assert again.value.retry_after == int(window_end - clock.now)
    # case and look-alike forms are the same account
    with pytest.raises(ThrottledError):
        await throttle.attempt(conn, "  ANN@Example.COM ")
    # another account from the same address is not locked
    ticket = await throttle.attempt(conn, "bob@example.com")
    await throttle.failure(ticket)
    # the next window starts afresh
    clock.now = window_end + 1
    ticket = await throttle.attempt(conn, "ann@example.com")
    await throttle.success(ticket)


@pytest.mark.anyio
async def test_the_account_is_locked_from_every_address(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(3, 900), clock=Clock(START))
    for i in range(2):
        await _fail(throttle, _conn(f"198.51.100.{i}"), "ann")
    with pytest.raises(ThrottledError):
        await _fail(throttle, _conn("198.51.100.9"), "ann")
    with pytest.raises(ThrottledError):
        await throttle.attempt(_conn("192.0.2.77"), "ann")


@pytest.mark.anyio
async def test_success_forgets_the_failures(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(3, 900), clock=Clock(START))
    conn = _conn()
    for _ in range(2):
        await _fail(throttle, conn, "ann")
    await throttle.success(await throttle.attempt(conn, "ann"))
    for _ in range(2):  # two more failures are allowed again
        await _fail(throttle, conn, "ann")
    with pytest.raises(ThrottledError):
        await _fail(throttle, conn, "ann")


@pytest.mark.anyio
async def test_per_address_limit_across_accounts(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(100, 900), per_ip=(3, 60), clock=Clock(START))
    conn = _conn("203.0.113.9")
    await _fail(throttle, conn, "a")
    await _fail(throttle, conn, "b")
    with pytest.raises(ThrottledError) as locked:
        await _fail(throttle, conn, "c")
    assert locked.value.retry_after == int(_window_start(60) + 60 - START)
    with pytest.raises(ThrottledError):
        await throttle.attempt(conn, "d")  # any account: the address is locked
    # another address is not
    await _fail(throttle, _conn("203.0.113.10"), "d")


@pytest.mark.anyio
async def test_success_forgets_the_other_names_of_the_account(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(3, 900), clock=Clock(START))
    conn = _conn()
    for _ in range(2):
        await _fail(throttle, conn, "ann@example.com")
    # signed in by user name: the failures under the e-mail address are forgotten too
    await throttle.success(await throttle.attempt(conn, "ann"), "ann@example.com", None, "")
    for _ in range(2):
        await _fail(throttle, conn, "ann@example.com")


@pytest.mark.anyio
async def test_successes_do_not_count_against_the_address(cache: CacheBackend) -> None:
    # An office behind one NAT address: many people sign in, a few mistype.
    throttle = LoginThrottle(cache, per_ip=(3, 900), clock=Clock(START))
    conn = _conn()
    for i in range(20):
        await throttle.success(await throttle.attempt(conn, f"user{i}"))
    await _fail(throttle, conn, "x")
    await _fail(throttle, conn, "y")
    with pytest.raises(ThrottledError):
        await _fail(throttle, conn, "z")


@pytest.mark.anyio
async def test_a_ticket_settles_once(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(2, 900), clock=Clock(START))
    conn = _conn()
    ticket = await throttle.attempt(conn, "ann")
    await throttle.success(ticket)
    await throttle.success(ticket)  # no second decrement
    await throttle.failure(ticket)  # ignored: already settled
    await _fail(throttle, conn, "ann")
    with pytest.raises(ThrottledError):
        await _fail(throttle, conn, "ann")


@pytest.mark.anyio
async def test_concurrent_attempts_are_bounded(cache: CacheBackend) -> None:
    # The attempt is counted before the password is checked: 20 parallel guesses with a limit
    # of 5 get exactly 5 password checks.
    throttle = LoginThrottle(cache, per_account=(5, 900), clock=Clock(START))
    conn = _conn()

    async def guess() -> bool:
        try:
            await throttle.attempt(conn, "ann")
        except ThrottledError:
            return False
        return True

    results = await asyncio.gather(*(guess() for _ in range(20)))
    assert results.count(True) == 5


@pytest.mark.anyio
async def test_unlock(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_account=(2, 900), clock=Clock(START))
    conn = _conn()
    await _fail(throttle, conn, "ann")
    with pytest.raises(ThrottledError):
        await _fail(throttle, conn, "ann")
    await throttle.unlock("ANN")
    await _fail(throttle, conn, "ann")


@pytest.mark.anyio
async def test_hit_limits_reset_requests_per_address(cache: CacheBackend) -> None:
    throttle = LoginThrottle(cache, per_ip_reset=(2, 3600), clock=Clock(START))
    conn = _conn()
    await throttle.hit(conn)
    await throttle.hit(conn)
    with pytest.raises(ThrottledError) as limited:
        await throttle.hit(conn)
    assert limited.value.detail == "Too many requests. Try again later."
    assert limited.value.retry_after == int(_window_start(3600) + 3600 - START)
    await throttle.hit(_conn("192.0.2.1"))  # another address
    await throttle.hit(conn, "other_action", (1, 60))  # another action has its own counter
    with pytest.raises(ThrottledError):
        await throttle.hit(conn, "other_action", (1, 60))
    # logins are not affected by reset requests
    await _fail(throttle, conn, "ann")


@pytest.mark.anyio
async def test_counters_expire_with_their_window() -> None:
    cache = MemoryCache()
    throttle = LoginThrottle(cache, per_account=(5, 10), clock=Clock(START))
    conn = _conn()
    ticket = await throttle.attempt(conn, "ann")
    assert ticket.account is not None
    key = ticket.account.key
    assert await cache.get(key) == 1
    # the key's ttl ends with the window (plus a second): never a counter that outlives it
    cache.clock = lambda: 10**9  # far in the future for the cache
    assert await cache.get(key) is None


@pytest.mark.anyio
async def test_default_cache_is_the_apps_or_its_own() -> None:
    app = App(debug=True)
    throttle = LoginThrottle(per_account=(1, 900))
    own = throttle.cache_for(_conn(app=app))
    assert isinstance(own, MemoryCache)
    assert throttle.cache_for(_conn(app=app)) is own  # kept
    shared = MemoryCache()
    app.state.cache = shared
    assert throttle.cache_for(_conn(app=app)) is shared
    with pytest.raises(ThrottledError):
        await _fail(throttle, _conn(app=app), "ann")
    assert len(shared._entries) == 2  # account and address counters live there
    await throttle.unlock("ann", None, conn=_conn(app=app))
    with pytest.raises(ThrottledError):  # unlocked, fails once more: locked again
        await _fail(throttle, _conn(app=app), "ann")


def test_client_key() -> None:
    assert client_key(_conn("203.0.113.5")) == "203.0.113.5"
    # one IPv6 /64 is one client
    assert client_key(_conn("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert client_key(_conn("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64"
    assert client_key(_conn("2001:db8:1:3::1")) == "2001:db8:1:3::/64"
    assert client_key(_conn("::ffff:203.0.113.5")) == "203.0.113.5"
    assert client_key(_conn("not-an-ip")) == "not-an-ip"
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    assert client_key(Request(scope)) == "unknown"


def test_normalize_login() -> None:
    assert normalize_login("  Ann@Example.COM ") == "ann@example.com"
    assert normalize_login("\uff41\uff4e\uff4e") == "ann"  # full-width letters
    assert normalize_login("STRASSE") == normalize_login("straße")


def test_bad_limits() -> None:
    with pytest.raises(ValueError, match="per_account"):
        LoginThrottle(per_account=(0, 900))
    with pytest.raises(ValueError, match="per_ip"):
        LoginThrottle(per_ip=(5, 0))
    with pytest.raises(ValueError, match="per_ip_reset"):
        LoginThrottle(per_ip_reset=(-1, 10))
    assert "per_account=(5, 900.0)" in repr(LoginThrottle())


def test_throttled_error() -> None:
    error = ThrottledError(61)
    assert error.detail == "Too many failed attempts. Try again in 2 minutes."
    assert ThrottledError(60).detail == "Too many failed attempts. Try again in 1 minute."
    assert ThrottledError(0).retry_after == 1
    assert error.to_problem()["status"] == 429
