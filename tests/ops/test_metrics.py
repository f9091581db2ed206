"""Prometheus metrics: counts by route template, latency, in flight, exceptions, processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from trellis import App
from trellis.contrib.ops import Metrics
from trellis.contrib.ops.metrics import MULTIPROC_ENV, PrometheusMiddleware
from trellis.exceptions import ConfigurationError
from trellis.testing import TestClient
from trellis.websockets import WebSocket


def make_app(metrics: Metrics | None = None) -> tuple[App, Metrics]:
    app = App(debug=True)
    metrics = app.install(metrics or Metrics())

    @app.get("/users/{id:int}")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}

    @app.post("/users")
    async def create() -> dict[str, int]:
        return {"id": 1}

    @app.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("no")

    return app, metrics


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def scraped(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_template_not_path() -> None:
    app, metrics = make_app()
    with TestClient(app) as client:
        for id in (1, 2, 3):
            assert client.get(f"/users/{id}").status_code == 200
        assert client.post("/users").status_code == 200
    assert value(metrics, "trellis_requests_total", method="GET", route="/users/{id}", status="200")
    assert (
        value(metrics, "trellis_requests_total", method="GET", route="/users/{id}", status="200")
        == 3
    )
    assert (
        value(metrics, "trellis_requests_total", method="POST", route="/users", status="200") == 1
    )
    families = {f.name: f for f in metrics.registry.collect()}
    routes = {s.labels["route"] for s in families["trellis_requests"].samples}
    assert routes == {"/users/{id}", "/users"}  # never /users/1, /users/2 ...


def test_unmatched_requests_share_one_label() -> None:
    app, metrics = make_app()
    with TestClient(app) as client:
        for path in ("/nope", "/users/abc", "/x/y/z", "/nope/2"):
            assert client.get(path).status_code == 404
        assert client.delete("/users/7").status_code == 405  # the route, another method
    assert (
        value(metrics, "trellis_requests_total", method="GET", route="<unmatched>", status="404")
        == 4
    )
    assert (
        value(metrics, "trellis_requests_total", method="DELETE", route="/users/{id}", status="405")
        == 1
    )


def test_unknown_methods_are_counted_as_other() -> None:
    app, metrics = make_app()
    with TestClient(app) as client:
        client.request("BREW", "/users/1")
    samples = [
        s.labels for f in metrics.registry.collect() for s in f.samples if "method" in s.labels
    ]
    assert {labels["method"] for labels in samples} == {"OTHER"}


def test_exceptions_are_counted_by_route_and_type() -> None:
    app, metrics = make_app()
    with TestClient(app) as client:
        assert client.get("/boom").status_code == 500
        assert client.get("/boom").status_code == 500
    assert value(metrics, "trellis_exceptions_total", route="/boom", type="ZeroDivisionError") == 2
    assert value(metrics, "trellis_requests_total", method="GET", route="/boom", status="500") == 2


def test_http_errors_are_not_exceptions() -> None:
    app, metrics = make_app()
    with TestClient(app) as client:
        client.get("/nope")
    assert not [s for f in metrics.exceptions.collect() for s in f.samples if s.value]


@pytest.mark.anyio
async def test_a_crash_after_the_response_started_is_counted_once() -> None:
    metrics = Metrics()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionResetError("the database went away mid-stream")

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    middleware = PrometheusMiddleware(streaming, metrics=metrics)
    scope = {"type": "http", "method": "GET", "path": "/export", "headers": []}
    with pytest.raises(ConnectionResetError):
        await middleware(scope, receive, send)
    assert (
        value(metrics, "trellis_exceptions_total", route="<unmatched>", type="ConnectionResetError")
        == 1
    )
    labels = {"method": "GET", "route": "<unmatched>", "status": "200"}
    assert value(metrics, "trellis_requests_total", **labels) == 1
    assert metrics.in_progress._value.get() == 0


def test_latency_histogram_buckets() -> None:
    app, metrics = make_app(Metrics(buckets=(0.01, 0.1, 1.0)))

    @app.get("/slow")
    async def slow() -> str:
        await anyio.sleep(0.05)
        return "done"

    with TestClient(app) as client:
        client.get("/slow")
        client.get("/users/1")
    name = "trellis_request_duration_seconds_bucket"
    assert value(metrics, name, method="GET", route="/slow", le="0.01") == 0
    assert value(metrics, name, method="GET", route="/slow", le="0.1") == 1
    assert value(metrics, name, method="GET", route="/slow", le="+Inf") == 1
    assert value(metrics, name, method="GET", route="/users/{id}", le="0.01") == 1
    total = value(metrics, "trellis_request_duration_seconds_sum", method="GET", route="/slow")
    assert total is not None and 0.05 <= total < 1.0
    count = value(metrics, "trellis_request_duration_seconds_count", method="GET", route="/slow")
    assert count == 1


def test_requests_in_progress() -> None:
    app, metrics = make_app()
    seen: list[float | None] = []

    @app.get("/inside")
    async def inside() -> str:
        seen.append(value(metrics, "trellis_requests_in_progress"))
        return "ok"

    with TestClient(app) as client:
        client.get("/inside")
    assert seen == [1.0]
    assert value(metrics, "trellis_requests_in_progress") == 0


def test_the_metrics_route_serves_the_text_format() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        client.get("/users/5")
        response = client.get("/metrics")
        openmetrics = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["cache-control"] == "no-store"
    samples = scraped(response.text)
    key = frozenset({"method": "GET", "route": "/users/{id}", "status": "200"}.items())
    assert samples[("trellis_requests_total", key)] == 1
    # Beside Trellis's own: prometheus_client's default registry (process, GC, yours).
    assert any(name.startswith("python_gc_") for name, _ in samples)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")
    assert "/metrics" not in app.openapi()["paths"]


def test_the_metrics_route_is_counted_too() -> None:
    app, _ = make_app(Metrics(path="/-/metrics"))
    with TestClient(app) as client:
        client.get("/-/metrics")
        text = client.get("/-/metrics").text
    key = frozenset({"method": "GET", "route": "/-/metrics", "status": "200"}.items())
    assert scraped(text)[("trellis_requests_total", key)] == 1


def test_metrics_of_your_own_in_the_default_registry_are_served() -> None:
    orders = Counter("shop_orders", "Orders placed.")
    try:
        orders.inc(4)
        app, _ = make_app()
        with TestClient(app) as client:
            samples = scraped(client.get("/metrics").text)
        assert samples[("shop_orders_total", frozenset())] == 4
    finally:
        REGISTRY.unregister(orders)


def test_a_registry_of_yours_is_used_and_served_alone() -> None:
    registry = CollectorRegistry()
    app, metrics = make_app(Metrics(registry=registry))
    assert metrics.registry is registry
    with TestClient(app) as client:
        client.get("/users/1")
        samples = scraped(client.get("/metrics").text)
    assert not any(name.startswith("python_gc_") for name, _ in samples)
    key = frozenset({"method": "GET", "route": "/users/{id}", "status": "200"}.items())
    assert samples[("trellis_requests_total", key)] == 1
    assert registry.get_sample_value("trellis_requests_total", dict(key)) == 1


def test_mounted_apps_are_labelled_by_their_mount() -> None:
    app, metrics = make_app()
    legacy = App(debug=True)

    @legacy.get("/orders/{id}")
    async def order(id: str) -> str:
        return id

    app.mount("/legacy", legacy)
    with TestClient(app) as client:
        assert client.get("/legacy/orders/1").status_code == 200
        assert client.get("/legacy/orders/2").status_code == 200
    labels = {"method": "GET", "route": "/legacy/*", "status": "200"}
    assert value(metrics, "trellis_requests_total", **labels) == 2


def test_routes_of_a_host_are_labelled() -> None:
    app, metrics = make_app()

    @app.get("/docs/{page}", host="api.example.com")
    async def docs(page: str) -> str:
        return page

    with TestClient(app, base_url="http://api.example.com") as client:
        assert client.get("/docs/intro").status_code == 200
    labels = {"method": "GET", "route": "/docs/{page}", "status": "200"}
    assert value(metrics, "trellis_requests_total", **labels) == 1


def test_websockets_pass_through_uncounted() -> None:
    app, metrics = make_app()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws") as conn:
        assert conn.receive_text() == "hi"
    assert not [s for f in metrics.requests.collect() for s in f.samples if s.value]


def test_mistakes_are_reported() -> None:
    with pytest.raises(ConfigurationError, match="starts with '/'"):
        Metrics(path="metrics")
    app, _ = make_app()
    with pytest.raises(ConfigurationError, match="already has a Metrics"):
        app.install(Metrics())


def test_a_multiprocess_dir_that_is_missing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="is not a directory"):
        Metrics()


# -- several processes --------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from trellis import App
    from trellis.contrib.ops import Metrics
    from trellis.testing import TestClient

    app = App(debug=True)
    app.install(Metrics())

    @app.get("/users/{id:int}")
    async def user(id: int) -> int:
        return id

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("x")

    with TestClient(app) as client:
        for id in range(int(sys.argv[1])):
            assert client.get(f"/users/{id}").status_code == 200
        assert client.get("/boom").status_code == 500
        assert client.get("/nope").status_code == 404
    """
)


def test_multiprocess_mode_adds_up_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, MULTIPROC_ENV: str(directory), "TRELLIS_DEBUG": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(n)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in (3, 5)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err.decode()
    assert list(directory.glob("counter_*.db"))
    # Each worker, stopping, took its "live" gauge out of the sum.
    assert not list(directory.glob("gauge_livesum_*.db"))

    # A third app serves /metrics: what both workers wrote (this process's own metrics
    # stay in memory: prometheus_client was imported here before the variable was set).
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    app, metrics = make_app()
    assert metrics.multiprocess_dir == str(directory)
    with TestClient(app) as client:
        samples = scraped(client.get("/metrics").text)

    def sample(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert sample("trellis_requests_total", method="GET", route="/users/{id}", status="200") == 8
    assert sample("trellis_requests_total", method="GET", route="<unmatched>", status="404") == 2
    assert sample("trellis_exceptions_total", route="/boom", type="KeyError") == 2
    histogram = "trellis_request_duration_seconds_count"
    assert sample(histogram, method="GET", route="/users/{id}") == 8
    bucket = "trellis_request_duration_seconds_bucket"
    assert sample(bucket, method="GET", route="/users/{id}", le="+Inf") == 8
    # Nothing of the default registry: in multi-process mode only the files count.
    assert not any(name.startswith("python_gc_") for name, _ in samples)
    assert "was not when prometheus_client was imported" in caplog.text
