"""Prometheus metrics: requests, latency, requests in flight and crashes, by route.

```py
from trellis.contrib.ops import Metrics

app.install(Metrics())        # GET /metrics, for Prometheus to scrape
```

Four metrics, labelled by the route's path template (``/users/{id}``, never the raw path,
which would make a time series per user; ``<unmatched>`` for a 404). The template is the one
the application put in ``scope["route"]`` when it matched the route: no second lookup.

- ``trellis_requests_total{method, route, status}``: HTTP requests answered;
- ``trellis_request_duration_seconds{method, route}``: a histogram of the time from the
  request's arrival to the last byte of the response;
- ``trellis_requests_in_progress``: requests being answered now;
- ``trellis_exceptions_total{route, type}``: unhandled exceptions (the 500s), by class name.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory for the
whole server (before it starts): each process writes its numbers there and ``/metrics`` adds
up every process's. Needs the ``ops`` extra: ``pip install 'trellis[ops]'``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from trellis.exceptions import ConfigurationError
from trellis.http.request import Request
from trellis.http.response import Response
from trellis.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from trellis.app import App

__all__ = ["DEFAULT_BUCKETS", "MULTIPROC_ENV", "UNMATCHED", "Metrics", "PrometheusMiddleware"]

log = logging.getLogger("trellis.ops")

#: The route label of a request no route answered (a 404, a trailing-slash redirect).
UNMATCHED = "<unmatched>"

#: The environment variable that turns on prometheus_client's multi-process mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Upper bounds of the latency histogram, in seconds (prometheus_client's defaults).
DEFAULT_BUCKETS: tuple[float, ...] = (
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

# Any other method is counted as OTHER: a client must not be able to make new time series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class _Merged(Collector):
    """Two registries as one: the app's metrics and prometheus_client's default registry."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterable[Metric]:
        for registry in self.registries:
            yield from registry.collect()


class Metrics:
    """The metrics plugin: ``app.install(Metrics())`` counts every request and serves them.

    Args:
        path: Where Prometheus scrapes (left out of the OpenAPI schema).
        registry: The ``prometheus_client.CollectorRegistry`` to register the metrics in, and
            to serve. ``None`` (the default): a registry of this plugin's own, served together
            with prometheus_client's default registry (your own metrics, process
            and garbage-collector metrics). Ignored for serving in multi-process mode, where
            ``/metrics`` serves what every process wrote.
        buckets: Upper bounds of the latency histogram, in seconds.

    Attributes:
        requests: ``trellis_requests_total`` (a ``Counter``).
        duration: ``trellis_request_duration_seconds`` (a ``Histogram``).
        in_progress: ``trellis_requests_in_progress`` (a ``Gauge``).
        exceptions: ``trellis_exceptions_total`` (a ``Counter``).
        multiprocess_dir: The multi-process directory, or ``None`` in single-process mode.
    """

    def __init__(
        self,
        path: str = "/metrics",
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if not path.startswith("/"):
            raise ConfigurationError(f"Metrics(path={path!r}): the path starts with '/'")
        self.path = path
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        own = registry if registry is not None else CollectorRegistry()
        self.registry = own
        self.requests = Counter(
            "trellis_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=own,
        )
        self.duration = Histogram(
            "trellis_request_duration_seconds",
            "Time from a request's arrival to the last byte of its response.",
            ("method", "route"),
            buckets=tuple(buckets),
            registry=own,
        )
        self.in_progress = Gauge(
            "trellis_requests_in_progress",
            "HTTP requests being answered now.",
            registry=own,
            multiprocess_mode="livesum",
        )
        self.exceptions = Counter(
            "trellis_exceptions",
            "Unhandled exceptions (answered with a 500), by route template and class name.",
            ("route", "type"),
            registry=own,
        )
        self._served: Collector
        if self.multiprocess_dir is not None:
            if not os.path.isdir(self.multiprocess_dir):
                raise ConfigurationError(
                    f"{MULTIPROC_ENV}={self.multiprocess_dir!r} is not a directory: create it"
                    " (empty) before the server starts"
                )
            served = CollectorRegistry()
            MultiProcessCollector(served, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            self._served = served
        elif registry is not None:
            self._served = registry
        else:
            self._served = _Merged(own, REGISTRY)
        self.app: App | None = None
        # PERF: labelled children made once per label set; .labels() takes a lock and
        # builds tuples on every call.
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def setup(self, app: App) -> None:
        """Install on ``app``: the middleware, the error reporter and the ``path`` route.

        Raises:
            ConfigurationError: the application has a ``Metrics`` already.
        """
        existing = getattr(app.state, "metrics", None)
        if existing is not None and existing is not self:
            raise ConfigurationError("the application already has a Metrics installed")
        if self.multiprocess_dir is not None and not _writes_files():
            log.warning(
                "%s is set but was not when prometheus_client was imported: this process's"
                " metrics stay in memory and /metrics shows only the other processes'. Set"
                " it before the server starts.",
                MULTIPROC_ENV,
            )
        self.app = app
        app.state.metrics = self
        app.add_middleware(PrometheusMiddleware, metrics=self)
        app.add_error_reporter(self._report)
        app.get(self.path, include_in_schema=False, name="ops.metrics")(self._scrape)
        if self.multiprocess_dir is not None:
            app.on_shutdown(self._process_ends)

    # -- recording --------------------------------------------------------------------------

    def route_of(self, scope: Scope) -> str:
        """The route label of a request: its route's path template, or ``<unmatched>``.

        The template is ``scope["route"].template`` (``/users/{id}``: converters left out);
        a request answered by a mounted application is labelled with the mount's path
        followed by ``/*``.
        """
        route = scope.get("route")
        # Another framework's scope["route"] (a mounted app's) has no template: not ours.
        return getattr(route, "template", UNMATCHED) if route is not None else UNMATCHED

    def observe(self, scope: Scope, status: int, duration: float) -> None:
        """Count one answered request (the middleware calls this)."""
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"
        route = self.route_of(scope)
        key = (method, route, status)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        pair = (method, route)
        histogram = self._timed.get(pair)
        if histogram is None:
            histogram = self._timed[pair] = self.duration.labels(method, route)
        histogram.observe(duration)

    def count_exception(self, scope: Scope, exc: BaseException) -> None:
        """Count one unhandled exception of the request ``scope``."""
        self.exceptions.labels(self.route_of(scope), type(exc).__name__).inc()

    async def _report(self, request: Request, exc: BaseException, request_id: str) -> None:
        # An error reporter: the app calls it for every crash it turns into a 500.
        self.count_exception(request.scope, exc)

    def _process_ends(self) -> None:
        # Multi-process mode: this process's "live" gauges must stop counting.
        mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    # -- serving ----------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (body and content type), in the format ``accept`` prefers."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._served), content_type

    def _scrape(self, request: Request) -> Response:
        # A sync handler on purpose: it runs in the thread pool (reading the files of many
        # processes, or a big registry, must not hold the event loop).
        body, content_type = self.render(request.headers.get("accept"))
        return Response(body, headers={"cache-control": "no-store"}, media_type=content_type)


def _writes_files() -> bool:
    """Whether prometheus_client chose its multi-process values (decided at its import)."""
    return values.ValueClass is not values.MutexValue


class PrometheusMiddleware:
    """ASGI middleware that feeds a ``Metrics`` (``Metrics.setup`` installs it).

    Only ``http`` scopes are measured; websockets and the lifespan pass through.

    Args:
        app: The application to wrap.
        metrics: Where the numbers go.
    """

    __slots__ = ("app", "metrics")

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Measure the request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        # A request that crashes before answering is a 500 (the app's error guard sends it).
        status = 500
        started = False

        async def status_send(message: Any) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
            await send(message)

        in_progress = metrics.in_progress
        in_progress.inc()
        begin = time.perf_counter()
        try:
            await self.app(scope, receive, status_send)
        except Exception as exc:
            # Before the response started, the app's error guard reports it (and the
            # error reporter counts it); after, nobody else will.
            if started:
                metrics.count_exception(scope, exc)
            raise
        finally:
            duration = time.perf_counter() - begin
            in_progress.dec()
            metrics.observe(scope, status, duration)
