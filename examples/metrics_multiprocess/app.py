"""An application with Prometheus metrics, served by several gunicorn workers.

    PROMETHEUS_MULTIPROC_DIR=/run/myapp/prometheus gunicorn -c gunicorn.conf.py app:app

``/metrics``, answered by any worker, adds up the requests of all of them.
"""

import os

from trellis import App
from trellis.contrib.ops import Metrics

app = App()
app.install(Metrics())


@app.get("/")
async def index() -> dict[str, int]:
    return {"pid": os.getpid()}  # which worker answered
