"""Request metrics for the admin dashboard: rate, latency percentiles and errors per minute.

``Admin`` installs ``MetricsMiddleware`` around the whole application; it feeds a
``MetricsRecorder`` (``app.state.admin_metrics``), a ring buffer of one slot per minute for
the last hour (``minutes=``). Each slot counts requests and server errors (status 500 and
above, or a crash) and keeps a histogram of response times, from which the dashboard reads
the median and the 95th percentile.

The numbers are **per process**: each worker process (``uvicorn --workers 4``, several
containers) keeps its own, and the dashboard shows those of the process that answers it.
For figures across processes, export them to a monitoring system (Prometheus, OpenTelemetry)
instead; this recorder is a glance, not a monitoring stack.

Example:
    ```python
    from trellis.contrib.admin.metrics import MetricsRecorder

    recorder = MetricsRecorder(minutes=5)
    recorder.record(0.012, 200, now=600.0)
    recorder.record(0.300, 500, now=601.0)
    minute = recorder.series(now=601.0)[-1]
    assert (minute.requests, minute.errors) == (2, 1)
    ```
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from trellis.types import ASGIApp, Receive, Scope, Send

__all__ = ["BUCKETS", "MetricsMiddleware", "MetricsRecorder", "MinuteStats"]

# Upper bounds of the latency histogram, in seconds: from 0.1 ms to a minute, each ~26% above
# the last (so a percentile read from it is within about 13% of the true value).
BUCKETS: tuple[float, ...] = tuple(0.0001 * 10 ** (i / 10) for i in range(58))
_MIN_SHOWN = 15


@dataclass(frozen=True, slots=True)
class MinuteStats:
    """One minute of traffic.

    Attributes:
        start: The minute's start, in seconds since the epoch.
        requests: Requests answered in that minute.
        errors: Of which server errors (status 500 and above, or a crash).
        p50: The median response time, in seconds (``None`` without requests).
        p95: The 95th percentile response time, in seconds (``None`` without requests).
    """

    start: float
    requests: int
    errors: int
    p50: float | None
    p95: float | None


class _Slot:
    __slots__ = ("counts", "errors", "minute", "requests")

    def __init__(self) -> None:
        self.minute = -1
        self.requests = 0
        self.errors = 0
        self.counts = [0] * (len(BUCKETS) + 1)

    def reset(self, minute: int) -> None:
        self.minute = minute
        self.requests = 0
        self.errors = 0
        self.counts = [0] * (len(BUCKETS) + 1)

    def percentile(self, fraction: float) -> float | None:
        if not self.requests:
            return None
        rank = max(1, math.ceil(fraction * self.requests))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return BUCKETS[index] if index < len(BUCKETS) else BUCKETS[-1]
        return BUCKETS[-1]  # pragma: no cover - the counts add up to requests


class MetricsRecorder:
    """Requests, errors and response times per minute, for the last ``minutes`` minutes.

    Memory is fixed (one histogram per minute kept); ``record`` is constant time and needs no
    lock (the event loop runs one at a time).

    Args:
        minutes: How many minutes to keep (60 by default).
    """

    def __init__(self, minutes: int = 60) -> None:
        if minutes < 1:
            raise ValueError("MetricsRecorder(minutes=...) keeps at least one minute")
        self.minutes = minutes
        self._slots = [_Slot() for _ in range(minutes)]
        self.started = time.time()

    def record(self, duration: float, status: int, *, now: float | None = None) -> None:
        """Count one request that took ``duration`` seconds and answered ``status``."""
        minute = int((time.time() if now is None else now) // 60)
        slot = self._slots[minute % self.minutes]
        if slot.minute != minute:
            slot.reset(minute)
        slot.requests += 1
        if status >= 500:
            slot.errors += 1
        # PERF: one bisect over 58 floats; no allocation per request.
        slot.counts[bisect_left(BUCKETS, duration)] += 1

    def series(self, *, now: float | None = None) -> list[MinuteStats]:
        """The last ``minutes`` minutes, oldest first (minutes without requests included).

        A process younger than the window starts the series at its own first minute (or 15
        minutes back, whichever is earlier).
        """
        current = int((time.time() if now is None else now) // 60)
        first = current - self.minutes + 1
        # A young process charts from its start (and 15 minutes at least), not an hour of
        # minutes it was not running.
        started = min(int(self.started // 60), current - _MIN_SHOWN + 1)
        if first < started <= current:
            first = started
        result: list[MinuteStats] = []
        for minute in range(first, current + 1):
            slot = self._slots[minute % self.minutes]
            if slot.minute == minute:
                result.append(
                    MinuteStats(
                        minute * 60.0,
                        slot.requests,
                        slot.errors,
                        slot.percentile(0.5),
                        slot.percentile(0.95),
                    )
                )
            else:
                result.append(MinuteStats(minute * 60.0, 0, 0, None, None))
        return result

    def totals(self, *, now: float | None = None) -> MinuteStats:
        """The whole window at once: requests, errors, and the percentiles over all of it."""
        current = int((time.time() if now is None else now) // 60)
        merged = _Slot()
        merged.minute = current
        for slot in self._slots:
            if current - self.minutes < slot.minute <= current:
                merged.requests += slot.requests
                merged.errors += slot.errors
                for index, count in enumerate(slot.counts):
                    merged.counts[index] += count
        return MinuteStats(
            (current - self.minutes + 1) * 60.0,
            merged.requests,
            merged.errors,
            merged.percentile(0.5),
            merged.percentile(0.95),
        )

    def clear(self) -> None:
        """Forget everything recorded."""
        for slot in self._slots:
            slot.reset(-1)


class MetricsMiddleware:
    """ASGI middleware that times every HTTP request into a ``MetricsRecorder``.

    The time runs from the request's arrival to the last byte of the response. A request
    that crashes before answering counts as a 500. Paths starting with one of ``exclude``
    (the admin's own static files) are not counted.

    Args:
        app: The application to wrap.
        recorder: Where the numbers go.
        exclude: Path prefixes not to count.
    """

    __slots__ = ("app", "exclude", "recorder")

    def __init__(self, app: ASGIApp, *, recorder: MetricsRecorder, exclude: tuple[str, ...] = ()):
        self.app = app
        self.recorder = recorder
        self.exclude = exclude

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request (only ``http`` scopes)."""
        if scope["type"] != "http" or (self.exclude and scope["path"].startswith(self.exclude)):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.recorder.record(time.perf_counter() - started, status)
