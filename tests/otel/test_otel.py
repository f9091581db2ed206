"""``trellis.contrib.otel``: spans, metrics and log correlation, recorded by the SDK in memory."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from trellis import App, HTTPError, Request, StreamingResponse
from trellis.contrib.otel import OpenTelemetry
from trellis.exceptions import ConfigurationError
from trellis.logging import JSONFormatter
from trellis.testing import TestClient
from trellis.websockets import WebSocket

log = logging.getLogger("tests.otel.app")


class Recorded:
    """An app with OpenTelemetry installed, and what its providers recorded."""

    def __init__(self, **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        settings = {"request_id_header": True, **options.pop("settings", {})}
        self.app = App(debug=True, **settings)
        self.telemetry = OpenTelemetry(
            tracer_provider=tracer_provider, meter_provider=meter_provider, **options
        )
        self.app.install(self.telemetry)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def durations(self) -> list[tuple[dict[str, Any], int]]:
        """(attributes, count) of every http.server.request.duration point."""
        data = self.reader.get_metrics_data()
        if data is None:  # nothing recorded at all
            return []
        found: list[tuple[dict[str, Any], int]] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.server.request.duration":
                        assert metric.unit == "s"
                        for point in metric.data.data_points:
                            assert isinstance(point, HistogramDataPoint)
                            found.append((dict(point.attributes or {}), point.count))
        return found


@pytest.fixture
def recorded() -> Recorded:
    rec = Recorded()
    app = rec.app

    @app.get("/users/{id:int}")
    async def user(id: int) -> dict[str, int]:
        return {"id": id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the database is on fire")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPError(503, "come back later")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPError(404)

    return rec


def test_a_server_span_per_request_with_the_semantic_conventions(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        response = client.get("/users/7?verbose=1", headers={"user-agent": "probe/1.0"})
    assert response.status_code == 200
    span = recorded.only_span()
    assert span.name == "GET /users/{id}"
    assert span.kind is SpanKind.SERVER
    assert span.parent is None
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "trellis.contrib.otel"
    attributes = dict(span.attributes or {})
    assert attributes == {
        "http.request.method": "GET",
        "url.path": "/users/7",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "server.address": "testserver",
        "server.port": 80,
        "client.address": "testclient",
        "network.peer.address": "testclient",
        "network.peer.port": 50000,
        "user_agent.original": "probe/1.0",
        "http.route": "/users/{id}",
        "http.response.status_code": 200,
    }


def test_not_found_has_no_route_and_is_no_server_error(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        assert client.get("/nowhere/42").status_code == 404
        assert client.get("/missing").status_code == 404
    nowhere, missing = recorded.spans()
    assert nowhere.name == "GET"  # no route: the raw path would make a name per URL
    assert "http.route" not in (nowhere.attributes or {})
    assert missing.name == "GET /missing"
    for span in (nowhere, missing):
        assert (span.attributes or {})["http.response.status_code"] == 404
        assert span.status.status_code is StatusCode.UNSET
        assert "error.type" not in (span.attributes or {})


def test_an_unhandled_exception_is_recorded_on_the_span(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    span = recorded.only_span()
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "RuntimeError"
    assert attributes["http.response.status_code"] == 500
    [event] = span.events
    assert event.name == "exception"
    assert (event.attributes or {})["exception.type"] == "RuntimeError"
    assert (event.attributes or {})["exception.message"] == "the database is on fire"


def test_a_5xx_without_exception_has_its_status_as_error_type(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        assert client.get("/unavailable").status_code == 503
    span = recorded.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "503"
    assert not span.events


def test_the_span_joins_the_callers_trace(recorded: Recorded) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent_id = "00f067aa0ba902b7"
    with TestClient(recorded.app) as client:
        client.get("/users/1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        client.get("/users/2", headers={"traceparent": "not a trace parent"})
    joined, fresh = recorded.spans()
    assert format_trace_id(joined.context.trace_id) == trace_id
    assert joined.parent is not None and joined.parent.is_remote
    assert format_span_id(joined.parent.span_id) == parent_id
    assert fresh.parent is None  # an invalid header starts a new trace
    assert format_trace_id(fresh.context.trace_id) != trace_id


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)


def test_log_lines_inside_the_span_carry_trace_and_span_ids(json_lines: io.StringIO) -> None:
    recorded = Recorded()

    @recorded.app.get("/work")
    def work() -> str:  # sync: runs in the thread pool, still inside the span
        log.info("working", extra={"step": 1})
        return "done"

    with TestClient(recorded.app) as client:
        response = client.get("/work")
    log.info("outside")
    inside, outside = (json.loads(line) for line in json_lines.getvalue().splitlines())
    span = recorded.only_span()
    assert inside["trace_id"] == format_trace_id(span.context.trace_id)
    assert inside["span_id"] == format_span_id(span.context.span_id)
    assert inside["request_id"] == response.headers["x-request-id"]
    assert inside["step"] == 1
    keys = list(inside)
    assert keys[keys.index("request_id") + 1 : keys.index("request_id") + 3] == [
        "trace_id",
        "span_id",
    ]
    assert "trace_id" not in outside and outside["request_id"] is None


def test_excluded_paths_are_not_traced_or_measured() -> None:
    recorded = Recorded(excluded_paths=("/healthz", "/static/"))
    for path in ("/healthz", "/healthz/db", "/healthzz", "/static/app.css"):
        recorded.app.get(path, name=path)(lambda: "ok")
    with TestClient(recorded.app) as client:
        for path in ("/healthz", "/healthz/db", "/healthzz", "/static/app.css"):
            assert client.get(path).status_code == 200
    assert [s.name for s in recorded.spans()] == ["GET /healthzz"]
    assert [attrs["http.route"] for attrs, _ in recorded.durations()] == ["/healthzz"]


def test_request_duration_histogram(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        client.get("/users/1")
        client.get("/users/2")
        client.get("/boom")
    points = sorted(recorded.durations(), key=lambda p: str(p[0].get("http.route")))
    assert points == [
        (
            {
                "http.request.method": "GET",
                "url.scheme": "http",
                "network.protocol.name": "http",
                "network.protocol.version": "1.1",
                "http.route": "/boom",
                "http.response.status_code": 500,
                "error.type": "RuntimeError",
            },
            1,
        ),
        (
            {
                "http.request.method": "GET",
                "url.scheme": "http",
                "network.protocol.name": "http",
                "network.protocol.version": "1.1",
                "http.route": "/users/{id}",
                "http.response.status_code": 200,
            },
            2,
        ),
    ]


def test_unknown_methods_cannot_make_new_names(recorded: Recorded) -> None:
    with TestClient(recorded.app) as client:
        assert client.request("BREW", "/users/1").status_code == 405
    span = recorded.only_span()
    assert span.name == "HTTP /users/{id}"
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "_OTHER"
    assert attributes["http.request.method_original"] == "BREW"


def test_websockets_get_a_span_for_the_whole_connection() -> None:
    recorded = Recorded()

    @recorded.app.websocket("/ws/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.send_text(room)
        await websocket.close()

    with TestClient(recorded.app) as client, client.websocket_connect("/ws/lobby") as ws:
        assert ws.receive_text() == "lobby"
    span = recorded.only_span()
    assert span.name == "GET /ws/{room}"
    attributes = dict(span.attributes or {})
    assert attributes["url.scheme"] == "ws"
    assert attributes["http.response.status_code"] == 101
    assert recorded.durations() == []  # the histogram is for HTTP requests


def test_client_address_behind_a_trusted_proxy() -> None:
    recorded = Recorded(settings={"trusted_proxies": ["*"]})
    recorded.app.get("/")(lambda: "ok")
    with TestClient(recorded.app) as client:
        client.get(
            "/",
            headers={
                "x-forwarded-for": "203.0.113.9",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "shop.example.com",
            },
        )
    attributes = dict(recorded.only_span().attributes or {})
    assert attributes["url.scheme"] == "https"
    assert attributes["server.address"] == "shop.example.com"
    assert attributes["server.port"] == 443


def test_an_error_after_the_response_started_is_recorded() -> None:
    recorded = Recorded()

    async def chunks() -> Any:
        yield b"first"
        raise RuntimeError("lost the stream")

    @recorded.app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks())

    with TestClient(recorded.app) as client, pytest.raises(RuntimeError):
        client.get("/stream")
    span = recorded.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RuntimeError"
    assert (span.attributes or {})["http.response.status_code"] == 200


def test_configuration_mistakes() -> None:
    with pytest.raises(ConfigurationError, match="'healthz' must start with '/'"):
        OpenTelemetry(excluded_paths=["healthz"])
    app = App(debug=True)
    app.install(OpenTelemetry())
    with pytest.raises(ConfigurationError, match="already has an OpenTelemetry"):
        app.install(OpenTelemetry())


def test_without_an_sdk_nothing_is_recorded_and_requests_work() -> None:
    app = App(debug=True)
    app.install(OpenTelemetry())  # the global providers: no-op without an SDK
    app.get("/")(lambda: "ok")
    with TestClient(app) as client:
        assert client.get("/").text == "ok"
