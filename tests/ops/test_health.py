"""Liveness and readiness: the database, Redis stores and checks of the user's."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

import anyio
import pytest

from trellis import App
from trellis.contrib.db import Database
from trellis.contrib.ops import Health
from trellis.contrib.ops.health import Check
from trellis.contrib.redis import RedisCache, RedisSessionStore
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient

REDIS_ENV = "TRELLIS_TEST_REDIS_URL"


def make_app(*plugins: object) -> App:
    app = App(debug=True)
    for plugin in plugins:
        app.install(plugin)
    return app


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def test_liveness_answers_ok_and_touches_nothing(closed_port: int) -> None:
    app = make_app(Health())
    # A store that is down does not make the process dead.
    app.state.cache = RedisCache(f"redis://127.0.0.1:{closed_port}/0", connect_timeout=0.5)
    with TestClient(app) as client:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"
        assert client.head("/healthz").status_code == 200


def test_readiness_without_checks_is_ready() -> None:
    with TestClient(make_app(Health())) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


def test_readiness_with_sqlite_database(sqlite_url: str) -> None:
    app = make_app(Database(sqlite_url), Health())
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_readiness_names_every_database(sqlite_url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    app = make_app(Database(sqlite_url, binds={"archive": other}), Health())
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"] == {
            "database": "ok",
            "database:archive": "ok",
        }


def test_unreachable_postgresql_is_503_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "postgresql://app:hunter2secret@127.0.0.1:1/shop"
    app = make_app(Database(url, check_on_startup=False, connect_timeout=1), Health())
    with caplog.at_level(logging.INFO, "trellis.ops"), TestClient(app) as client:
        response = client.get("/readyz")
        again = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "failed"},
        "failed": ["database"],
    }
    assert again.status_code == 503
    assert "hunter2secret" not in response.text
    assert "127.0.0.1" not in response.text  # the answer does not map the network either
    # The reason is in the log, once (not at every probe), with the password hidden.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'database': failed" in warnings[0]
    assert "127.0.0.1:1/shop" in warnings[0]
    assert "hunter2secret" not in caplog.text


def test_user_checks_pass_fail_time_out_and_crash(caplog: pytest.LogCaptureFixture) -> None:
    async def queue() -> bool:
        return True

    async def disk() -> str:
        return "ok"

    async def search() -> str:
        return "the index is rebuilding"

    async def payments() -> bool:
        await anyio.sleep(5)
        return True

    async def mail() -> bool:
        raise ConnectionRefusedError("smtp down")

    checks: list[Check] = [queue, disk, search, payments, mail]
    app = make_app(Health(checks=checks, timeout=0.2))
    with caplog.at_level(logging.WARNING, "trellis.ops"), TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {
        "queue": "ok",
        "disk": "ok",
        "search": "failed",
        "payments": "timeout",
        "mail": "error",
    }
    assert body["failed"] == ["search", "payments", "mail"]
    assert "rebuilding" in caplog.text
    assert "no answer within 0.2 s" in caplog.text
    assert "ConnectionRefusedError: smtp down" in caplog.text


def test_checks_run_concurrently() -> None:
    async def slow() -> bool:
        await anyio.sleep(0.3)
        return True

    checks = {f"slow{i}": slow for i in range(5)}
    app = make_app(Health(checks=checks))
    with TestClient(app) as client:
        start = time.perf_counter()
        response = client.get("/readyz")
        elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert elapsed < 1.0  # five checks of 0.3 s each, side by side


def test_recovery_is_logged_and_the_answer_turns_ready(caplog: pytest.LogCaptureFixture) -> None:
    healthy = False

    async def upstream() -> bool:
        return healthy

    app = make_app(Health(checks=[upstream]))
    with caplog.at_level(logging.INFO, "trellis.ops"), TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
        healthy = True
        assert client.get("/readyz").status_code == 200
    assert "readiness check 'upstream' passes again" in caplog.text


def test_prefix_and_paths_and_left_out_of_openapi() -> None:
    app = make_app(Health(prefix="/-", liveness="/live", readiness="/ready"))

    @app.get("/items")
    async def items() -> list[int]:
        return []

    with TestClient(app) as client:
        assert client.get("/-/live").status_code == 200
        assert client.get("/-/ready").status_code == 200
        assert client.get("/healthz").status_code == 404
    assert set(app.openapi()["paths"]) == {"/items"}
    assert app.url_for("ops.readiness") == "/-/ready"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"liveness": "healthz"}, "starts with '/'"),
        ({"prefix": "ops"}, "a prefix starts with '/'"),
        ({"prefix": "/ops/"}, "does not end with one"),
        ({"timeout": 0}, "positive"),
        ({"checks": {"x": 3}}, "not callable"),
    ],
)
def test_mistakes_are_reported_at_once(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Health(**kwargs)  # type: ignore[arg-type]


def test_two_checks_with_one_name_need_a_mapping() -> None:
    async def check() -> bool:
        return True

    twin = check

    with pytest.raises(ConfigurationError, match="two readiness checks are named 'check'"):
        Health(checks=[check, twin])


def test_one_health_per_app() -> None:
    app = make_app(Health())
    with pytest.raises(ConfigurationError, match="already has a Health"):
        app.install(Health())


# -- Redis --------------------------------------------------------------------------------------


def test_redis_on_a_closed_port_is_503(closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(Health())
    # Not installed (an installed store refuses to start without Redis): Redis went away
    # after start-up, as in a restart during traffic.
    url = f"redis://:s3cretpw@127.0.0.1:{closed_port}/0"
    app.state.cache = RedisCache(url, connect_timeout=0.5)
    app.state.session_store = RedisSessionStore(url, connect_timeout=0.5)
    with caplog.at_level(logging.WARNING, "trellis.ops"), TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"cache": "failed", "session_store": "failed"}
    assert "s3cretpw" not in response.text
    assert "s3cretpw" not in caplog.text
    assert f"127.0.0.1:{closed_port}" in caplog.text


def test_a_redis_that_does_not_answer_in_time_is_a_timeout() -> None:
    class Hanging:
        async def ping(self) -> bool:
            await anyio.sleep(10)
            return True

    app = make_app(Health(timeout=0.1))
    app.state.broadcast = Hanging()
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"broadcast": "timeout"}


def test_a_store_under_two_names_is_checked_once() -> None:
    calls = 0

    class Store:
        async def ping(self) -> bool:
            nonlocal calls
            calls += 1
            return True

    app = make_app(Health())
    app.state.cache = app.state.rate_limits = Store()
    app.state.not_a_store = object()
    with TestClient(app) as client:
        assert client.get("/readyz").json()["checks"] == {"cache": "ok"}
    assert calls == 1


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: no Redis server to test against")
    return url


def test_readiness_with_real_redis_and_database(redis_url: str, sqlite_url: str) -> None:
    app = make_app(
        Database(sqlite_url),
        RedisCache(redis_url, prefix="trellis-test-ops:"),
        RedisSessionStore(redis_url, prefix="trellis-test-ops-s:"),
        Health(),
    )
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "session_store": "ok"},
    }
