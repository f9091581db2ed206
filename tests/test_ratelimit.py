"""RateLimit as a dependency: rates, keys, windows, headers, caches, OpenAPI."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from trellis import App, Request, Router
from trellis.contrib.cache import MemoryCache
from trellis.exceptions import ConfigurationError
from trellis.http.connection import HTTPConnection
from trellis.ratelimit import (
    RateLimit,
    RateLimitedError,
    Usage,
    client_ip,
    parse_rate,
    user_or_ip,
)
from trellis.testing import TestClient

pytestmark = pytest.mark.anyio


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000_040.0) -> None:  # 20 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


def ip(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


def make_app(limit: RateLimit, **options: Any) -> App:
    app = App(debug=True, trusted_proxies=["*"], **options)

    @app.get("/limited", dependencies=[limit])
    async def limited() -> str:
        return "ok"

    @app.get("/free")
    async def free() -> str:
        return "free"

    return app


# -- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("100/minute", (100, 60.0)),
        ("5/second", (5, 1.0)),
        ("5/10s", (5, 10.0)),
        ("20/5minutes", (20, 300.0)),
        ("1000/day", (1000, 86400.0)),
        ("3 per hour", (3, 3600.0)),
        ("7/H", (7, 3600.0)),
        ((10, 2.5), (10, 2.5)),
    ],
)
def test_parse_rate(rate: Any, expected: tuple[int, float]) -> None:
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["100", "100/fortnight", "0/minute", "x/minute", (0, 60), (1, 0)])
def test_parse_rate_refuses_nonsense(rate: Any) -> None:
    with pytest.raises(ConfigurationError, match="rate"):
        parse_rate(rate)


# -- the dependency ---------------------------------------------------------------------------


def test_a_route_allows_the_limit_then_refuses_with_429_and_headers() -> None:
    clock = Clock()
    app = make_app(RateLimit("3/minute", clock=clock))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/limited").text == "ok"
        refused = client.get("/limited")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "Too many requests. Try again in 40 seconds."
        assert refused.headers["retry-after"] == "40"  # the minute ends in 40 s
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-reset"] == "40"
        assert client.get("/free").text == "free"  # other routes are not limited


def test_the_window_resets_on_the_clock() -> None:
    clock = Clock()
    app = make_app(RateLimit("2/minute", clock=clock))
    with TestClient(app) as client:
        assert [client.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
        clock.now += 39.5  # still the same calendar minute
        refused = client.get("/limited")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"  # 0.5 s rounded up, never 0
        clock.now += 0.5  # the next minute: a fresh budget
        assert [client.get("/limited").status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/limited").headers["retry-after"] == "60"


def test_each_client_address_has_its_own_budget_and_ipv6_counts_per_64() -> None:
    app = make_app(RateLimit("1/minute", clock=Clock()))
    with TestClient(app) as client:
        assert client.get("/limited", headers=ip("203.0.113.1")).status_code == 200
        assert client.get("/limited", headers=ip("203.0.113.1")).status_code == 429
        assert client.get("/limited", headers=ip("203.0.113.2")).status_code == 200
        assert client.get("/limited", headers=ip("2001:db8:1:2::1")).status_code == 200
        # another address of the same /64 is the same client
        assert client.get("/limited", headers=ip("2001:db8:1:2:ffff::9")).status_code == 429
        assert client.get("/limited", headers=ip("2001:db8:1:3::1")).status_code == 200


def test_forwarded_addresses_count_only_behind_a_trusted_proxy() -> None:
    limit = RateLimit("1/minute", clock=Clock())
    app = App(debug=True)  # no trusted proxy: X-Forwarded-For is the client's word

    @app.get("/limited", dependencies=[limit])
    async def limited() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/limited", headers=ip("203.0.113.1")).status_code == 200
        assert client.get("/limited", headers=ip("203.0.113.2")).status_code == 429


def test_routes_sharing_an_object_share_a_budget_separate_objects_do_not() -> None:
    shared = RateLimit("2/minute", clock=Clock())
    own = RateLimit("2/minute", clock=Clock())
    app = App(debug=True)
    api = Router("/api", dependencies=[shared])

    @api.get("/a")
    async def a() -> str:
        return "a"

    @api.get("/b")
    async def b() -> str:
        return "b"

    @app.get("/c", dependencies=[own])
    async def c() -> str:
        return "c"

    app.include(api)
    with TestClient(app) as client:
        assert client.get("/api/a").status_code == 200
        assert client.get("/api/b").status_code == 200
        assert client.get("/api/a").status_code == 429
        assert client.get("/api/b").status_code == 429
        assert client.get("/c").status_code == 200  # its own counter
    assert shared.name == f"{__name__}:{shared_line()}"


def shared_line() -> int:
    import inspect

    source, start = inspect.getsourcelines(
        test_routes_sharing_an_object_share_a_budget_separate_objects_do_not
    )
    return start + next(i for i, line in enumerate(source) if "shared = RateLimit" in line)


def test_custom_keys_sync_async_and_none_for_exempt() -> None:
    async def by_api_key(conn: HTTPConnection) -> str | None:
        token = conn.headers.get("x-api-key")
        return None if token == "staff" else token or client_ip(conn)

    app = make_app(RateLimit("1/minute", key=by_api_key, clock=Clock()))
    with TestClient(app) as client:
        assert client.get("/limited", headers={"x-api-key": "k1"}).status_code == 200
        assert client.get("/limited", headers={"x-api-key": "k1"}).status_code == 429
        assert client.get("/limited", headers={"x-api-key": "k2"}).status_code == 200
        for _ in range(3):
            assert client.get("/limited", headers={"x-api-key": "staff"}).status_code == 200
    with pytest.raises(TypeError, match="key is a function"):
        RateLimit("1/minute", key="ip")  # type: ignore[arg-type]


def test_user_or_ip_keys_on_the_signed_in_user() -> None:
    class User:
        id = 7

    def sign_in(request: Request) -> None:
        if request.headers.get("x-user") == "7":
            request.state.user = User()

    limit = RateLimit("1/minute", key=user_or_ip, clock=Clock())
    app = App(debug=True, trusted_proxies=["*"])

    @app.get("/me", dependencies=[sign_in, limit])
    async def me() -> str:
        return "me"

    with TestClient(app) as client:
        assert client.get("/me", headers={"x-user": "7", **ip("203.0.113.1")}).status_code == 200
        # the same user from elsewhere: the same budget; anonymous from there: a fresh one
        assert client.get("/me", headers={"x-user": "7", **ip("203.0.113.2")}).status_code == 429
        assert client.get("/me", headers=ip("203.0.113.1")).status_code == 200
        assert client.get("/me", headers=ip("203.0.113.1")).status_code == 429


# -- where counters live ----------------------------------------------------------------------


async def test_counters_go_to_the_given_cache_else_app_state_cache() -> None:
    given, installed = MemoryCache(), MemoryCache()
    app = make_app(RateLimit("5/minute", cache=given, clock=Clock()))
    app.state.cache = installed
    with TestClient(app) as client:
        client.get("/limited")
    assert len(given._entries) == 1 and not installed._entries

    app = make_app(RateLimit("5/minute", clock=Clock()))
    app.state.cache = installed
    with TestClient(app) as client:
        client.get("/limited")
    ((key, _),) = installed._entries.items()
    assert key.startswith("trellis:ratelimit:") and key.endswith(":60:16667")  # the minute


async def test_without_a_cache_counts_in_the_process_and_windows_expire() -> None:
    limit = RateLimit("1/minute", clock=Clock())
    counter = limit.counter_for(HTTPConnection({"type": "http", "headers": []}))
    assert await counter.incr("k", ttl=0.01) == 1
    assert await counter.incr("k", ttl=0.01) == 2
    import anyio

    await anyio.sleep(0.02)
    assert await counter.incr("k", ttl=0.01) == 1  # a new window


class Broken:
    async def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        raise ConnectionError("redis is down")


def test_a_failing_cache_fails_the_request_unless_fail_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(RateLimit("1/minute", cache=Broken()))
    with TestClient(app) as client:
        assert client.get("/limited").status_code == 500
    app = make_app(RateLimit("1/minute", cache=Broken(), fail_open=True, name="open"))
    with TestClient(app) as client, caplog.at_level(logging.WARNING, "trellis.ratelimit"):
        assert client.get("/limited").status_code == 200
    assert "rate limit open: the cache failed" in caplog.text


# -- pieces -----------------------------------------------------------------------------------


def test_usage_and_error() -> None:
    usage = Usage(limit=10, count=4, reset=30)
    assert not usage.exceeded and usage.remaining == 6
    assert usage.headers() == [
        ("RateLimit-Limit", "10"),
        ("RateLimit-Remaining", "6"),
        ("RateLimit-Reset", "30"),
    ]
    over = Usage(limit=10, count=11, reset=1)
    error = RateLimitedError(over)
    assert error.status == 429 and error.usage is over
    assert error.detail == "Too many requests. Try again in 1 second."
    assert ("Retry-After", "1") in error.headers
    assert RateLimitedError(over, "Slow down.").detail == "Slow down."


def test_openapi_documents_the_429() -> None:
    app = make_app(RateLimit("1/minute"))
    paths = app.openapi()["paths"]
    responses = paths["/limited"]["get"]["responses"]
    assert responses["429"]["description"].startswith("Too many requests")
    assert "application/problem+json" in responses["429"]["content"]
    assert "429" not in paths["/free"]["get"]["responses"]
