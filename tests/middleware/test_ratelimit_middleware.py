"""RateLimitMiddleware: every request counted, headers on every response, 429 when over."""

from __future__ import annotations

from typing import Any

import pytest

from trellis import App
from trellis.exceptions import ConfigurationError
from trellis.http.connection import HTTPConnection
from trellis.middleware import RateLimitMiddleware
from trellis.testing import TestClient
from trellis.types import Receive, Scope, Send
from trellis.websockets import WebSocket


class Clock:
    def __init__(self, now: float = 1_000_040.0) -> None:  # 20 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(**options: Any) -> App:
    app = App(debug=True, trusted_proxies=["*"])
    app.add_middleware(RateLimitMiddleware, **options)

    @app.get("/")
    async def home() -> str:
        return "home"

    @app.get("/health")
    async def health() -> str:
        return "up"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    return app


def test_every_response_carries_the_headers_and_the_app_answers_429_when_over() -> None:
    clock = Clock()
    with TestClient(make_app(rate="2/minute", clock=clock)) as client:
        first = client.get("/")
        assert first.text == "home"
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert first.headers["ratelimit-reset"] == "40"
        assert "retry-after" not in first.headers
        assert client.get("/nowhere").headers["ratelimit-remaining"] == "0"  # 404s count too
        refused = client.get("/")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "40"
        assert refused.headers["ratelimit-remaining"] == "0"
        clock.now += 40  # the next minute
        assert client.get("/").headers["ratelimit-remaining"] == "1"


def test_per_address_exclusions_websockets_and_exempt_keys() -> None:
    def key(conn: HTTPConnection) -> str | None:
        return None if conn.headers.get("x-staff") else conn.client[0] if conn.client else None

    app = make_app(rate="1/minute", exclude=["/health"], key=key, clock=Clock())
    with TestClient(app) as client:
        a = {"x-forwarded-for": "203.0.113.1"}
        assert client.get("/", headers=a).status_code == 200
        assert client.get("/", headers=a).status_code == 429
        assert client.get("/", headers={"x-forwarded-for": "203.0.113.2"}).status_code == 200
        health = client.get("/health", headers=a)
        assert health.status_code == 200 and "ratelimit-limit" not in health.headers
        staff = client.get("/", headers={**a, "x-staff": "1"})
        assert staff.status_code == 200 and "ratelimit-limit" not in staff.headers
        with client.websocket_connect("/ws", headers=a) as ws:  # websockets are not counted
            assert ws.receive_text() == "hi"


def test_options_are_checked_when_the_stack_is_built() -> None:
    app = make_app(rate="often")
    with pytest.raises(ConfigurationError, match="RateLimitMiddleware: not a rate: 'often'"):
        app.build()
    with pytest.raises(ConfigurationError, match="exclude is a list"):
        RateLimitMiddleware(make_app(rate="1/s"), rate="1/s", exclude="/health")


def test_outside_a_trellis_app_it_answers_plain_text() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    # No `with`: a bare app has no lifespan.
    client = TestClient(RateLimitMiddleware(bare, rate="1/minute", clock=Clock()))
    assert client.get("/").headers["ratelimit-remaining"] == "0"
    refused = client.get("/")
    assert refused.status_code == 429
    assert refused.text == "Too many requests. Try again in 40 seconds."
    assert refused.headers["retry-after"] == "40"


def test_a_route_limit_refusing_keeps_its_own_headers() -> None:
    from trellis.ratelimit import RateLimit

    app = App(debug=True)
    app.add_middleware(RateLimitMiddleware, rate="100/minute", clock=Clock())

    @app.get("/tight", dependencies=[RateLimit("1/minute", clock=Clock())])
    async def tight() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/tight").headers["ratelimit-limit"] == "100"
        refused = client.get("/tight")
        assert refused.status_code == 429
        assert refused.headers.get_list("ratelimit-limit") == ["1"]
