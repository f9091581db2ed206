"""The OpenTelemetry plugin and its ASGI middleware.

One ``SERVER`` span per HTTP request and per websocket, named ``"{method} {route}"``
(``GET /users/{id}``) with the stable HTTP semantic-convention attributes, a child of the
caller's span when the request carries a W3C ``traceparent``; the
``http.server.request.duration`` histogram; and ``trace_id`` / ``span_id`` on the JSON log lines
written inside the span.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.metrics import MeterProvider, get_meter
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
    format_span_id,
    format_trace_id,
)

from trellis import __version__
from trellis.exceptions import ConfigurationError
from trellis.http.connection import HTTPConnection
from trellis.logging import add_context_fields
from trellis.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from trellis.app import App
    from trellis.http.request import Request

__all__ = ["DURATION_BUCKETS", "INSTRUMENTATION_NAME", "OpenTelemetry", "OpenTelemetryMiddleware"]

#: The instrumentation scope name of the tracer and the meter.
INSTRUMENTATION_NAME = "trellis.contrib.otel"

#: Bucket bounds of ``http.server.request.duration``, in seconds (the semantic conventions').
DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

# Any other method is "_OTHER" (and "HTTP" in the span name): a client must not be able to
# make new span names or metric series.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"}
)

# Where the request's span waits for the error reporter (a crash turned into a 500).
_SPAN_KEY = "trellis.otel.span"
_ERROR_KEY = "trellis.otel.error"

Headers = list[tuple[bytes, bytes]]


class _ScopeHeaders(Getter[Headers]):
    """Reads propagation headers (``traceparent``, ``baggage``) straight from the scope."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for k, value in carrier if k == name]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _ScopeHeaders()


def _log_fields() -> Mapping[str, Any] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
    }


class OpenTelemetry:
    """The OpenTelemetry plugin: ``app.install(OpenTelemetry())`` traces every request.

    Spans and metrics go through OpenTelemetry's API to the providers given here, or to the
    global ones (``opentelemetry.trace.set_tracer_provider``, set by the SDK or by
    ``opentelemetry-instrument``); without an SDK they cost little and record nothing.

    Args:
        tracer_provider: Where spans go; ``None``: the global tracer provider.
        meter_provider: Where ``http.server.request.duration`` goes; ``None``: the global
            meter provider.
        excluded_paths: Paths not traced or measured, each with everything below it
            (``"/healthz"`` also leaves out ``/healthz/db``): health checks, metrics scrapes.
        log_correlation: Add ``trace_id`` and ``span_id`` (W3C hex) to the JSON log lines
            written inside a span (``trellis.logging.add_context_fields``).

    Raises:
        ConfigurationError: an excluded path does not start with ``/``.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        excluded_paths: Iterable[str] = (),
        *,
        log_correlation: bool = True,
    ) -> None:
        excluded = tuple(excluded_paths)
        for path in excluded:
            if not path.startswith("/"):
                raise ConfigurationError(
                    f"OpenTelemetry(excluded_paths=...): {path!r} must start with '/'"
                )
        self.excluded_paths = excluded
        # "/healthz" leaves out "/healthz" and "/healthz/..."; "/" would leave out everything.
        self._exact = frozenset(p.rstrip("/") or "/" for p in excluded)
        self._prefixes = tuple((p.rstrip("/") + "/") for p in excluded)
        self.log_correlation = log_correlation
        self.tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )
        meter = get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def setup(self, app: App) -> None:
        """Install on ``app``: the middleware, the error reporter and the log fields.

        Raises:
            ConfigurationError: the application has an ``OpenTelemetry`` already.
        """
        existing = getattr(app.state, "opentelemetry", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has an OpenTelemetry installed")
        app.state.opentelemetry = self
        app.add_middleware(OpenTelemetryMiddleware, telemetry=self)
        app.add_error_reporter(self._report)
        if self.log_correlation:
            add_context_fields(_log_fields)

    def is_excluded(self, path: str) -> bool:
        """Whether requests for ``path`` (without the app's ``root_path``) go untraced."""
        return path in self._exact or path.startswith(self._prefixes)

    async def _report(self, request: Request, exc: BaseException, request_id: str) -> None:
        # An error reporter: the app calls it for every crash it turns into a 500, inside the
        # request's span. The exception never reaches the middleware: record it here.
        span: Span | None = request.scope.get(_SPAN_KEY)
        # Not recording: no SDK, not sampled, or ended (the crash came out of the middleware,
        # which recorded it before the app's outer guard reported it).
        if span is not None and span.is_recording():
            span.record_exception(exc)
            request.scope[_ERROR_KEY] = type(exc).__qualname__


class OpenTelemetryMiddleware:
    """ASGI middleware that traces and measures requests (``OpenTelemetry.setup`` adds it).

    Args:
        app: The application to wrap.
        telemetry: The plugin: tracer, histogram, excluded paths.
    """

    __slots__ = ("app", "telemetry")

    def __init__(self, app: ASGIApp, *, telemetry: OpenTelemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its span."""
        kind = scope["type"]
        telemetry = self.telemetry
        if (kind != "http" and kind != "websocket") or telemetry.is_excluded(_app_path(scope)):
            await self.app(scope, receive, send)
            return
        is_http = kind == "http"
        # A websocket opens with a GET (the upgrade request).
        method = scope["method"] if is_http else "GET"
        known = method in _METHODS
        span_method = method if known else "HTTP"
        attributes = _request_attributes(scope, method if known else "_OTHER")
        if not known:
            attributes["http.request.method_original"] = method
        parent = propagate.extract(scope["headers"], getter=_GETTER)
        span = telemetry.tracer.start_span(
            span_method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        scope[_SPAN_KEY] = span
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status: int | None = None

        async def traced_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403  # closed before accepting: the server refuses the handshake
            await send(message)

        begin = time.perf_counter()
        error_type: str | None = None
        try:
            await self.app(scope, receive, traced_send)
        except Exception as exc:
            span.record_exception(exc)
            error_type = type(exc).__qualname__
            raise
        finally:
            duration = time.perf_counter() - begin
            otel_context.detach(token)
            error_type = error_type or scope.get(_ERROR_KEY)
            route = getattr(scope.get("route"), "template", None)
            if route is not None:
                span.update_name(f"{span_method} {route}")
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if error_type is None and status >= 500:
                    error_type = str(status)
            if error_type is not None:
                span.set_attribute("error.type", error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.end()
            if is_http:
                measured: dict[str, Any] = {
                    "http.request.method": attributes["http.request.method"],
                    "url.scheme": attributes["url.scheme"],
                    "network.protocol.name": "http",
                    "network.protocol.version": attributes["network.protocol.version"],
                }
                if route is not None:
                    measured["http.route"] = route
                if status is not None:
                    measured["http.response.status_code"] = status
                if error_type is not None:
                    measured["error.type"] = error_type
                telemetry.duration.record(duration, measured)


def _app_path(scope: Scope) -> str:
    """The path the application routes: without its mount point, as route templates are."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


def _request_attributes(scope: Scope, method: str) -> dict[str, Any]:
    """The span's attributes known when the request arrives (proxy-aware, like ``Request``)."""
    connection = HTTPConnection(scope)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": connection.scheme,
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    host, port = _split_host(connection.host)
    if host:
        attributes["server.address"] = host
        attributes["server.port"] = port or (443 if connection.scheme in ("https", "wss") else 80)
    client = connection.client
    if client is not None:
        attributes["client.address"] = client[0]
    peer = scope.get("client")
    if peer:
        attributes["network.peer.address"] = peer[0]
        attributes["network.peer.port"] = peer[1]
    agent = connection.headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    return attributes


def _split_host(value: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> (``example.com``, 8080); ``[::1]:80`` -> (``::1``, 80)."""
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, None
        rest = value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
        return value[1:end], int(port) if port.isdigit() else None
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name, int(port)
    return value, None
