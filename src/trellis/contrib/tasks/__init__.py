"""Task backends on existing queues: ``RedisTasks`` runs the app's tasks on SAQ over Redis.

```python
# needs: redis
import os

from trellis import App
from trellis.contrib.tasks import RedisTasks
from trellis.testing import TestClient

app = App()
app.install(RedisTasks(os.environ["REDIS_URL"], queue=os.environ["REDIS_PREFIX"]))


@app.task
async def send_welcome(user_id: int) -> None: ...


with TestClient(app) as client:
    job = client.call(send_welcome.send, 42)  # queued in Redis; `trellis worker` runs it
    assert job.task == "send_welcome"
```

The web processes send jobs; ``trellis worker`` runs them (and the periodic schedules) in as
many processes and machines as needed. Task code stays the same as with the in-process
backend. Needs the ``tasks`` extra: ``pip install 'trellis[tasks]'``.
"""

from trellis.contrib.tasks.redis import RedisTasks as RedisTasks

__all__ = ["RedisTasks"]
