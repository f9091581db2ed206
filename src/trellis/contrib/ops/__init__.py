"""Operations: health endpoints and Prometheus metrics.

```python
from trellis import App
from trellis.contrib.ops import Health, Metrics
from trellis.testing import TestClient

app = App()
app.install(Health())  # GET /healthz (liveness), GET /readyz (database, Redis, your checks)
app.install(Metrics())  # GET /metrics (requests, latency, in flight, exceptions by route)

with TestClient(app) as client:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "trellis_requests_total" in client.get("/metrics").text
```

``Health`` needs nothing more; ``Metrics`` needs the ``ops`` extra (prometheus_client):
``pip install 'trellis[ops]'``. Importing this package loads prometheus_client only when
``Metrics`` is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trellis.contrib.ops.health import Health as Health

if TYPE_CHECKING:
    from trellis.contrib.ops.metrics import Metrics as Metrics

__all__ = ["Health", "Metrics"]


def __getattr__(name: str) -> Any:
    if name == "Metrics":
        from trellis.contrib.ops.metrics import Metrics

        return Metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
