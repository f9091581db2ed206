"""OpenTelemetry: a server span per request and websocket, request metrics, log correlation.

```python
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from trellis import App
from trellis.contrib.otel import OpenTelemetry
from trellis.testing import TestClient

exporter = InMemorySpanExporter()  # in production: the SDK with an OTLP exporter
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

app = App()
app.install(OpenTelemetry(provider, excluded_paths=("/healthz", "/metrics")))


@app.get("/orders/{id:int}")
async def order(id: int) -> dict[str, int]:
    return {"id": id}


with TestClient(app) as client:
    client.get("/orders/7")
assert [span.name for span in exporter.get_finished_spans()] == ["GET /orders/{id}"]
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
