"""The app the Redis tests run in real processes: ``uvicorn tasks_site:app``, ``trellis worker``.

Configured by the environment: ``TRELLIS_TEST_REDIS_URL``, ``TASKS_QUEUE`` (the queue, and the
prefix of the keys where jobs leave their traces) and ``TASKS_TICK`` (seconds between the ticks
of the periodic task; unset: no periodic task).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta

from redis.asyncio import Redis

from trellis import App
from trellis.contrib.tasks import RedisTasks

URL = os.environ["TRELLIS_TEST_REDIS_URL"]
QUEUE = os.environ["TASKS_QUEUE"]

app = App()
# Short heartbeat and sweep: a killed worker's job comes back within seconds.
app.install(RedisTasks(URL, queue=QUEUE, heartbeat=2, sweep_interval=1))


async def trace(kind: str, **data: object) -> None:
    """Leave a record in ``<queue>:<kind>``: the process that ran the job, and when."""
    async with Redis.from_url(URL) as client:
        record = {"pid": os.getpid(), "at": time.time(), **data}
        await client.rpush(f"{QUEUE}:{kind}", json.dumps(record))


@app.task
async def record(value: int) -> int:
    await trace("done", value=value)
    return value * 2


@app.task(retries=3)
async def block(tag: str) -> None:
    """Start, then wait until the test sets ``<queue>:release``; then finish."""
    await trace("started", tag=tag)
    async with Redis.from_url(URL) as client:
        while not await client.exists(f"{QUEUE}:release"):
            await asyncio.sleep(0.05)
    await trace("finished", tag=tag)


if os.environ.get("TASKS_TICK"):

    @app.periodic(timedelta(seconds=int(os.environ["TASKS_TICK"])))
    async def tick() -> None:
        await trace("ticks")


@app.post("/send")
async def send(value: int) -> dict[str, str]:
    job = await record.send(value)
    return {"id": job.id}


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}
