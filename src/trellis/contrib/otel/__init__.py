"""OpenTelemetry: a server span per request and websocket, request metrics, log correlation.

```py
from trellis.contrib.otel import OpenTelemetry

app.install(OpenTelemetry(excluded_paths=("/healthz", "/metrics")))
```

Pure ASGI middleware on OpenTelemetry's API: spans go to the tracer provider you configure
(the SDK with an OTLP exporter, usually), joined to the caller's trace through its
``traceparent`` header. Needs the ``otel`` extra: ``pip install 'trellis[otel]'`` (the API), plus
the SDK and an exporter of your choice.
"""

from __future__ import annotations

from trellis.contrib.otel.tracing import OpenTelemetry as OpenTelemetry
from trellis.contrib.otel.tracing import OpenTelemetryMiddleware as OpenTelemetryMiddleware

__all__ = ["OpenTelemetry", "OpenTelemetryMiddleware"]
