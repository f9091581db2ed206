"""Typed background jobs: ``@app.task``, ``send``, delays, retries, periodic schedules.

```python
from datetime import timedelta

from trellis import App
from trellis.testing import TestClient

app = App()
welcomed: list[int] = []


@app.task(retries=5, timeout=30)
async def send_welcome(user_id: int) -> None:
    welcomed.append(user_id)


@app.periodic("*/5 * * * *")  # or timedelta(minutes=5)
async def refresh_feeds() -> None: ...


async def signup() -> None:
    await send_welcome.send(42)  # checked against the hints, runs soon
    await send_welcome(7)  # runs here and now, as a plain call


with TestClient(app) as client:
    client.call(signup)
    client.call(app.tasks.join)  # wait for the jobs sent so far (tests only)
    assert welcomed == [7, 42]
    job = client.call(send_welcome.send_in, timedelta(hours=1), 42)
    assert job.task == "send_welcome"  # and job.run_at is an hour from now
```

Jobs go to the app's task backend: the ``InProcessBackend`` by default (on the app's own event
loop, for development and tests), or a queue that workers share in production, such as
``trellis.contrib.tasks.RedisTasks`` run by ``trellis worker``. Task code does not change.
"""

from trellis.tasks._inprocess import InProcessBackend as InProcessBackend
from trellis.tasks._registry import TaskBackend as TaskBackend
from trellis.tasks._registry import TaskRegistry as TaskRegistry
from trellis.tasks._schedule import Schedule as Schedule
from trellis.tasks._task import Backoff as Backoff
from trellis.tasks._task import Job as Job
from trellis.tasks._task import Task as Task
from trellis.tasks._task import TaskArgumentsError as TaskArgumentsError
from trellis.tasks._task import TaskError as TaskError

__all__ = [
    "Backoff",
    "InProcessBackend",
    "Job",
    "Schedule",
    "Task",
    "TaskArgumentsError",
    "TaskBackend",
    "TaskError",
    "TaskRegistry",
]
