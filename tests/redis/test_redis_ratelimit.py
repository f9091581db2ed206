"""Rate limits counted in Redis hold across processes: two apps stand for two workers."""

from __future__ import annotations

from trellis import App
from trellis.contrib.redis import RedisCache
from trellis.middleware import RateLimitMiddleware
from trellis.ratelimit import RateLimit
from trellis.testing import TestClient


class Clock:
    def __call__(self) -> float:
        return 1_000_040.0  # 20 s into a minute


def worker(redis_url: str, prefix: str) -> App:
    """One worker process: its own app, its own Redis connection, the same limits."""
    app = App(debug=True)
    app.install(RedisCache(redis_url, prefix=prefix))
    app.add_middleware(RateLimitMiddleware, rate="5/minute", clock=Clock())

    @app.get("/search", dependencies=[RateLimit("3/minute", name="search", clock=Clock())])
    async def search() -> str:
        return "results"

    @app.get("/")
    async def home() -> str:
        return "home"

    return app


def test_a_limit_counts_requests_to_both_workers(redis_url: str, prefix: str) -> None:
    with (
        TestClient(worker(redis_url, prefix)) as one,
        TestClient(worker(redis_url, prefix)) as two,
    ):
        assert one.get("/search").status_code == 200
        assert two.get("/search").status_code == 200
        assert one.get("/search").status_code == 200
        refused = two.get("/search")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "40"
        assert refused.headers["ratelimit-limit"] == "3"  # the route's limit, not the app's
        # the app-wide limit saw all four, through either worker
        assert one.get("/").headers["ratelimit-remaining"] == "0"
        assert two.get("/").status_code == 429
