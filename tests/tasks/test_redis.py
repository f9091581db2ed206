"""``RedisTasks`` against a real Redis: web and worker processes, crashes, schedules, retries.

The processes run ``tasks_site.py`` (this folder): a web app under uvicorn that sends jobs,
and ``trellis worker`` processes that run them. Jobs leave records (with the pid of the
process that ran them) in Redis lists under the test's queue name.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser_helpers import free_port, serve, uvicorn
from redis import Redis
from trellis import App
from trellis.contrib.redis import RedisUnavailableError
from trellis.contrib.tasks import RedisTasks
from trellis.exceptions import ConfigurationError
from trellis.tasks import Backoff

pytestmark = pytest.mark.server

HERE = Path(__file__).resolve().parent


def site_env(redis_url: str, queue: str, **more: str) -> dict[str, str]:
    env = {**os.environ, "TRELLIS_TEST_REDIS_URL": redis_url, "TASKS_QUEUE": queue}
    env["TRELLIS_DEBUG"] = "1"
    env.pop("TASKS_TICK", None)
    env.update(more)
    return env


@contextmanager
def worker(env: dict[str, str], *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``trellis worker tasks_site:app`` process in a session of its own, killed at the end."""
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trellis.cli", "worker", "tasks_site:app", *options],
            cwd=HERE,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        except BaseException:
            output.seek(0)
            print(output.read().decode()[-4000:])  # shown with the failure
            raise
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def records(client: Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in client.lrange(key, 0, -1)]


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, procs: tuple[Any, ...] = ()
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc in procs:
            assert proc.poll() is None, f"a worker exited ({proc.returncode}) waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:g} s"
        time.sleep(0.05)


def test_a_job_sent_by_the_web_process_runs_in_a_worker_process(redis_url: str, queue: str) -> None:
    env = site_env(redis_url, queue)
    port = free_port()
    with (
        Redis.from_url(redis_url) as client,
        serve(
            uvicorn(port, "tasks_site:app"), port=port, env=env, cwd=HERE, name="web", ready="/pid"
        ) as url,
        worker(env, "--concurrency", "2") as proc,
    ):
        web_pid = httpx.get(url + "/pid").json()["pid"]
        sent = httpx.post(url + "/send", params={"value": "21"})
        assert sent.status_code == 200
        job_id = sent.json()["id"]
        done = wait_for(lambda: records(client, f"{queue}:done"), 30, "job run", (proc,))
        assert [(d["value"], d["pid"]) for d in done] == [(21, proc.pid)]
        assert proc.pid != web_pid
        # SAQ keeps the finished job: complete, with the task's result. The task wrote its
        # record just before returning, so the worker may not have stored the status yet.

        def finished() -> dict[str, Any] | None:
            stored = json.loads(client.get(f"saq:job:{queue}:{job_id}") or b"{}")
            return stored if stored.get("status") == "complete" else None

        stored = wait_for(finished, 10, "job complete", (proc,))
        assert stored["result"] == 42
        # SIGTERM with nothing running: a prompt, clean exit.
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10


def test_a_job_whose_worker_is_killed_is_run_again_by_another(redis_url: str, queue: str) -> None:
    env = site_env(redis_url, queue)
    with Redis.from_url(redis_url) as client:
        with worker(env) as first:
            asyncio.run(_send_block(redis_url, queue, "crash"))
            started = wait_for(
                lambda: records(client, f"{queue}:started"), 30, "job start", (first,)
            )
            assert started[0]["pid"] == first.pid
            os.killpg(first.pid, signal.SIGKILL)  # mid-job: nothing is cleaned up
            first.wait(timeout=10)
        client.set(f"{queue}:release", 1)  # the next attempt may finish
        with worker(env) as second:
            # Heartbeat 2 s, sweep every 1 s, then SAQ waits 5 s for the dead worker's answer.
            finished = wait_for(
                lambda: records(client, f"{queue}:finished"), 40, "job retried", (second,)
            )
        assert [(f["tag"], f["pid"]) for f in finished] == [("crash", second.pid)]
        assert [s["pid"] for s in records(client, f"{queue}:started")] == [first.pid, second.pid]


def test_sigterm_requeues_a_job_that_outlives_the_grace_period(redis_url: str, queue: str) -> None:
    env = site_env(redis_url, queue)
    with Redis.from_url(redis_url) as client:
        with worker(env, "--grace", "0.5") as first:
            asyncio.run(_send_block(redis_url, queue, "term"))
            wait_for(lambda: records(client, f"{queue}:started"), 30, "job start", (first,))
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=20) == 0
        client.set(f"{queue}:release", 1)
        with worker(env) as second:
            finished = wait_for(
                lambda: records(client, f"{queue}:finished"), 20, "job requeued", (second,)
            )
        assert [f["pid"] for f in finished] == [second.pid]


def test_sigterm_lets_a_running_job_finish_within_the_grace_period(
    redis_url: str, queue: str
) -> None:
    env = site_env(redis_url, queue)
    with Redis.from_url(redis_url) as client, worker(env, "--grace", "20") as proc:
        asyncio.run(_send_block(redis_url, queue, "grace"))
        wait_for(lambda: records(client, f"{queue}:started"), 30, "job start", (proc,))
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # waiting for the job
        client.set(f"{queue}:release", 1)
        assert proc.wait(timeout=20) == 0
        assert [f["pid"] for f in records(client, f"{queue}:finished")] == [proc.pid]


def test_a_periodic_task_runs_once_per_tick_with_two_workers(redis_url: str, queue: str) -> None:
    env = site_env(redis_url, queue, TASKS_TICK="2")
    with Redis.from_url(redis_url) as client:
        with worker(env) as one, worker(env) as two:
            # Both workers up (each registers itself), then three ticks.
            wait_for(
                lambda: len(list(client.scan_iter(match=f"saq:{queue}:worker_info:*"))) == 2,
                30,
                "two workers",
                (one, two),
            )
            wait_for(lambda: len(client.lrange(f"{queue}:ticks", 0, -1)) >= 3, 30, "3 ticks")
        runs = records(client, f"{queue}:ticks")
    # Each run starts within a second or so of its tick (a multiple of 2 s): no tick twice.
    ticks = [int(run["at"] // 2) for run in runs]
    assert len(ticks) == len(set(ticks)), runs
    assert {run["pid"] for run in runs} <= {one.pid, two.pid}


async def _send_block(redis_url: str, queue: str, tag: str) -> None:
    """Send ``block(tag)`` from this process, with no app running: only the name must match."""
    app = App(debug=True)
    app.install(RedisTasks(redis_url, queue=queue, heartbeat=2))

    @app.task(name="block", retries=3)
    async def block(tag: str) -> None: ...

    await block.send(tag)


# -- in this process ------------------------------------------------------------------------------


async def _run_worker(app: App, until: Callable[[], Any], timeout: float = 20) -> None:
    """Start ``app``, run its worker until ``until()`` is true, stop both."""
    await app.startup()
    try:
        work = asyncio.ensure_future(app.tasks.work(concurrency=2, grace=1))
        deadline = time.monotonic() + timeout
        while not until():
            assert not work.done(), work
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
    finally:
        await app.shutdown()


@pytest.mark.anyio
async def test_failed_jobs_are_retried_with_the_tasks_backoff_then_failed(
    redis_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(debug=True)
    app.install(RedisTasks(redis_url, queue=queue, heartbeat=2, sweep_interval=1))
    attempts: list[float] = []

    @app.task(retries=1, backoff=Backoff(base=1, jitter=False))
    async def doomed(n: int) -> None:
        attempts.append(time.monotonic())
        raise RuntimeError(f"doomed {n}")

    ok: list[int] = []

    @app.task(retries=2, backoff=Backoff(base=0.5, jitter=False))
    async def lucky(n: int) -> int:
        ok.append(n)
        if len(ok) == 1:
            raise RuntimeError("unlucky once")
        return n

    # Sent with no app running: a connection of its own.
    failing = await doomed.send(1)
    passing = await lucky.send(5)
    with Redis.from_url(redis_url) as client:

        def stored(job_id: str) -> dict[str, Any]:
            return dict(json.loads(client.get(f"saq:job:{queue}:{job_id}") or b"{}"))

        def finished() -> bool:
            return stored(failing.id).get("status") == "failed" and bool(
                stored(passing.id).get("status") == "complete"
            )

        await _run_worker(app, finished)
        failed, complete = stored(failing.id), stored(passing.id)
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 1  # the backoff, in whole seconds
    assert failed["attempts"] == 2 and "RuntimeError: doomed 1" in failed["error"]
    assert complete["attempts"] == 2 and complete["result"] == 5 and ok == [5, 5], (complete, ok)
    assert f"Task {doomed.name} (job {failing.id}) failed on attempt 2 of 2; giving up" in (
        caplog.text
    )


@pytest.mark.anyio
async def test_an_unreachable_redis_stops_the_app_at_start_up(redis_url: str) -> None:
    from browser_helpers import free_port as closed_port

    app = App(debug=True)
    app.install(RedisTasks(f"redis://:secret@127.0.0.1:{closed_port()}/0", connect_timeout=1))

    @app.task
    async def nothing() -> None: ...

    with pytest.raises(RedisUnavailableError, match=r"cannot connect to Redis at redis://:\*\*\*@"):
        await app.startup()


def test_options_are_checked_when_installed() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat must be 1 second or more"):
        RedisTasks("redis://localhost", heartbeat=0)
    with pytest.raises(ConfigurationError, match="not a queue name"):
        RedisTasks("redis://localhost", queue="a:b")
    with pytest.raises(ConfigurationError, match="invalid Redis URL"):
        RedisTasks("http://localhost")


@pytest.mark.anyio
async def test_periodic_intervals_must_be_whole_seconds(redis_url: str, queue: str) -> None:
    app = App(debug=True)
    app.install(RedisTasks(redis_url, queue=queue))

    @app.periodic(1.5)
    async def often() -> None: ...

    with pytest.raises(ConfigurationError, match=r"schedules whole seconds, not every 1\.5 s"):
        await app.startup()
