"""Redis going down and coming back under a running server: 503s, not 500s; no restart.

A private ``redis-server`` (password protected, nothing saved) serves the sessions, the cache
and the rate limits of a real ``trellis run`` server. It is killed in the middle of the test,
then started again on the same port.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.exceptions

from deploy_helpers import (
    REDIS_SERVER,
    SECRET,
    PrivateRedis,
    Process,
    free_port,
    server_env,
    trellis,
)
from trellis import App
from trellis.channels import Channels
from trellis.contrib.redis import RedisCache, RedisChannels
from trellis.middleware.ratelimit import RateLimitMiddleware
from trellis.testing import TestClient

needs_redis_server = pytest.mark.skipif(
    not os.path.exists(REDIS_SERVER), reason=f"needs {REDIS_SERVER} (apt-get install redis-server)"
)

PASSWORD = "s3cret-redis-pass"
DETAIL = "A service this application depends on is unavailable."

APP = """
    import os

    from trellis import App, Request
    from trellis.contrib.ops import Health
    from trellis.contrib.redis import RedisCache, RedisSessionStore
    from trellis.ratelimit import RateLimit

    URL = os.environ["OUTAGE_REDIS_URL"]
    app = App()
    cache = app.install(RedisCache(URL))
    app.install(RedisSessionStore(URL))
    app.install(Health(timeout=1.0))


    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"status": "fine"}


    @app.post("/login", csrf=False)
    async def login(request: Request) -> dict[str, str]:
        request.session["user"] = "ada"
        return {"user": "ada"}


    @app.get("/me")
    async def me(request: Request) -> dict[str, object]:
        return {"user": request.session.get("user")}


    @app.get("/hits")
    async def hits() -> dict[str, int]:
        return {"hits": await cache.incr("hits")}


    @app.get("/limited", dependencies=[RateLimit("1000/minute")])
    async def limited() -> dict[str, str]:
        return {"status": "counted"}
"""


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    with PrivateRedis(directory, password=PASSWORD) as server:
        yield server


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


@needs_redis_server
@pytest.mark.server
def test_a_redis_outage_is_503_for_what_needs_redis_and_heals_without_restart(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    env = server_env(OUTAGE_REDIS_URL=private_redis.url)
    command = trellis("run", "app:app", "--port", str(port), "--log-level", "info")
    with Process(command, cwd=tmp_path, name="trellis", env=env) as server:
        server.wait_listening(port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            assert client.post("/login").status_code == 200
            assert "session" in client.cookies
            assert client.get("/me").json() == {"user": "ada"}
            assert client.get("/hits").json() == {"hits": 1}
            assert client.get("/limited").status_code == 200
            assert client.get("/readyz").status_code == 200

            private_redis.kill()

            for path in ("/me", "/hits", "/limited"):
                response, took = timed_get(client, path)
                assert response.status_code == 503, (path, response.text)
                assert took < 4, f"{path} took {took:.1f} s to fail"
                assert response.headers["retry-after"] == "5"
                assert response.headers["content-type"] == "application/problem+json"
                problem = response.json()
                assert problem["status"] == 503
                assert problem["detail"] == DETAIL
                assert "redis" not in response.text.lower()
                assert "127.0.0.1" not in response.text
            # A request that needs no Redis is served, though it carries the session cookie.
            response, took = timed_get(client, "/plain")
            assert response.status_code == 200 and response.json() == {"status": "fine"}
            assert took < 4
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert set(ready.json()["failed"]) == {"cache", "session_store"}
            # A browser gets the same as a page.
            page = client.get("/hits", headers={"accept": "text/html"})
            assert page.status_code == 503
            assert page.headers["content-type"].startswith("text/html")
            assert DETAIL in page.text

            private_redis.start()  # same port, empty (nothing was saved)

            deadline = time.monotonic() + 10
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again 10 s after Redis came back"
                time.sleep(0.1)
            # Every pooled connection died with the old server; none of them costs a request.
            for _ in range(5):
                assert client.get("/hits").status_code == 200
            assert client.get("/hits").json() == {"hits": 6}  # a new Redis: counted from 0
            assert client.get("/limited").status_code == 200
            # The session died with the data: the visitor is anonymous, not refused.
            assert client.get("/me").json() == {"user": None}
            assert client.post("/login").status_code == 200
            assert client.get("/me").json() == {"user": "ada"}

            # A quick restart with no request in between: the pooled connections are stale,
            # and the first command on each is retried on a new connection, not failed.
            private_redis.kill()
            private_redis.start()
            assert client.get("/hits").json() == {"hits": 1}
            assert client.get("/me").json() == {"user": None}
        output = server.output
    # The log names the Redis error for the operator, and never the password.
    assert "Redis is unavailable: GET /hits answered 503 (ConnectionError: Error 111" in output
    assert "the session could not be loaded (ConnectionError" in output
    assert PASSWORD not in output
    assert "Traceback" not in output


def test_the_rate_limit_middleware_answers_503_when_its_redis_is_down(
    redis_url: str, prefix: str, closed_port: int
) -> None:
    app = App(debug=False, secret_key=SECRET)
    app.install(RedisCache(redis_url, prefix=prefix))  # reachable: the app starts
    down = RedisCache(f"redis://:{PASSWORD}@127.0.0.1:{closed_port}/0", connect_timeout=1)
    app.add_middleware(RateLimitMiddleware, rate="10/minute", cache=down)

    @app.get("/")
    async def index() -> str:
        return "ok"

    with TestClient(app) as client:
        response = client.get("/")
    assert response.status_code == 503
    assert response.json()["detail"] == DETAIL
    assert response.headers["retry-after"] == "5"


def test_the_applications_own_handler_wins(redis_url: str, prefix: str) -> None:
    app = App(debug=False, secret_key=SECRET)

    @app.exception_handler(redis.exceptions.ConnectionError)
    async def mine(request: object, exc: Exception) -> dict[str, str]:
        return {"handled": "by the app"}

    app.install(RedisCache(redis_url, prefix=prefix))

    @app.get("/")
    async def index() -> str:
        raise redis.exceptions.ConnectionError("gone")

    @app.get("/slow")
    async def slow() -> str:
        raise redis.exceptions.TimeoutError("Timeout reading from 127.0.0.1:6379")

    with TestClient(app) as client:
        assert client.get("/").json() == {"handled": "by the app"}
        assert client.get("/slow").status_code == 503


def test_channels_alone_make_redis_outages_503(redis_url: str, prefix: str) -> None:
    # No Redis store installed: the channels backend installs the outage handler itself.
    app = App(debug=False, secret_key=SECRET)
    app.install(Channels(RedisChannels(redis_url, prefix=prefix)))

    @app.post("/announce")
    async def announce() -> str:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    with TestClient(app) as client:
        response = client.post("/announce")
    assert response.status_code == 503
    assert response.json()["detail"] == DETAIL
    assert response.headers["retry-after"] == "5"
