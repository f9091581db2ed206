"""The development backend: jobs run on the app's own event loop, kept in memory."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from trellis.tasks._task import Task, TaskError

if TYPE_CHECKING:
    from trellis.tasks._registry import TaskRegistry

__all__ = ["InProcessBackend"]

log = logging.getLogger("trellis.tasks")


class _Entry:
    """One job in memory: whether an attempt is running now (else it waits for its time)."""

    __slots__ = ("job_id", "running")

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.running = False


class InProcessBackend:
    """Run jobs on the app's event loop, in the process that sends them (the default).

    For development and tests: nothing to install, and delays, retries with backoff, timeouts
    and periodic schedules behave as with a queue. Jobs live in memory, so those still waiting
    when the process stops are lost (and logged), and every process of a multi-process server
    runs the periodic tasks. In production install a queue backend (``RedisTasks``).

    Arguments go through JSON as they would through a queue, so a job sees copies, never the
    caller's objects.

    Args:
        shutdown_timeout: Seconds the app's shut-down waits for the jobs that are running;
            those still running then are cancelled.
    """

    def __init__(self, *, shutdown_timeout: float = 10.0) -> None:
        self.shutdown_timeout = shutdown_timeout
        self._registry: TaskRegistry | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: dict[asyncio.Task[None], _Entry] = {}
        self._schedules: set[asyncio.Task[None]] = set()
        self._stopping = False

    def __repr__(self) -> str:
        return "InProcessBackend()"

    async def start(self, registry: TaskRegistry) -> None:
        """Run the periodic schedules from now on, on the running loop."""
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        for task in registry.periodic_tasks:
            runner = self._loop.create_task(self._periodic(task), name=f"periodic {task.name}")
            self._schedules.add(runner)

    async def stop(self) -> None:
        """Stop the schedules, drop waiting jobs, give running ones ``shutdown_timeout``."""
        self._stopping = True
        for runner in self._schedules:
            runner.cancel()
        self._schedules.clear()
        waiting = [job for job, entry in self._jobs.items() if not entry.running]
        for job in waiting:
            job.cancel()
        if waiting:
            log.warning(
                "%d waiting job(s) dropped at shut-down (the in-process backend keeps jobs in "
                "memory): %s",
                len(waiting),
                ", ".join(self._jobs[job].job_id for job in waiting),
            )
        running = [job for job in self._jobs if job not in waiting]
        if running:
            _, late = await asyncio.wait(running, timeout=self.shutdown_timeout)
            for job in late:
                log.warning(
                    "Job %s still running after %g s at shut-down: cancelled",
                    self._jobs[job].job_id,
                    self.shutdown_timeout,
                )
                job.cancel()
        if self._jobs:
            await asyncio.wait(list(self._jobs))
        self._loop = None

    async def enqueue(
        self,
        task: Task[..., Any],
        arguments: dict[str, Any],
        *,
        job_id: str,
        run_at: float | None,
    ) -> None:
        """Run the job on the app's loop when it is due."""
        loop = self._loop
        if loop is None or self._stopping:
            raise TaskError(
                f"cannot send {task.name}: the in-process task backend runs jobs while the app "
                "runs (inside its lifespan, such as a request, a TestClient block or another "
                "job); install a queue backend to send jobs from elsewhere"
            )
        if asyncio.get_running_loop() is not loop:
            raise TaskError(
                f"cannot send {task.name} from another event loop than the app's: the "
                "in-process backend runs jobs on the app's loop"
            )
        # Through JSON and back, as a queue would: the job never shares the caller's objects.
        payload = orjson.loads(orjson.dumps(arguments))
        self._spawn(task, payload, job_id, run_at)

    def _spawn(
        self, task: Task[..., Any], arguments: Any, job_id: str, run_at: float | None
    ) -> None:
        assert self._loop is not None
        entry = _Entry(job_id)
        job = self._loop.create_task(self._run(task, arguments, entry, run_at), name=job_id)
        self._jobs[job] = entry
        job.add_done_callback(self._jobs.pop)

    async def _run(
        self, task: Task[..., Any], arguments: dict[str, Any], entry: _Entry, run_at: float | None
    ) -> None:
        if run_at is not None:
            await asyncio.sleep(max(0.0, run_at - time.time()))
        attempt = 0
        while True:
            attempt += 1
            entry.running = True
            try:
                await task.run(arguments, job_id=entry.job_id, attempt=attempt)
                return
            except Exception as exc:
                delay = task.failed(exc, job_id=entry.job_id, attempt=attempt)
                if delay is None:
                    return
                if self._stopping:
                    log.warning("Job %s not retried: the app is shutting down", entry.job_id)
                    return
            finally:
                entry.running = False
            await asyncio.sleep(delay)

    async def _periodic(self, task: Task[..., Any]) -> None:
        assert task.schedule is not None
        last = time.time()
        while True:
            # From the last tick too: a sleep that wakes a little early must not run it twice.
            tick = task.schedule.next_after(max(time.time(), last))
            await asyncio.sleep(max(0.0, tick - time.time()))
            last = tick
            self._spawn(task, {}, uuid.uuid4().hex, None)

    async def work(self, registry: TaskRegistry, *, concurrency: int, grace: float) -> None:
        """Refuse: jobs live in the memory of the process that sent them."""
        raise TaskError(
            "the app uses the in-process task backend, which runs jobs in the web process "
            "itself; install a queue backend (app.install(RedisTasks(url)) from "
            "trellis.contrib.tasks) for a separate worker"
        )

    async def join(self, timeout: float | None = 10.0) -> None:
        """Wait until no job waits or runs (periodic schedules aside).

        Raises:
            TimeoutError: Some were still waiting or running after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while self._jobs:
                await asyncio.wait(list(self._jobs))
